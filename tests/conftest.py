from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import pytest

import rcp
from sshd import sshd  # noqa: F401  (fixture: a throwaway OpenSSH server)


@dataclass
class Peers:
    server_cert: rcp.Certificate = field(default_factory=rcp.Certificate.generate)
    client_cert: rcp.Certificate = field(default_factory=rcp.Certificate.generate)
    key: bytes = field(default_factory=lambda: os.urandom(32))

    def options(self) -> rcp.QuicOptions:
        opts = rcp.QuicOptions()
        opts.handshake_timeout = 3.0
        opts.idle_timeout = 5.0
        return opts

    def server(self, pinned: list[str] | None = None, host: str = "127.0.0.1") -> rcp.QuicServer:
        return rcp.QuicServer(self.server_cert, pinned or [self.client_cert.fingerprint], self.key,
                              host=host, options=self.options())

    def connect(self, server: rcp.QuicServer, pinned: str | None = None, key: bytes | None = None) -> rcp.Link:
        return rcp.connect(server.host, server.port, self.client_cert, pinned or self.server_cert.fingerprint,
                           key or self.key, options=self.options())

    def pair(self, host: str = "127.0.0.1") -> tuple[rcp.QuicServer, rcp.Link, rcp.Link]:
        server = self.server(host=host)
        accepted: dict[str, rcp.Link] = {}
        t = threading.Thread(target=lambda: accepted.setdefault("link", server.accept(timeout=5.0)))
        t.start()
        client = self.connect(server)
        t.join(timeout=10)
        return server, client, accepted["link"]


@pytest.fixture
def peers() -> Peers:
    return Peers()
