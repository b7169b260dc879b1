"""Supervises the platform's processes: prefixes their output, restarts crashes with backoff."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence

from shared.infra.processes import die_with_parent

log = logging.getLogger(__name__)

Starter = Callable[[], Awaitable[asyncio.subprocess.Process]]


def spawner(argv: Sequence[str], env: Mapping[str, str]) -> Starter:
    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only the launcher, which stops in order
            preexec_fn=die_with_parent(signal.SIGTERM),
        )

    return start


class Supervised:
    """One supervised process: restarted with exponential backoff whenever it exits unasked."""

    def __init__(
        self,
        name: str,
        start: Starter,
        *,
        after_start: Callable[[], Awaitable[None]] | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.name = name
        self._start = start
        self._after_start = after_start
        self._max_backoff_s = max_backoff_s
        self._stopping = False
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def run(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._supervise(), name=f"supervise-{self.name}")
        return self._task

    async def _supervise(self) -> None:
        backoff = 0.5
        loop = asyncio.get_running_loop()
        while not self._stopping:
            began = loop.time()
            try:
                self.process = await self._start()
            except (OSError, TimeoutError) as exc:
                print(f"{self.name:>9} | failed to start: {exc!r}", flush=True)
            else:
                pump = asyncio.create_task(self._pump(self.process))
                if self._after_start is not None:
                    await self._after_start()
                self.started.set()
                code = await self.process.wait()
                await pump
                if self._stopping:
                    return
                print(
                    f"{self.name:>9} | exited with {code}; restarting in {backoff:.1f} s",
                    flush=True,
                )
            if loop.time() - began > 60:
                backoff = 0.5  # it ran for a while: this is a new failure, not a crash loop
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)
            self.restarts += 1

    async def _pump(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for line in process.stdout:
            sys.stdout.write(f"{self.name:>9} | {line.decode(errors='replace').rstrip()}\n")
            sys.stdout.flush()

    async def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout_s)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
