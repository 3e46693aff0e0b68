"""A real HTTP server on a free local port, answering each POST with what a test's handler returns:
the client's retries, error handling and payloads are exercised over real sockets."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

# (path, JSON body) -> (status, JSON reply) or (status, JSON reply, seconds to wait before replying)
Handler = Callable[[str, dict[str, Any]], tuple[Any, ...]]


@contextmanager
def stub_server(handler: Handler) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 in a background thread; yields the base URL (ending in /v1)."""
    from tts.backends.serve import free_port

    async def answer(request: web.Request) -> web.Response:
        status, reply, *delay = handler(request.path.removeprefix("/v1"), await request.json())
        if delay:  # waits without blocking the server loop, so a retry is answered meanwhile
            await asyncio.sleep(delay[0])
        return web.json_response(reply, status=status)

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
