"""The server's safety, in one ASGI middleware that every request passes, so no route can forget it.
docs/SECURITY.md explains the model; in order, each request meets:

1. The Host allow-list: the Host header names loopback (127.0.0.1, localhost, [::1]) or a name
   given with --host/--allow-host, else 403. This stops DNS rebinding for every route.
2. The access token, when the server has one (any bind beyond loopback, or --token): `?token=`
   (then kept in an HttpOnly SameSite=Strict cookie), that cookie, or `Authorization: token T`.
   Missing or wrong: 401.
3. Writes: every method but GET, HEAD and OPTIONS changes state, and must carry `X-Atlas-Token`
   (the per-start secret the page receives in index.html, or the access token), a JSON body or
   none, and a same-origin Origin when it sends one. Form posts, text/plain and cross-site
   fetches: 403. A body over MAX_BODY bytes: 413.
4. Headers on every response: a Content-Security-Policy that allows only the app's own scripts,
   styles and images and no framing (a notebook's server, Map.serve, lets local notebook pages
   frame it: NOTEBOOK_FRAME_ANCESTORS), nosniff, no referrer.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import secrets
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atlas.errors import AtlasError
from atlas.server.errors import ApiError

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = ("0.0.0.0", "::", "")
ANY_HOST = "*"
MAX_BODY = 1 << 20
SECRET_HEADER = "x-atlas-token"
SECRET_META = '<meta name="atlas-token" content="">'
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSP_SOURCES = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")
CSP = f"{CSP_SOURCES}; frame-ancestors 'none'"
HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
           "x-frame-options": "DENY", "cross-origin-resource-policy": "same-origin"}
# Pages on this machine that may show the map in a frame when a notebook asks (Map.show):
# Jupyter on a loopback port, and VS Code's notebook views.
NOTEBOOK_FRAME_ANCESTORS = ("'self'", "http://localhost:*", "http://127.0.0.1:*", "https://localhost:*",
                            "https://127.0.0.1:*", "vscode-webview:")


@dataclass(frozen=True)
class Policy:
    """What the guard enforces: the Host names served (loopback's always; ANY_HOST: any),
    the write secret, the access token (None: none needed) and the body size cap."""

    hosts: frozenset[str]
    secret: str
    token: str | None = None
    max_body: int = MAX_BODY
    frame_ancestors: tuple[str, ...] = ()  # pages that may frame the app (CSP sources); none by default

    @classmethod
    def create(cls, *, hosts: Iterable[str] = (), token: str | None = None, max_body: int = MAX_BODY,
               frame_ancestors: tuple[str, ...] = ()) -> Policy:
        return cls(LOOPBACK | {host_name(h) for h in hosts}, secrets.token_urlsafe(24), token or None, max_body,
                   tuple(frame_ancestors))

    def headers(self) -> dict[str, str]:
        """HEADERS, with framing allowed to `frame_ancestors` when there are any."""
        if not self.frame_ancestors:
            return HEADERS
        framed = f"{CSP_SOURCES}; frame-ancestors {' '.join(self.frame_ancestors)}"
        return {name: value for name, value in HEADERS.items() if name != "x-frame-options"} | \
            {"content-security-policy": framed}


class Guard:
    """The ASGI middleware: refuses what `Policy` forbids with a JSON reason, and adds its headers."""

    def __init__(self, app: ASGIApp, policy: Policy):
        self.app, self.policy = app, policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no route speaks it
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        extra = MutableHeaders()
        send = _adding(send, extra, self.policy.headers())
        try:
            if self.authenticate(scope, headers):
                extra.append("set-cookie", _cookie(headers, self.policy.token))
            if scope["method"] not in SAFE_METHODS:
                self.check_write(scope, headers)
                receive = await _buffered(receive, headers, self.policy.max_body)
        except ApiError as refused:
            await JSONResponse({"error": refused.message}, refused.status)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def authenticate(self, scope: Scope, headers: Headers) -> bool:
        """Checks the Host, then the access token; True when a valid `?token=` should set the cookie."""
        host = host_name(headers.get("host", ""))
        if ANY_HOST not in self.policy.hosts and host not in self.policy.hosts:
            raise ApiError(403, f"host {host or '(none)'!r} is not served here; open the map at http://127.0.0.1 "
                                "or start `atlas serve` with --allow-host NAME")
        token = self.policy.token
        if token is None:
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[-1]
        if _same(query, token):
            return True
        cookie = cookie_parser(headers.get("cookie", "")).get(_cookie_name(headers), "")
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if _same(cookie, token) or \
                (scheme.lower() in ("token", "bearer") and _same(given.strip(), token)):
            return False
        raise ApiError(401, "this server needs its access token: open the URL `atlas serve` printed "
                            "(it ends in ?token=...), or send the header `Authorization: token ...`")

    def check_write(self, scope: Scope, headers: Headers) -> None:
        """A state change: same origin, a JSON body, and the write secret (or access token)."""
        origin = headers.get("origin")
        expected = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        if (origin is not None and origin.lower() != expected.lower()) or \
                headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            raise ApiError(403, f"cross-site write refused (origin {origin or 'unknown'!r}); "
                                "change the map from its own page")
        kind = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind != "application/json":
            raise ApiError(403, f"writes send JSON (Content-Type: application/json), not {kind!r}")
        given = headers.get(SECRET_HEADER, "")
        if not (_same(given, self.policy.secret) or (self.policy.token and _same(given, self.policy.token))):
            raise ApiError(403, "a write needs the X-Atlas-Token header the page sends: reload the page "
                                "(the server may have restarted), or send the access token")


def host_name(host: str) -> str:
    """The name in a Host header or a --host value: lowercase, no port, no brackets, no final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    return host.rstrip(".")


def is_loopback(host: str) -> bool:
    name = host_name(host)
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def served_hosts(bind: str, allow: Iterable[str] = ()) -> list[str]:
    """The Host names a server bound to `bind` answers: loopback's (always), `bind` itself, this
    machine's names and addresses when it binds every interface, and `allow`."""
    names = [*allow, *(_machine_names() if host_name(bind) in WILDCARDS else [bind])]
    return sorted({host_name(n) for n in names} - LOOPBACK)


def server_urls(bind: str, port: int, token: str | None) -> list[str]:
    """The URLs to print for a server on `bind`: this machine's name and 127.0.0.1 for a bind
    to every interface; with `?token=` when it has one (the browser then keeps it in a cookie)."""
    names = [socket.gethostname(), "127.0.0.1"] if host_name(bind) in WILDCARDS else [host_name(bind)]
    query = f"?token={token}" if token else ""
    return [f"http://{f'[{n}]' if ':' in n else n}:{port}/{query}" for n in names]


def access_token(bind: str, token: str | None, no_auth: bool) -> str | None:
    """The token every request must carry: `token` if given; a fresh one for a bind beyond
    loopback; None on loopback, or with `no_auth`."""
    if no_auth and token:
        raise AtlasError("--token and --no-auth contradict each other; pass one")
    if token is not None and not re.fullmatch(r"[\w.~-]+", token):
        raise AtlasError("--token takes letters, digits and . _ ~ - (leave it out to get a generated one)")
    if no_auth or (token is None and is_loopback(bind)):
        return None
    return token or secrets.token_urlsafe(24)


def with_secret(html: str, secret: str) -> str:
    """index.html with the write secret in its `atlas-token` meta tag."""
    if SECRET_META not in html:
        raise RuntimeError(f"web/index.html lacks {SECRET_META}: the page could not write")
    return html.replace(SECRET_META, f'<meta name="atlas-token" content="{secret}">')


class OneAtATime:
    """A lock for heavy routes (export, report): a second caller gets 429 instead of queueing work."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running = ""

    @contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise ApiError(429, f"{self._running} is running; try again when it finishes")
        self._running = what
        try:
            yield
        finally:
            self._lock.release()


def _same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _cookie_name(headers: Headers) -> str:
    """One cookie per port: two servers on one machine do not overwrite each other's token."""
    host = headers.get("host", "")
    port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else "80"
    return f"atlas-token-{port if port.isdigit() else '80'}"


def _cookie(headers: Headers, token: str) -> str:
    return f"{_cookie_name(headers)}={token}; HttpOnly; SameSite=Strict; Path=/"


def _adding(send: Send, extra: MutableHeaders, security: dict[str, str]) -> Send:
    """`send` with the `security` headers (unless the route set its own) and `extra` added to the response."""
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in security.items():
                if name not in headers:
                    headers[name] = value
            for name, value in extra.raw:
                headers.raw.append((name, value))
        await send(message)
    return wrapped


async def _buffered(receive: Receive, headers: Headers, limit: int) -> Receive:
    """The whole request body read now (413 past `limit` bytes), replayed to the app."""
    declared = headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > limit:
        raise ApiError(413, f"the request body is over {limit:,} bytes")
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise ApiError(413, f"the request body is over {limit:,} bytes")
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replay


def _machine_names() -> list[str]:
    """This machine's host name, full name and addresses (for a bind to every interface)."""
    hostname = socket.gethostname()
    names = [hostname, socket.getfqdn()]
    with suppress(OSError):
        names += [info[4][0] for info in socket.getaddrinfo(hostname, None)]
    return names
