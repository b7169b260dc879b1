"""Starts the embedded PostgreSQL and stops it when told to or when the launcher dies.

``python -m shared.infra.watchdog DATA_DIR`` prints one JSON line ``{"url", "pid"}`` once
Postgres accepts connections, then waits. SIGTERM (sent by the launcher, or by the kernel as the
parent-death signal) stops Postgres with a fast shutdown and exits.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import warnings
from pathlib import Path

from shared.infra.processes import alive


def start_postgres(data_dir: Path) -> tuple[str, int]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    server = pgserver.get_server(data_dir, cleanup_mode=None)  # type: ignore[attr-defined]
    pid = server.get_pid()
    assert pid is not None
    return server.get_uri(), pid


def stop_postmaster(pid: int) -> None:
    if not alive(pid):
        return
    os.kill(pid, signal.SIGINT)  # fast shutdown: roll back open transactions, then exit
    deadline = time.monotonic() + 15
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def main() -> None:
    data_dir = Path(sys.argv[1])
    stopping = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    url, pid = start_postgres(data_dir)
    if os.getppid() == 1 or stopping:  # the launcher died while Postgres was starting
        stop_postmaster(pid)
        return
    print(json.dumps({"url": url, "pid": pid}), flush=True)
    while not stopping and alive(pid):
        signal.pause()
    stop_postmaster(pid)


if __name__ == "__main__":
    main()
