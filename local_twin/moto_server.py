"""A moto server on 127.0.0.1 with a clean slate.

moto keeps its backends per process, so a second server in the same process would see the first
one's stacks; every twin starts by resetting them.
"""

from __future__ import annotations

import urllib.request

from moto.server import ThreadedMotoServer


def start_moto() -> tuple[ThreadedMotoServer, str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()  # the port the OS bound for port=0
    endpoint = f"http://{host}:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10)
    return server, endpoint
