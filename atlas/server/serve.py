"""Run the app: bind the port first (a clear error when it is taken), then serve on that
socket, in the foreground (`atlas serve`) or on a background thread (`Map.serve`)."""

from __future__ import annotations

import atexit
import errno
import os
import socket
import threading
import time
from collections.abc import Iterable

import uvicorn

from atlas.errors import AtlasError
from atlas.mapdir import MapDir
from atlas.server.app import create_app
from atlas.server.security import NOTEBOOK_FRAME_ANCESTORS, access_token, host_name, served_hosts, server_urls

START_TIMEOUT_S = 30.0


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) (a --host value: a name, an address, [::1]); port 0 picks a free one."""
    name = host_name(host)
    sock = socket.socket(socket.AF_INET6 if ":" in name else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((name, port))
    except (OSError, OverflowError) as e:
        sock.close()
        raise AtlasError(_bind_problem(host, port, e)) from None
    return sock


def _bind_problem(host: str, port: int, error: OSError | OverflowError) -> str:
    """Why (host, port) cannot be bound, naming the option to change."""
    if isinstance(error, OverflowError):
        return f"--port is 0 to 65535 (0: any free port), not {port}"
    if isinstance(error, socket.gaierror):
        return f"--host {host}: no such host name; pass a name or address of this machine (127.0.0.1, 0.0.0.0)"
    if error.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; pass another with --port"
    return f"cannot listen on {host} port {port} ({error.strerror}); pass another --host or --port"


def server(map_dir: str | os.PathLike, host: str, port: int, *, allow: Iterable[str] = (),
           token: str | None = None, no_auth: bool = False,
           frame_ancestors: tuple[str, ...] = ()) -> tuple[uvicorn.Server, socket.socket, list[str]]:
    """The uvicorn server of one map's app under the security model of docs/SECURITY.md, the
    socket to run it on (`run(sockets=[sock])`) and the URLs to open it at (with the token a
    bind beyond loopback needs). `allow`, `token`, `no_auth`: as `atlas serve`'s options."""
    MapDir(map_dir).manifest()  # a clear error before anything starts
    token = access_token(host, token, no_auth)
    sock = bind(host, port)
    try:
        app = create_app(map_dir, token=token, hosts=served_hosts(host, allow), frame_ancestors=frame_ancestors)
        urls = server_urls(host, sock.getsockname()[1], token)
        return uvicorn.Server(uvicorn.Config(app, log_level="warning")), sock, urls
    except BaseException:
        sock.close()
        raise


class Background:
    """A server on 127.0.0.1 on a daemon thread, which local notebook pages may frame; it stops
    with `stop()` or when the process exits."""

    def __init__(self, map_dir: str | os.PathLike, port: int = 0):
        self._server, sock, urls = server(map_dir, "127.0.0.1", port, frame_ancestors=NOTEBOOK_FRAME_ANCESTORS)
        self.url = urls[0]
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"atlas-serve {self.url}", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise AtlasError(f"the server for {map_dir} did not start")
            time.sleep(0.01)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT_S)
        atexit.unregister(self.stop)
