"""Serving an ASGI application (the HTTP gateway, the admin console) with uvicorn on the
suite's event loop, beside the gRPC servers: bound before it is reported, stopped with a
grace period, and leaving signals to the suite's `run_until_signal`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: the suite's `run_until_signal` owns it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class AsgiServing:
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int
    address: str

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def shutdown(self, grace: float = 0) -> None:
        """Stop taking requests; let those in flight finish for `grace` seconds (and 5 more)."""
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=max(grace, 0) + 5)
        except TimeoutError:
            self.server.force_exit = True
            await self.task


async def serve_asgi(app: Any, *, host: str, port: int, what: str) -> AsgiServing:
    """Binds `host:port` (0: any free port) and serves `app` until `shutdown`. OSError when
    the port cannot be had or the server does not start."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False, server_header=False)
    server = _Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise OSError(f"the {what} did not start on {host}:{port}")
        await asyncio.sleep(0.01)
    address = f"[{host}]:{bound}" if family == socket.AF_INET6 else f"{host}:{bound}"
    return AsgiServing(server, task, bound, address)
