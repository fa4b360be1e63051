"""``python -m bttackler.nni`` prints the path of the meta file for ``nnictl algo register --meta``."""
from . import META_FILE

print(META_FILE)
