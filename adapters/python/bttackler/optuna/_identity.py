"""Which service study an Optuna study maps to.

Every worker of one Optuna study must report to the same service study, and two different
Optuna studies must never share one (each study has its own cohort). The service study is

    optuna:<study name>:<12 hex digits>

where the digits are the start of sha256("<storage identity>#<study id>"). The storage
identity is what every worker of a shared storage agrees on:

- RDB storage (``sqlite:///…``, ``postgresql://…``): the URL without driver and password;
  a SQLite file by its real absolute path, so ``sqlite:///study.db`` from two working
  directories that resolve to the same file is the same storage;
- Journal storage: the log file's real path (file backend) or the Redis URL;
- gRPC storage proxy: ``host:port`` of the storage server;
- in-memory storage, and any other storage: a random id given to that storage object, so
  the study is shared by the threads of one process (``n_jobs``) and by nothing else.

The study id (Optuna's own number for the study inside its storage) tells apart a study
that was deleted and created again under the same name.
"""
from __future__ import annotations

import hashlib
import os
import threading
import uuid
import weakref
from typing import Any, Dict, Tuple

_MAX_NAME = 200  # the service accepts study names of up to 256 characters
_lock = threading.Lock()
_object_ids: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
_fallback_ids: Dict[int, Tuple[Any, str]] = {}


def _object_identity(storage: Any) -> str:
    with _lock:
        try:
            found = _object_ids.get(storage)
            if found is None:
                found = _object_ids[storage] = f"object:{uuid.uuid4().hex}"
            return found
        except TypeError:  # not weak-referenceable or not hashable: keep it alive with its id
            entry = _fallback_ids.get(id(storage))
            if entry is None or entry[0] is not storage:
                entry = _fallback_ids[id(storage)] = (storage, f"object:{uuid.uuid4().hex}")
            return entry[1]


def _rdb_identity(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an URL sqlalchemy cannot read: use it as it is
        return f"rdb:{url}"
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return ""  # a private in-memory database: not shared between processes
        return f"sqlite:{os.path.realpath(database)}"
    host = (parsed.host or "").lower()
    port = parsed.port or ""
    user = parsed.username or ""
    return f"{backend}://{user}@{host}:{port}/{parsed.database or ''}"


def storage_identity(storage: Any) -> str:
    """A string that every process using the same storage gets (see the module's docstring)."""
    inner = getattr(storage, "_backend", None)
    kind = type(storage).__name__
    if kind == "_CachedStorage" and inner is not None:  # RDBStorage behind Optuna's cache
        storage, kind = inner, type(inner).__name__
    if kind == "RDBStorage" and isinstance(getattr(storage, "url", None), str):
        found = _rdb_identity(storage.url)
        if found:
            return found
    elif kind == "JournalStorage" and inner is not None:
        path = getattr(inner, "_file_path", None)
        if isinstance(path, str):
            return f"journal-file:{os.path.realpath(path)}"
        url = getattr(inner, "_url", None)
        if isinstance(url, str):
            return f"journal-redis:{url}"
    elif kind == "GrpcStorageProxy":
        host, port = getattr(storage, "_host", None), getattr(storage, "_port", None)
        if host is not None and port is not None:
            return f"grpc:{str(host).lower()}:{port}"
    return _object_identity(storage)


def service_study_for(study_name: str, storage: Any, study_id: int) -> str:
    digest = hashlib.sha256(f"{storage_identity(storage)}#{study_id}".encode("utf-8")).hexdigest()[:12]
    name = study_name if len(study_name) <= _MAX_NAME else study_name[:_MAX_NAME]
    return f"optuna:{name}:{digest}"


def service_study(study: Any) -> str:
    """The name of the bttackler service study that ``study`` (an ``optuna.Study``) reports to.

    The same for every worker of the study (RDB, Journal or gRPC storage); see the module's
    docstring for how it is formed. Use it with ``BTTacklerClient.study_trials`` or
    ``bttackler`` tools to look at the service's view of the study.
    """
    return service_study_for(study.study_name, study._storage, study._study_id)
