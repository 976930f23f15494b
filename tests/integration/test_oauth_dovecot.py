"""OAuth2 login against a real Dovecot on 127.0.0.1 whose oauth2 passdb asks a local token
endpoint (tests/oauth_server.py): the daemon refreshes the token, logs in with XOAUTH2 or
OAUTHBEARER, files drafts, and no token reaches its output, its log or its state."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.dovecot import Account, server_folder
from tests.dovecot_oauth import OAuthDovecot
from tests.mails import amazon, web
from tests.oauth_server import OAuthServer

ROOT = Path(__file__).resolve().parents[2]
COMPLAINT = "全巻セットのはずですが、7巻が入っていませんでした。至急送ってください。"
CLIENT_SECRET = "cs-" + "k3ep-me-0ut-of-logs"


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def oauth_dovecot(request: pytest.FixtureRequest, oauth_server: OAuthServer,
                  dovecot: object) -> Iterator[OAuthDovecot]:
    # `dovecot` first: its fixture fails clearly when the binary is missing
    with server_folder("dovecot-oauth", keep=lambda: request.session.testsfailed > 0) as root:
        server = OAuthDovecot(root / "dovecot", oauth_server.introspection_url)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def user(oauth_dovecot: OAuthDovecot, request: pytest.FixtureRequest) -> Account:
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return oauth_dovecot.add_user(f"o-{name}", "pw-" + name[:8])  # password only for the checks


def setup(tmp: Path, acct: Account, server: OAuthServer, auth: str = "xoauth2",
          credentials: dict[str, object] | None = None) -> Path:
    creds = tmp / "oauth.json"
    creds.write_text(json.dumps(credentials or {"provider": "gmail", "refresh_token": server.grant(acct.username)}))
    creds.chmod(0o600)
    (tmp / "client-secret").write_text(CLIENT_SECRET + "\n")
    cfg = tmp / "madoguchi.toml"
    cfg.write_text(f'[imap]\nhost = "{acct.host}"\nport = {acct.port}\nusername = "{acct.username}"\n'
                   f'security = "none"\nauth = "{auth}"\n'
                   f'[oauth]\ncredentials_file = "oauth.json"\nclient_id = "test-client"\n'
                   f'client_secret_file = "client-secret"\ntoken_endpoint = "{server.token_endpoint}"\n'
                   '[state]\npath = "state.sqlite3"\n'
                   '[seller]\nshop_name = "まどぐち書店"\nperson_name = "山田"\nfrom_address = "shop@example.com"\n')
    return cfg


def madoguchi(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def drafts(acct: Account) -> list[bytes]:
    with IMAPClient(acct.host, port=acct.port, ssl=False) as c:
        c.login(acct.username, acct.password)  # PLAIN, served by the passwd-file passdb
        c.select_folder("Drafts", readonly=True)
        uids = c.search(["ALL"])
        return [v[b"BODY[HEADER]"] for v in c.fetch(uids, ["BODY.PEEK[HEADER]"]).values()] if uids else []


def secrets_in(text: str, server: OAuthServer, user: Account, refresh_tokens: list[str]) -> list[str]:
    """The tokens (and the client secret) found in `text`, also as the base64 SASL strings that
    carry an access token on the wire (XOAUTH2, OAUTHBEARER, as imapclient builds them)."""
    wire = [base64.b64encode(sasl.encode()).decode() for token in server.issued
            for sasl in (f"user={user.username}\1auth=Bearer {token}\1\1",
                         f"n,a={user.username},\1auth=Bearer {token}\1\1")]
    return [s for s in [*refresh_tokens, *server.issued, CLIENT_SECRET, *wire] if s in text]


def test_once_logs_in_with_xoauth2_from_a_refreshed_token_and_leaks_no_token(
        oauth_dovecot: OAuthDovecot, oauth_server: OAuthServer, user: Account, tmp_path: Path) -> None:
    cfg = setup(tmp_path, user, oauth_server)
    creds = tmp_path / "oauth.json"
    refresh_token = json.loads(creds.read_text())["refresh_token"]
    issued_before = len(oauth_server.issued)
    log_start = len(oauth_dovecot.log_text())

    first = madoguchi("-v", "once", "-c", str(cfg))  # first start: remembers where INBOX is
    assert first.returncode == 0, first.stderr
    assert len(oauth_server.issued) == issued_before + 1  # no access token yet: one refresh
    access_token = oauth_server.issued[-1]
    kept = json.loads(creds.read_text())
    assert kept["access_token"] == access_token and kept["refresh_token"] == refresh_token
    assert kept["expires_at"] > time.time() + 3000
    assert (creds.stat().st_mode & 0o777) == 0o600
    assert oauth_server.requests[-1]["client_secret"] == CLIENT_SECRET
    assert access_token in oauth_server.introspected  # Dovecot asked about that very token

    oauth_dovecot.deliver(user.username, amazon(COMPLAINT, msgid="<oauth-1@example.test>"))
    second = madoguchi("-v", "once", "-c", str(cfg))
    assert second.returncode == 0, second.stderr
    assert "1 handled, 0 failed" in second.stdout
    assert len(oauth_server.issued) == issued_before + 1  # the kept token is still good
    assert any(b"X-Madoguchi-Source: <oauth-1@example.test>" in h for h in drafts(user))

    # five minutes from expiry: refreshed before the login, written back
    kept = json.loads(creds.read_text())
    kept["expires_at"] = int(time.time()) + 290
    creds.write_text(json.dumps(kept))
    third = madoguchi("-v", "check-config", "-c", str(cfg))
    assert third.returncode == 0, third.stderr
    assert len(oauth_server.issued) == issued_before + 2
    assert json.loads(creds.read_text())["access_token"] == oauth_server.issued[-1]
    assert (creds.stat().st_mode & 0o777) == 0o600

    dovecot_log = oauth_dovecot.log_text()[log_start:]
    assert dovecot_log.count(f"user=<{user.username}>, method=XOAUTH2") >= 5  # 2 + 2 + 1 logins
    everything = "".join(r.stdout + r.stderr for r in (first, second, third))
    state = (tmp_path / "state.sqlite3").read_bytes().decode("latin-1")
    assert secrets_in(everything, oauth_server, user, [refresh_token]) == []
    assert secrets_in(state, oauth_server, user, [refresh_token]) == []
    assert "Traceback" not in everything


def test_run_logs_in_with_oauthbearer_and_leaks_no_token(
        oauth_dovecot: OAuthDovecot, oauth_server: OAuthServer, user: Account, tmp_path: Path) -> None:
    cfg = setup(tmp_path, user, oauth_server, auth="oauthbearer")
    refresh_token = json.loads((tmp_path / "oauth.json").read_text())["refresh_token"]
    log_start = len(oauth_dovecot.log_text())
    assert madoguchi("once", "-c", str(cfg)).returncode == 0
    oauth_dovecot.deliver(user.username, web("mercari", "色が違います", msgid="<oauth-run@x>"))
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([sys.executable, "-m", "daemon", "-v", "run", "-c", str(cfg)],
                                stdout=o, stderr=e, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(b"<oauth-run@x>" in h for h in drafts(user)):
            assert proc.poll() is None, err.read_text()
            time.sleep(0.3)
        assert any(b"<oauth-run@x>" in h for h in drafts(user)), err.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0, err.read_text()
    assert f"user=<{user.username}>, method=OAUTHBEARER" in oauth_dovecot.log_text()[log_start:]
    everything = out.read_text() + err.read_text()
    assert secrets_in(everything, oauth_server, user, [refresh_token]) == []


def test_a_revoked_refresh_token_stops_with_a_clear_error(
        oauth_server: OAuthServer, oauth_dovecot: OAuthDovecot, user: Account, tmp_path: Path) -> None:
    refresh_token = oauth_server.grant(user.username)
    oauth_server.revoke(refresh_token)
    cfg = setup(tmp_path, user, oauth_server, credentials={"provider": "gmail", "refresh_token": refresh_token})
    out = madoguchi("check-config", "-c", str(cfg))
    assert out.returncode == 5, out.stderr  # LoginRefused
    assert "refused the refresh token in" in out.stderr and str(tmp_path / "oauth.json") in out.stderr
    assert "madoguchi auth gmail" in out.stderr and "Traceback" not in out.stderr
    assert refresh_token not in out.stdout + out.stderr


def test_a_token_of_another_user_is_refused_by_the_server(
        oauth_server: OAuthServer, oauth_dovecot: OAuthDovecot, user: Account, tmp_path: Path) -> None:
    theirs = oauth_server.issue("someone-else")
    cfg = setup(tmp_path, user, oauth_server, credentials={
        "provider": "gmail", "refresh_token": "rt-unused", "access_token": theirs,
        "expires_at": int(time.time()) + 3600})
    out = madoguchi("once", "-c", str(cfg))
    assert out.returncode == 5, out.stderr
    assert f"refused the XOAUTH2 login of {user.username}" in out.stderr
    assert theirs not in out.stdout + out.stderr and "Traceback" not in out.stderr


def test_a_credentials_file_open_to_others_is_refused(
        oauth_server: OAuthServer, oauth_dovecot: OAuthDovecot, user: Account, tmp_path: Path) -> None:
    cfg = setup(tmp_path, user, oauth_server)
    os.chmod(tmp_path / "oauth.json", 0o644)
    out = madoguchi("once", "-c", str(cfg))
    assert out.returncode == 2 and f"{tmp_path / 'oauth.json'}: the OAuth2 credentials file is open to others" in out.stderr
