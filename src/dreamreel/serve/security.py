"""Safe by default: a local server is reachable by any web page the user opens (DNS rebinding makes a
hostile name resolve to 127.0.0.1; a cross-site form can POST to it), so every request passes:

1. a Host allow-list (the loopback names, the bound host, ``--allow-host`` names): a rebound name
   is refused;
2. an Origin check on state-changing requests (anything but GET/HEAD/OPTIONS): a browser's Origin
   must be this server itself; clients that send no Origin (scripts, webuiapi) are not browsers;
3. with a password, every request carries it (HTTP Basic with any user name, as A1111's
   ``--api-auth`` clients send it, ``Authorization: Bearer``, or the login page's cookie), else 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
COOKIE = "dreamreel_auth"
OPEN_PATHS = ("/login", "/static/login.html", "/static/style.css")  # what a visitor without the password may see


@dataclass(frozen=True)
class Guard:
    password: str | None = None
    hosts: frozenset[str] = field(default_factory=lambda: frozenset(LOCAL_HOSTS))

    @classmethod
    def make(cls, password: str | None, bound_host: str, extra_hosts: Iterable[str] = ()) -> Guard:
        hosts = {*LOCAL_HOSTS, *extra_hosts}
        if bound_host not in ("0.0.0.0", "::", ""):
            hosts.add(bound_host)
        return cls(password or None, frozenset(h.lower() for h in hosts))

    def session_token(self) -> str:
        """The login cookie's value: derived from the password, so it survives a restart."""
        assert self.password is not None
        return hmac.new(self.password.encode(), b"dreamreel-session", hashlib.sha256).hexdigest()

    def host_allowed(self, host_header: str) -> bool:
        host = urlsplit(f"//{host_header}").hostname or ""
        return "*" in self.hosts or host.lower() in self.hosts

    def authorised(self, request: Request) -> bool:
        if self.password is None:
            return True
        cookie = request.cookies.get(COOKIE, "")
        if cookie and secrets.compare_digest(cookie, self.session_token()):
            return True
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return secrets.compare_digest(credentials.strip(), self.password)
        if scheme.lower() == "basic":
            try:
                _, _, given = base64.b64decode(credentials.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return secrets.compare_digest(given, self.password)
        return False

    async def __call__(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        host = request.headers.get("host", "")
        if not self.host_allowed(host):
            return PlainTextResponse(f"host {host!r} is not allowed (start with --allow-host)", status_code=400)
        if request.method not in SAFE_METHODS:
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
                return PlainTextResponse("cross-origin request refused", status_code=403)
            if request.headers.get("sec-fetch-site") == "cross-site":
                return PlainTextResponse("cross-site request refused", status_code=403)
        if not self.authorised(request) and request.url.path not in OPEN_PATHS:
            if "text/html" in request.headers.get("accept", "") and request.method == "GET":
                from dreamreel.serve.app import static_file

                return Response(static_file("login.html"), status_code=401, media_type="text/html")
            return PlainTextResponse(
                "this server needs its password", status_code=401, headers={"WWW-Authenticate": 'Basic realm="dreamreel"'}
            )
        return await call_next(request)
