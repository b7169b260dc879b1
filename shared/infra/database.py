"""The embedded PostgreSQL server from the pgserver wheel, run under a watchdog process.

pg_ctl daemonises Postgres, so the kernel's parent-death signal cannot reach it. Instead a small
watchdog process (``shared.infra.watchdog``) starts Postgres in a session of its own (so a
Ctrl-C at the terminal does not reach it before the services have drained), and stops it when
told to or when the launcher dies, even by SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from shared.infra.processes import die_with_parent


class EmbeddedDatabase:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.url = ""
        self.postmaster_pid: int | None = None
        self._watchdog: asyncio.subprocess.Process | None = None

    async def start(self, *, timeout_s: float = 60) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._watchdog = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "shared.infra.watchdog",
            str(self.data_dir),
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        assert self._watchdog.stdout is not None
        line = await asyncio.wait_for(self._watchdog.stdout.readline(), timeout_s)
        if not line:
            raise RuntimeError(f"embedded PostgreSQL did not start; see {self.data_dir / 'log'}")
        started = json.loads(line)
        self.url, self.postmaster_pid = started["url"], started["pid"]
        return self.url

    async def stop(self) -> None:
        watchdog = self._watchdog
        if watchdog is None or watchdog.returncode is not None:
            return
        watchdog.terminate()
        await watchdog.wait()
