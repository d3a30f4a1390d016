"""uvicorn's server, printing one `serving on URL` line once the socket listens (tools and tests
wait for it; with --port 0 it is how they learn the port). Its own module so that `api.server
.commands` imports uvicorn only to serve."""

from __future__ import annotations

import socket

import uvicorn

from api.server.commands import _announce


class AnnouncingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, scheme: str) -> None:
        super().__init__(config)
        self.scheme = scheme

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.servers:
            _announce(self.scheme, self.config.host, self.servers[0].sockets[0])
