"""OAuth2 for the IMAP login (Gmail, Microsoft 365): the access token from a kept refresh token.

The credentials file (JSON, mode 0600, `[oauth] credentials_file`) holds the refresh token that
`madoguchi auth gmail|microsoft` got at sign-in, and the current access token with its expiry:

    {"provider": "gmail", "client_id": "…", "refresh_token": "…",
     "access_token": "…", "expires_at": 1795000000}

`TokenSource` is what the IMAP login calls: it gives the kept access token while it has more than
REFRESH_EARLY seconds left, and otherwise exchanges the refresh token at the provider's token
endpoint (RFC 6749 §6) and writes the answer back atomically (a temporary file in the same
folder, fsync, rename). Every token it sees is added to the log redactor first.

Errors name the file: a missing, unreadable or too open file is a ConfigError; a refresh token
the provider refuses is LoginRefused (sign in again); an unreachable endpoint is ConnectionLost
(the daemon tries again with backoff). The sign-in flows themselves (google-auth-oauthlib,
msal) are imported only by `sign_in`.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from daemon import config
from daemon.errors import ConfigError, ConnectionLost, LoginRefused, MadoguchiError

REFRESH_EARLY = 300  # seconds before expiry at which a token counts as expired
AUTH_METHODS = ("password", "xoauth2", "oauthbearer")
_LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class Provider:
    name: str
    token_endpoint: str
    scopes: tuple[str, ...]


GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/auth"
MICROSOFT_LOGIN = "https://login.microsoftonline.com"


def provider_info(name: str, tenant: str = "common") -> Provider:
    if name == "gmail":
        return Provider("gmail", "https://oauth2.googleapis.com/token", ("https://mail.google.com/",))
    if name == "microsoft":
        return Provider("microsoft", f"{MICROSOFT_LOGIN}/{tenant or 'common'}/oauth2/v2.0/token",
                        ("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"))
    raise ValueError(name)


# --- the credentials file ------------------------------------------------------------------
def read_credentials(path: Path) -> dict[str, Any]:
    """The credentials file's JSON object; it must be private to its owner (no group/other bits)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{path}: no OAuth2 credentials file: sign in first with "
                          "`madoguchi auth gmail|microsoft -c CONFIG`") from None
    except OSError as exc:
        raise ConfigError(f"{path}: the OAuth2 credentials file cannot be read: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"{path}: the OAuth2 credentials file is open to others (mode "
                          f"{stat.S_IMODE(mode):04o}): run `chmod 600 {path}`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: the OAuth2 credentials file cannot be read: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        # the decoder's message quotes nothing of the file, but say only where it is wrong
        raise ConfigError(f"{path}: the OAuth2 credentials file is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("refresh_token"), str) or not data["refresh_token"]:
        raise ConfigError(f"{path}: the OAuth2 credentials file has no refresh_token: sign in again "
                          "with `madoguchi auth gmail|microsoft -c CONFIG`")
    return data


def write_credentials(path: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically: a reader sees the old or the new file, never half of one;
    the new file is mode 0600 from its creation on."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the OAuth2 credentials file: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # mkstemp makes it 0600; say so for any umask or platform
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConfigError(f"{path}: cannot write the OAuth2 credentials file: {exc.strerror}") from None
    with contextlib.suppress(OSError):  # the rename itself survives a crash once the folder is synced
        dirfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)


def _redact(*secrets: object) -> None:
    from daemon.logs import REDACTOR

    for s in secrets:  # real tokens are long; a short one would blank out common words
        if isinstance(s, str) and len(s) >= 8 and s not in REDACTOR.secrets:
            REDACTOR.add(s)


# --- the refresh ---------------------------------------------------------------------------
class TokenSource:
    """Callable giving a valid access token; refreshes REFRESH_EARLY seconds before expiry."""

    def __init__(self, path: Path, *, provider: str = "", client_id: str = "", client_secret: str = "",
                 token_endpoint: str = "", tenant: str = "common", timeout: float = 30.0,
                 early: float = REFRESH_EARLY, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._provider, self._client_id, self._secret = provider, client_id, client_secret
        self._endpoint, self._tenant = token_endpoint, tenant
        self.timeout, self.early, self.clock = timeout, early, clock
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # no token, no secret
        return f"TokenSource({self.path})"

    def __call__(self) -> str:
        with self._lock:
            data = read_credentials(self.path)
            _redact(data.get("refresh_token"), data.get("access_token"))
            token, expires_at = data.get("access_token"), data.get("expires_at")
            if (isinstance(token, str) and token and isinstance(expires_at, int | float)
                    and expires_at - self.early > self.clock()):
                return token
            data = self._refresh(data)
            write_credentials(self.path, data)
            return str(data["access_token"])

    def provider(self, data: dict[str, Any]) -> Provider:
        name = self._provider or str(data.get("provider") or "")
        if name not in ("gmail", "microsoft"):
            raise ConfigError(f"{self.path}: which provider issued this token is not known: set "
                              '[oauth] provider = "gmail" or "microsoft"')
        return provider_info(name, self._tenant)

    def _refresh(self, data: dict[str, Any]) -> dict[str, Any]:
        prov = self.provider(data)
        endpoint = self._endpoint or prov.token_endpoint
        client_id = self._client_id or str(data.get("client_id") or "")
        if not client_id:
            raise ConfigError(f"{self.path}: no client_id to refresh the token with: set [oauth] client_id")
        form = {"grant_type": "refresh_token", "refresh_token": data["refresh_token"], "client_id": client_id}
        if self._secret:
            form["client_secret"] = self._secret
        if prov.name == "microsoft":
            form["scope"] = " ".join(prov.scopes)
        answer = _post(endpoint, form, self.timeout, self.path, prov.name)
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise LoginRefused(f"the token endpoint {endpoint} answered without an access token "
                               f"(refreshing the token in {self.path})")
        new = dict(data)
        new.update(provider=prov.name, client_id=client_id, access_token=access,
                   expires_at=int(self.clock() + _seconds(answer.get("expires_in"))))
        if isinstance(answer.get("refresh_token"), str) and answer["refresh_token"]:
            new["refresh_token"] = answer["refresh_token"]  # Microsoft hands out a new one each time
        _redact(new["access_token"], new["refresh_token"])
        return new


def _seconds(value: object) -> float:
    try:
        return max(float(value), 0.0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 3600.0  # RFC 6749 leaves expires_in optional; Google and Microsoft give an hour


def _post(endpoint: str, form: dict[str, str], timeout: float, path: Path, name: str) -> dict[str, Any]:
    request = urllib.request.Request(
        endpoint, data=urlencode(form).encode("ascii"), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                 "User-Agent": "madoguchi"})
    again = f"sign in again with `madoguchi auth {name} -c CONFIG`"
    # a proxy from the environment is for the providers, never for a token endpoint on this machine
    local = urlsplit(endpoint).hostname in _LOCAL_HOSTS
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if local else urllib.request.build_opener()
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(1_000_000)
    except urllib.error.HTTPError as exc:
        error, description = _error_of(exc)
        what = f"{error}: {description}" if description else error
        if exc.code in (400, 401, 403):
            raise LoginRefused(f"the token endpoint {endpoint} refused the refresh token in {path} "
                               f"(HTTP {exc.code}, {what}): {again}") from None
        raise ConnectionLost(f"the token endpoint {endpoint} failed (HTTP {exc.code}, {what}) "
                             f"while refreshing the token in {path}") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, timed out, TLS
        reason = getattr(exc, "reason", None) or exc
        raise ConnectionLost(f"cannot reach the token endpoint {endpoint} to refresh the token in "
                             f"{path}: {reason}") from None
    try:
        answer = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = None
    if not isinstance(answer, dict):
        raise LoginRefused(f"the token endpoint {endpoint} answered with something other than a "
                           f"JSON object (refreshing the token in {path})")
    return answer


def _error_of(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """The standard `error` and `error_description` of a refused token request (RFC 6749 §5.2);
    nothing else of the body, which is not ours to print."""
    try:
        body = json.loads(exc.read(100_000))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return (exc.reason or "error"), ""
    if not isinstance(body, dict):
        return "error", ""
    error, description = body.get("error", "error"), body.get("error_description", "")
    return str(error)[:100], str(description).splitlines()[0][:300] if description else ""


# --- from the settings ---------------------------------------------------------------------
def _where(s: config.Settings) -> str:
    return str(s.source) if s.source else "<settings>"


def check(s: config.Settings) -> None:
    """The [imap] auth and [oauth] settings, checked where they are used."""
    where = _where(s)
    if s.imap.auth not in AUTH_METHODS:
        raise ConfigError(f'{where}: [imap] auth: expected "password", "xoauth2" or "oauthbearer", '
                          f"got {s.imap.auth!r}")
    if s.oauth.provider not in ("", "gmail", "microsoft"):
        raise ConfigError(f'{where}: [oauth] provider: expected "gmail" or "microsoft", got {s.oauth.provider!r}')
    if s.oauth.token_endpoint:
        url = urlsplit(s.oauth.token_endpoint)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise ConfigError(f"{where}: [oauth] token_endpoint: expected an https:// URL")
        if url.scheme == "http" and url.hostname not in _LOCAL_HOSTS:
            raise ConfigError(f"{where}: [oauth] token_endpoint: http:// is allowed only for localhost")
    if s.imap.auth != "password" and not s.oauth.credentials_file:
        raise ConfigError(f"{where}: [oauth] credentials_file: required with [imap] auth = {s.imap.auth!r}")


def client_secret(s: config.Settings) -> str:
    """The client secret, by reference only: a file (its first line, or Google's downloaded
    client_secret….json) or an environment variable. Empty when none is configured."""
    where = _where(s)
    if s.oauth.client_secret_file:
        p = s.path(s.oauth.client_secret_file)
        try:
            text = p.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            raise ConfigError(f"{where}: [oauth] client_secret_file: cannot read {p}") from None
        if text.startswith("{"):
            try:
                data = json.loads(text)
                section = data.get("installed") or data.get("web") or data
                return str(section["client_secret"])
            except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
                raise ConfigError(f"{where}: [oauth] client_secret_file: {p} is JSON without a "
                                  "client_secret") from None
        if not text:
            raise ConfigError(f"{where}: [oauth] client_secret_file: {p} is empty")
        return text.splitlines()[0].strip()
    if s.oauth.client_secret_env:
        value = os.environ.get(s.oauth.client_secret_env)
        if not value:
            raise ConfigError(f"{where}: [oauth] client_secret_env: ${s.oauth.client_secret_env} is not set")
        return value
    return ""


def token_source(s: config.Settings) -> TokenSource | None:
    """The access-token provider for the IMAP login, or None for `auth = "password"`.
    Reads the credentials file once, so that a missing or open file stops the start."""
    check(s)
    if s.imap.auth == "password":
        return None
    secret = client_secret(s)
    _redact(secret)
    source = TokenSource(s.path(s.oauth.credentials_file), provider=s.oauth.provider,
                         client_id=s.oauth.client_id, client_secret=secret,
                         token_endpoint=s.oauth.token_endpoint, tenant=s.oauth.tenant,
                         timeout=float(s.imap.timeout_seconds))
    data = read_credentials(source.path)
    _redact(data.get("refresh_token"), data.get("access_token"))
    source.provider(data)
    return source


# --- sign-in (`madoguchi auth`): thin wrappers over the providers' own libraries -----------
def sign_in(s: config.Settings, name: str, *, browser: bool = True, device_code: bool = True) -> Path:
    """Run the provider's sign-in flow and write the credentials file. Returns its path."""
    check(s)
    where = _where(s)
    if s.oauth.provider and s.oauth.provider != name:
        raise ConfigError(f"{where}: [oauth] provider is {s.oauth.provider!r}, not {name!r}")
    if not s.oauth.credentials_file:
        raise ConfigError(f"{where}: [oauth] credentials_file: required to keep the sign-in")
    if not s.oauth.client_id:
        raise ConfigError(f"{where}: [oauth] client_id: required to sign in (the app registered "
                          f"with {'Google Cloud' if name == 'gmail' else 'Microsoft Entra ID'})")
    prov = provider_info(name, s.oauth.tenant)
    secret = client_secret(s)
    _redact(secret)
    if name == "gmail" and not secret:
        raise ConfigError(f"{where}: [oauth] client_secret_file: Google's sign-in needs the "
                          "client secret of the Desktop app client (or its client_secret.json)")
    try:
        if name == "gmail":
            got = _gmail_flow(s.oauth.client_id, secret, s.oauth.token_endpoint or prov.token_endpoint,
                              prov.scopes, browser)
        else:
            got = _microsoft_flow(s.oauth.client_id, s.oauth.tenant, prov.scopes, device_code,
                                  s.imap.username)
    except (MadoguchiError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the libraries' own errors (network, refused consent, time-out)
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise LoginRefused(f"the {name} sign-in failed: {type(exc).__name__}: {first}") from None
    _redact(got.get("refresh_token"), got.get("access_token"))
    if not got.get("refresh_token"):
        raise LoginRefused(f"the {name} sign-in gave no refresh token: sign in again")
    path = s.path(s.oauth.credentials_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_credentials(path, {"provider": name, "client_id": s.oauth.client_id, **got})
    return path


def _gmail_flow(client_id: str, secret: str, token_uri: str, scopes: tuple[str, ...],
                browser: bool) -> dict[str, Any]:
    from google_auth_oauthlib.flow import InstalledAppFlow

    flow = InstalledAppFlow.from_client_config(
        {"installed": {"client_id": client_id, "client_secret": secret, "auth_uri": GOOGLE_AUTH_URI,
                       "token_uri": token_uri, "redirect_uris": ["http://localhost"]}},
        scopes=list(scopes))
    # loopback redirect: a one-shot web server on localhost receives the code
    creds = flow.run_local_server(
        host="localhost", port=0, open_browser=browser,
        authorization_prompt_message="Open this address in a browser on this machine and sign in "
                                     "to the seller's Google account:\n{url}",
        success_message="madoguchi: signed in. You can close this tab.",
        access_type="offline", prompt="consent")  # consent: Google gives a refresh token only then
    # google-auth's expiry is a naive datetime in UTC
    expiry = creds.expiry.replace(tzinfo=UTC).timestamp() if creds.expiry else time.time() + 3600
    return {"refresh_token": creds.refresh_token, "access_token": creds.token, "expires_at": int(expiry)}


def _microsoft_flow(client_id: str, tenant: str, scopes: tuple[str, ...], device_code: bool,
                    username: str) -> dict[str, Any]:
    import msal

    app = msal.PublicClientApplication(client_id, authority=f"{MICROSOFT_LOGIN}/{tenant or 'common'}")
    wanted = [x for x in scopes if x != "offline_access"]  # msal asks for offline_access itself
    if device_code:
        flow = app.initiate_device_flow(scopes=wanted)
        if "user_code" not in flow:
            raise LoginRefused(f"Microsoft refused to start the sign-in: {flow.get('error_description') or flow.get('error')}")
        print(flow["message"], file=sys.stderr, flush=True)
        result = app.acquire_token_by_device_flow(flow)
    else:
        result = app.acquire_token_interactive(scopes=wanted, login_hint=username or None)
    if "access_token" not in result:
        raise LoginRefused(f"the Microsoft sign-in failed: {result.get('error')}: "
                           f"{str(result.get('error_description', '')).splitlines()[0] if result.get('error_description') else ''}")
    signed_in = (result.get("id_token_claims") or {}).get("preferred_username", "")
    if signed_in and username and signed_in.lower() != username.lower():
        print(f"madoguchi: signed in as {signed_in}, but [imap] username is {username}",
              file=sys.stderr)
    return {"refresh_token": result.get("refresh_token", ""), "access_token": result["access_token"],
            "expires_at": int(time.time() + _seconds(result.get("expires_in")))}
