"""OAuth2: the refresh against a token endpoint on 127.0.0.1, the credentials file (atomic,
0600, errors naming it), the settings, the IMAP login's SASL mechanism, `madoguchi auth`'s wiring."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from daemon import config, oauth
from daemon.errors import ConfigError, ConnectionLost, LoginRefused
from tests.oauth_server import OAuthServer


@pytest.fixture(autouse=True)
def _global_logging_restored() -> Iterator[None]:
    """Tokens seen here go into the process-wide redactor and `cli.main` sets up logging on
    pytest's captured stderr: put both back for the tests that run after these."""
    from daemon.logs import REDACTOR

    root = logging.getLogger()
    secrets, handlers, level = REDACTOR.secrets, root.handlers[:], root.level
    yield
    REDACTOR.secrets = secrets
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def server() -> Iterator[OAuthServer]:
    with OAuthServer() as s:
        yield s


def write(path: Path, data: dict[str, Any], mode: int = 0o600) -> Path:
    path.write_text(json.dumps(data))
    path.chmod(mode)
    return path


def source(path: Path, server: OAuthServer, **kw: Any) -> oauth.TokenSource:
    return oauth.TokenSource(path, provider="gmail", client_id="test-client",
                             token_endpoint=server.token_endpoint, timeout=5, **kw)


def test_a_token_with_more_than_five_minutes_left_is_used_as_it_is(tmp_path: Path, server: OAuthServer) -> None:
    rt = server.grant("alice")
    creds = write(tmp_path / "c.json", {"refresh_token": rt, "access_token": "at-kept",
                                        "expires_at": time.time() + 301 + 5})
    before = creds.read_bytes()
    assert source(creds, server)() == "at-kept"
    assert server.requests == [] and creds.read_bytes() == before


def test_a_token_five_minutes_from_expiry_is_refreshed_and_written_back(tmp_path: Path,
                                                                         server: OAuthServer) -> None:
    rt = server.grant("alice")
    creds = write(tmp_path / "c.json", {"provider": "gmail", "refresh_token": rt,
                                        "access_token": "at-old", "expires_at": time.time() + 299})
    token = source(creds, server, client_secret="cs-1")()
    assert token == server.issued[-1] and token != "at-old"
    assert server.requests == [{"grant_type": "refresh_token", "refresh_token": rt,
                                "client_id": "test-client", "client_secret": "cs-1"}]
    kept = json.loads(creds.read_text())
    assert kept["access_token"] == token and kept["refresh_token"] == rt
    assert time.time() + 3590 < kept["expires_at"] <= time.time() + 3600
    assert source(creds, server)() == token and len(server.requests) == 1  # kept now


def test_the_clock_decides_when_to_refresh(tmp_path: Path, server: OAuthServer) -> None:
    rt = server.grant("alice")
    creds = write(tmp_path / "c.json", {"refresh_token": rt, "access_token": "at-0", "expires_at": 10_000})
    now = [9_000.0]
    src = source(creds, server, clock=lambda: now[0])
    assert src() == "at-0"
    now[0] = 9_700.0  # 300 s left: refresh
    first = src()
    assert first != "at-0" and json.loads(creds.read_text())["expires_at"] == 9_700 + 3600
    now[0] = 9_700.0 + 3600 - 301
    assert src() == first
    now[0] += 2
    assert src() not in (first, "at-0") and len(server.requests) == 2


def test_the_file_is_replaced_atomically_and_stays_0600(tmp_path: Path, server: OAuthServer) -> None:
    rt = server.grant("alice")
    creds = write(tmp_path / "c.json", {"refresh_token": rt, "extra": "kept"})
    inode = creds.stat().st_ino
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        source(creds, server)()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert creds.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]  # no temporary file left
    assert json.loads(creds.read_text())["extra"] == "kept"


def test_a_failed_write_leaves_the_old_file_whole_and_names_it(tmp_path: Path, server: OAuthServer,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    rt = server.grant("alice")
    creds = write(tmp_path / "c.json", {"refresh_token": rt})
    before = creds.read_bytes()

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(oauth.os, "replace", full_disk)
    with pytest.raises(ConfigError, match=rf"{creds}: cannot write .*No space left"):
        source(creds, server)()
    assert creds.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_write_credentials_creates_a_private_file(tmp_path: Path) -> None:
    p = tmp_path / "new.json"
    oauth.write_credentials(p, {"refresh_token": "rt"})
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert oauth.read_credentials(p) == {"refresh_token": "rt"}


def test_microsoft_rotates_the_refresh_token_and_gets_the_imap_scope(tmp_path: Path) -> None:
    with OAuthServer(rotate=True) as server:
        rt = server.grant("bob@example.com")
        creds = write(tmp_path / "c.json", {"provider": "microsoft", "refresh_token": rt})
        src = oauth.TokenSource(creds, client_id="test-client", token_endpoint=server.token_endpoint)
        src()
        kept = json.loads(creds.read_text())
        assert kept["refresh_token"] != rt and kept["refresh_token"].startswith("rt-")
        assert server.requests[0]["scope"] == "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
        kept["expires_at"] = 0
        write(creds, kept)
        src()  # the new refresh token works; the old one was revoked by the rotation
        assert len(server.issued) == 2


@pytest.mark.parametrize(("content", "mode", "message"), [
    (None, 0o600, "no OAuth2 credentials file: sign in first with `madoguchi auth"),
    ("{not json", 0o600, "is not valid JSON"),
    ('{"access_token": "x"}', 0o600, "has no refresh_token"),
    ('["rt"]', 0o600, "has no refresh_token"),
    ('{"refresh_token": "rt"}', 0o644, r"open to others \(mode 0644\): run `chmod 600 "),
    ('{"refresh_token": "rt"}', 0o640, r"mode 0640"),
])
def test_errors_name_the_file(tmp_path: Path, content: str | None, mode: int, message: str) -> None:
    p = tmp_path / "creds.json"
    if content is not None:
        p.write_text(content)
        p.chmod(mode)
    with pytest.raises(ConfigError, match=rf"^{p}: .*{message}") as info:
        oauth.read_credentials(p)
    assert "rt" not in str(info.value).replace(str(tmp_path), "")


def test_a_refused_refresh_token_says_sign_in_again(tmp_path: Path, server: OAuthServer) -> None:
    creds = write(tmp_path / "c.json", {"provider": "gmail", "refresh_token": "rt-revoked-secret"})
    with pytest.raises(LoginRefused) as info:
        source(creds, server)()
    text = str(info.value)
    assert str(creds) in text and "invalid_grant" in text and "madoguchi auth gmail" in text
    assert "rt-revoked-secret" not in text


def test_a_server_error_and_an_unreachable_endpoint_are_connection_trouble(tmp_path: Path,
                                                                            server: OAuthServer) -> None:
    creds = write(tmp_path / "c.json", {"provider": "gmail", "refresh_token": server.grant("a")})
    server.fail_with = (503, {"error": "temporarily_unavailable"})
    with pytest.raises(ConnectionLost, match=rf"HTTP 503.*{creds}"):
        source(creds, server)()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = oauth.TokenSource(creds, provider="gmail", client_id="c", timeout=5,
                            token_endpoint=f"http://127.0.0.1:{port}/token")
    with pytest.raises(ConnectionLost, match=rf"cannot reach the token endpoint .*{creds}"):
        src()


def test_an_unknown_provider_or_client_is_a_config_error(tmp_path: Path, server: OAuthServer) -> None:
    creds = write(tmp_path / "c.json", {"refresh_token": "rt"})
    with pytest.raises(ConfigError, match=rf"{creds}: which provider"):
        oauth.TokenSource(creds, token_endpoint=server.token_endpoint)()
    with pytest.raises(ConfigError, match=rf"{creds}: no client_id"):
        oauth.TokenSource(creds, provider="gmail", token_endpoint=server.token_endpoint)()


def test_tokens_are_redacted_from_logs_once_seen(tmp_path: Path, server: OAuthServer) -> None:
    from daemon.logs import REDACTOR

    rt = server.grant("alice")
    creds = write(tmp_path / "c.json", {"refresh_token": rt})
    token = source(creds, server)()
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "got %s and %s", (token, rt), None)
    REDACTOR.filter(record)
    assert token not in record.getMessage() and rt not in record.getMessage()
    assert repr(source(creds, server)) == f"TokenSource({creds})"


# --- settings --------------------------------------------------------------------------------
def settings(tmp_path: Path, **oauth_keys: Any) -> config.Settings:
    imap = {"host": "127.0.0.1", "username": "alice", "security": "none",
            "auth": oauth_keys.pop("auth", "xoauth2")}
    return config.from_mapping({"imap": imap, "oauth": oauth_keys}, tmp_path / "m.toml")


def test_settings_are_checked_where_used(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"m\.toml: \[imap\] auth: expected"):
        oauth.check(settings(tmp_path, auth="oauth"))
    with pytest.raises(ConfigError, match=r"\[oauth\] credentials_file: required"):
        oauth.check(settings(tmp_path))
    with pytest.raises(ConfigError, match=r"\[oauth\] provider"):
        oauth.check(settings(tmp_path, credentials_file="c.json", provider="yahoo"))
    with pytest.raises(ConfigError, match=r"http:// is allowed only for localhost"):
        oauth.check(settings(tmp_path, credentials_file="c.json", token_endpoint="http://example.com/token"))
    oauth.check(settings(tmp_path, credentials_file="c.json", token_endpoint="http://127.0.0.1:1/token"))
    oauth.check(settings(tmp_path, auth="password"))
    with pytest.raises(ConfigError, match="unknown setting"):  # secrets by reference only
        settings(tmp_path, client_secret="s3cret")


def test_client_secret_by_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cs").write_text("plain-secret\n")
    assert oauth.client_secret(settings(tmp_path, client_secret_file="cs")) == "plain-secret"
    (tmp_path / "cs.json").write_text(json.dumps({"installed": {"client_id": "x", "client_secret": "g-secret"}}))
    assert oauth.client_secret(settings(tmp_path, client_secret_file="cs.json")) == "g-secret"
    monkeypatch.setenv("MADOGUCHI_CS", "env-secret")
    assert oauth.client_secret(settings(tmp_path, client_secret_env="MADOGUCHI_CS")) == "env-secret"
    with pytest.raises(ConfigError, match=r"client_secret_env: \$MADOGUCHI_NONE is not set"):
        oauth.client_secret(settings(tmp_path, client_secret_env="MADOGUCHI_NONE"))
    assert oauth.client_secret(settings(tmp_path)) == ""


def test_the_account_gets_a_token_source_and_no_password(tmp_path: Path, server: OAuthServer) -> None:
    from daemon import app

    write(tmp_path / "c.json", {"provider": "gmail", "refresh_token": server.grant("alice")})
    s = settings(tmp_path, credentials_file="c.json", client_id="test-client",
                 token_endpoint=server.token_endpoint)
    acct = app.account(s)  # no password configured: not asked for
    assert acct.auth == "xoauth2" and acct.password == "" and isinstance(acct.token, oauth.TokenSource)
    token = acct.token()
    assert token not in repr(acct) and "TokenSource" not in repr(acct)
    with pytest.raises(ConfigError, match=r"c2\.json: no OAuth2 credentials file"):
        app.account(settings(tmp_path, credentials_file="c2.json"))


# --- the IMAP login --------------------------------------------------------------------------
class FakeClient:
    calls: ClassVar[list[tuple[str, ...]]] = []
    refuse = False

    def __init__(self, *args: object, **kw: object) -> None:
        pass

    def login(self, user: str, password: str) -> None:
        self.calls.append(("login", user, password))

    def _sasl(self, mech: str, user: str, token: str) -> None:
        from imapclient.exceptions import LoginError

        self.calls.append((mech, user, token))
        if self.refuse:
            raise LoginError("[AUTHENTICATIONFAILED] Authentication failed.")

    def oauth2_login(self, user: str, token: str) -> None:
        self._sasl("xoauth2", user, token)

    def oauthbearer_login(self, user: str, token: str) -> None:
        self._sasl("oauthbearer", user, token)

    def shutdown(self) -> None:
        self.calls.append(("shutdown",))


@pytest.mark.parametrize("auth", ["password", "xoauth2", "oauthbearer"])
def test_connect_uses_the_configured_mechanism(auth: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon import mailbox

    monkeypatch.setattr(mailbox, "IMAPClient", FakeClient)
    monkeypatch.setattr(FakeClient, "calls", [])
    acct = mailbox.ImapAccount("127.0.0.1", 143, "alice", "pw", security="none", auth=auth,
                               token=(lambda: "at-1") if auth != "password" else None)
    mailbox._connect(acct)
    assert FakeClient.calls == [("login", "alice", "pw") if auth == "password" else (auth, "alice", "at-1")]


def test_a_refused_oauth_login_is_login_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon import mailbox

    monkeypatch.setattr(mailbox, "IMAPClient", FakeClient)
    monkeypatch.setattr(FakeClient, "calls", [])
    monkeypatch.setattr(FakeClient, "refuse", True)
    acct = mailbox.ImapAccount("127.0.0.1", 143, "alice", "", security="none", auth="xoauth2",
                               token=lambda: "at-secret")
    with pytest.raises(LoginRefused, match="refused the XOAUTH2 login of alice") as info:
        mailbox._connect(acct)
    assert "at-secret" not in str(info.value)
    assert FakeClient.calls[-1] == ("shutdown",)
    no_token = mailbox.ImapAccount("127.0.0.1", 143, "alice", "", security="none", auth="oauthbearer")
    with pytest.raises(LoginRefused, match="needs an OAuth2 access token"):
        mailbox._connect(no_token)


# --- `madoguchi auth`: argument wiring only (the flows need the providers) --------------------
def test_auth_command_wiring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    from daemon import cli

    args = cli.parser().parse_args(["auth", "microsoft", "-c", "m.toml", "--interactive"])
    assert (args.provider, args.config, args.interactive, args.no_browser) == ("microsoft", "m.toml", True, False)
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["auth", "yahoo", "-c", "m.toml"])
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["auth", "gmail"])  # -c is required

    cfg = tmp_path / "m.toml"
    (tmp_path / "cs").write_text("g-secret\n")
    cfg.write_text('[imap]\nhost = "imap.gmail.com"\nusername = "shop@gmail.com"\nauth = "xoauth2"\n'
                   '[oauth]\nclient_id = "cid"\nclient_secret_file = "cs"\ncredentials_file = "state/creds.json"\n')
    seen: dict[str, Any] = {}

    def fake_gmail(client_id: str, secret: str, token_uri: str, scopes: tuple[str, ...], browser: bool) -> dict[str, Any]:
        seen.update(client_id=client_id, secret=secret, token_uri=token_uri, scopes=scopes, browser=browser)
        return {"refresh_token": "rt-new", "access_token": "at-new", "expires_at": 123}

    monkeypatch.setattr(oauth, "_gmail_flow", fake_gmail)
    assert cli.main(["auth", "gmail", "-c", str(cfg), "--no-browser"]) == 0
    assert seen == {"client_id": "cid", "secret": "g-secret", "token_uri": "https://oauth2.googleapis.com/token",
                    "scopes": ("https://mail.google.com/",), "browser": False}
    creds = tmp_path / "state/creds.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text()) == {"provider": "gmail", "client_id": "cid", "refresh_token": "rt-new",
                                             "access_token": "at-new", "expires_at": 123}
    out = capsys.readouterr()
    assert "rt-new" not in out.out + out.err and str(creds) in out.out

    def failing_microsoft(*args: object) -> dict[str, Any]:
        raise RuntimeError("device code expired\nmore")

    monkeypatch.setattr(oauth, "_microsoft_flow", failing_microsoft)
    cfg.write_text(cfg.read_text().replace("[oauth]\n", '[oauth]\nprovider = "microsoft"\n'))
    assert cli.main(["auth", "gmail", "-c", str(cfg)]) == 2  # the config says microsoft
    assert "not 'gmail'" in capsys.readouterr().err
    assert cli.main(["auth", "microsoft", "-c", str(cfg)]) == 5
    assert "the microsoft sign-in failed: RuntimeError: device code expired" in capsys.readouterr().err


def test_the_sign_in_libraries_are_there() -> None:
    import msal
    from google_auth_oauthlib.flow import InstalledAppFlow

    assert callable(InstalledAppFlow.from_client_config) and callable(InstalledAppFlow.run_local_server)
    for name in ("initiate_device_flow", "acquire_token_by_device_flow", "acquire_token_interactive"):
        assert callable(getattr(msal.PublicClientApplication, name))
