"""`nnictl`, with a longer wait for the NNI manager's REST server at start-up, and a line when the manager exits.

nnictl checks /check-status 3 times a second apart and gives up (``_check_rest_server(port, retry=3)`` in
nni/experiment/launcher.py); on a loaded 2-core machine the bundled Node manager may need longer. Only that
deadline changes (to 30 tries).

The manager writes its log asynchronously and leaves by ``process.exit`` on a start-up error, so a manager that
fails early can leave an empty log and print nothing (as it did under `npm test`: see nni_env in nni_run.py). Here a thread waits for the manager's exit without reaping
it (``waitid`` with ``WNOWAIT``; nnictl still collects it itself) and prints how it ended. With
``E2E_NNI_STRACE_DIR`` set, the manager runs under ``strace -f`` writing there (diagnosis only).

    python nnictl_patient.py create --config CONFIG --port PORT --foreground
"""
import os
import sys
import threading

import nni.experiment.launcher as launcher

launcher._check_rest_server.__defaults__ = (30,) + launcher._check_rest_server.__defaults__[1:]

_start_rest_server = launcher._start_rest_server


def _report_exit(pid: int) -> None:
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        return
    how = "was killed by signal" if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else "exited with code"
    print(f"[nnictl_patient] NNI manager (pid {pid}) {how} {info.si_status}", flush=True)


def _start_and_watch(*args, **kwargs):
    strace_dir = os.environ.get("E2E_NNI_STRACE_DIR")
    if strace_dir:
        real_popen = launcher.Popen

        def traced(cmd, *a, **k):
            log = os.path.join(strace_dir, f"manager-{os.getpid()}.strace")
            return real_popen(["strace", "-f", "-tt", "-s", "200", "-o", log, *cmd], *a, **k)

        launcher.Popen = traced
    proc = _start_rest_server(*args, **kwargs)
    threading.Thread(target=_report_exit, args=(proc.pid,), daemon=True).start()
    return proc


launcher._start_rest_server = _start_and_watch

from nni.tools.nnictl.nnictl import parse_args  # noqa: E402  (after the patches)

sys.argv[0] = "nnictl"
sys.exit(parse_args())
