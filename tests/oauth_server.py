"""A tiny OAuth2 provider on 127.0.0.1 for tests (a plain module: no pytest in here).

``POST /token`` answers the refresh-token grant (RFC 6749 §6) for the refresh tokens it was
given with ``grant()``: a new access token, ``expires_in`` seconds, and, with ``rotate``, a new
refresh token as Microsoft gives.  ``GET /introspect`` (``Authorization: Bearer TOKEN``) is what
Dovecot's oauth2 passdb asks with ``introspection_mode = auth``: ``{"active": true, "username": …}``
for a token it issued that has not expired, ``{"active": false}`` otherwise.  ``issued`` lists
every access token handed out, ``requests`` every token request's form fields.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class _Grant:
    username: str
    client_id: str


@dataclass
class OAuthServer:
    expires_in: int = 3600
    rotate: bool = False  # issue a new refresh token with every access token (Microsoft)
    issued: list[str] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    introspected: list[str] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any]] | None = None  # answer every token request with this

    def __post_init__(self) -> None:
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, tuple[str, float]] = {}  # access token -> (username, expiry)
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # --- set-up --------------------------------------------------------------------------
    def grant(self, username: str, client_id: str = "test-client") -> str:
        """A new refresh token for ``username`` (as a sign-in would have given)."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._grants[token] = _Grant(username, client_id)
        return token

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._grants.pop(refresh_token, None)

    def issue(self, username: str, expires_in: int | None = None) -> str:
        """An access token straight away, without a refresh."""
        token = "at-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (username, time.time() + (expires_in or self.expires_in))
            self.issued.append(token)
        return token

    # --- the endpoints -------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_endpoint(self) -> str:
        return self.url + "/token"

    @property
    def introspection_url(self) -> str:
        return self.url + "/introspect"

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(form)
        if self.fail_with is not None:
            return self.fail_with
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            grant = self._grants.get(form.get("refresh_token", ""))
        if grant is None:
            return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        if form.get("client_id") != grant.client_id:
            return 401, {"error": "invalid_client"}
        body: dict[str, Any] = {"access_token": self.issue(grant.username), "token_type": "Bearer",
                                "expires_in": self.expires_in, "scope": form.get("scope", "")}
        if self.rotate:
            self.revoke(form["refresh_token"])
            body["refresh_token"] = self.grant(grant.username, grant.client_id)
        return 200, body

    def _introspect(self, authorization: str) -> tuple[int, dict[str, Any]]:
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            self.introspected.append(token)
            username, expiry = self._tokens.get(token, ("", 0.0))
        if not username or expiry < time.time():
            return 200, {"active": False}
        return 200, {"active": True, "username": username, "exp": int(expiry)}

    def start(self) -> OAuthServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                if self.path == "/token":
                    self._answer(*server._token(form))
                elif self.path == "/introspect":
                    self._answer(*server._introspect("Bearer " + form.get("token", "")))
                else:
                    self._answer(404, {"error": "not_found"})

            def do_GET(self) -> None:
                if self.path.startswith("/introspect"):
                    self._answer(*server._introspect(self.headers.get("Authorization", "")))
                else:
                    self._answer(404, {"error": "not_found"})

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: tests read `requests`, `issued` and `introspected`

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
