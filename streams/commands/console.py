"""``catalog console [--host 127.0.0.1] [--port 8090]``: the web page where a person compares and selects models.

The flags override ``CATALOG_CONSOLE_HOST`` / ``_PORT``. Port 0 takes a free port; the address the
server listens on is printed as one JSON line on stdout once it accepts connections, so a script
(or a test) can wait for it.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from streams.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("console", help="web console: compare candidate models, select the served one, search")
    p.add_argument("--host", help="address to bind (default CATALOG_CONSOLE_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default CATALOG_CONSOLE_PORT, 8090; 0: a free one)")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from streams.console.app import create_app

    updates = {k: v for k, v in (("console_host", args.host), ("console_port", args.port)) if v is not None}
    settings = settings.model_copy(update=updates)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.console_host,
        port=settings.console_port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's records go through the root handler: JSON lines like every other log
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the client address is the socket's: the loopback check must not trust headers
    )
    server = uvicorn.Server(config)
    return asyncio.run(_serve(server))


async def _serve(server: object) -> int:
    import uvicorn

    assert isinstance(server, uvicorn.Server)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if server.started:
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        print(json.dumps({"console": f"http://{host}:{port}/", "host": host, "port": port}), flush=True)
    await task
    return 0 if server.started else 1
