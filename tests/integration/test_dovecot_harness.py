"""The Dovecot harness itself: logins, TLS, special-use folders, delivery, UIDVALIDITY, restart."""

from __future__ import annotations

import ssl
import time

import pytest
from imapclient import IMAPClient
from imapclient.imapclient import DRAFTS

from tests.dovecot import Account, Dovecot

MAIL = (
    b"From: buyer@example.com\r\n"
    b"To: shop@example.com\r\n"
    b"Subject: where is my parcel?\r\n"
    b"Message-ID: <harness-1@example.com>\r\n"
    b"\r\n"
    b"It has not arrived.\r\n"
)


def _plain(account: Account) -> IMAPClient:
    client = IMAPClient(account.host, port=account.port, ssl=False, timeout=10)
    client.login(account.username, account.password)
    return client


def _tls_context(account: Account) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(account.ca_file))
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
    return context


def test_plain_login_offers_starttls_and_the_extensions(account: Account) -> None:
    with IMAPClient(account.host, port=account.port, ssl=False, timeout=10) as client:
        assert client.has_capability("STARTTLS")
        client.login(account.username, account.password)
        for extension in ("IDLE", "UIDPLUS", "SPECIAL-USE", "MOVE"):
            assert client.has_capability(extension), extension


def test_starttls_verifies_against_ca_file(account: Account) -> None:
    with IMAPClient(account.host, port=account.port, ssl=False, timeout=10) as client:
        client.starttls(_tls_context(account))
        client.login(account.username, account.password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_imaps_verifies_against_ca_file(account: Account, host: str) -> None:
    context = _tls_context(account)
    with IMAPClient(host, port=account.tls_port, ssl_context=context, timeout=10) as client:
        client.login(account.username, account.password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_imaps_is_not_trusted_without_ca_file(account: Account) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(account.host, port=account.tls_port, ssl_context=ssl.create_default_context())


def test_failed_logins_are_refused_without_slowing_later_ones(account: Account) -> None:
    started = time.monotonic()
    for username, password in [(account.username, "wrong"), ("nobody-here", "pw")] * 2:
        client = IMAPClient(account.host, port=account.port, ssl=False, timeout=10)
        with client, pytest.raises(IMAPClient.Error):
            client.login(username, password)
    with _plain(account):
        pass
    assert time.monotonic() - started < 8  # ~0.5 s a failure; a per-IP penalty adds 4 s, 8 s...


def test_drafts_folder_is_found_by_special_use(account: Account) -> None:
    with _plain(account) as client:
        folders = {name: flags for flags, _delimiter, name in client.list_folders()}
        assert b"\\Drafts" in folders["Drafts"]
        assert client.find_special_folder(DRAFTS) == "Drafts"
        assert "Drafts" in {name for _flags, _delimiter, name in client.list_sub_folders()}


def test_delivered_mail_shows_up_unseen(dovecot: Dovecot, account: Account) -> None:
    dovecot.deliver(account.username, MAIL)
    dovecot.deliver(account.username, MAIL.replace(b"harness-1", b"harness-2"), folder="Drafts")
    with _plain(account) as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search("ALL")
        assert len(uids) == 1
        fetched = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"])[uids[0]]
        assert fetched[b"BODY[]"] == MAIL
        assert b"\\Seen" not in fetched[b"FLAGS"]
        assert client.folder_status("Drafts", ["MESSAGES"])[b"MESSAGES"] == 1


def test_idle_hears_a_delivery(dovecot: Dovecot, account: Account) -> None:
    with _plain(account) as client:
        client.select_folder("INBOX")
        client.idle()
        started = time.monotonic()
        dovecot.deliver(account.username, MAIL)
        responses = client.idle_check(timeout=5)
        client.idle_done()
        assert (1, b"EXISTS") in responses, responses
        assert time.monotonic() - started < 5


def test_reset_uidvalidity_raises_it_and_keeps_the_mail(dovecot: Dovecot, account: Account) -> None:
    dovecot.deliver(account.username, MAIL)
    with _plain(account) as client:
        before = client.select_folder("INBOX")[b"UIDVALIDITY"]
        uids = client.search("ALL")
    dovecot.reset_uidvalidity(account.username)
    with _plain(account) as client:
        after = client.select_folder("INBOX")
        assert after[b"UIDVALIDITY"] > before
        assert client.search("ALL") == uids


def test_reset_uidvalidity_disconnects_a_client_with_the_folder_selected(
    dovecot: Dovecot, account: Account
) -> None:
    client = _plain(account)
    try:
        client.select_folder("INBOX")
        dovecot.reset_uidvalidity(account.username)
        with pytest.raises(IMAPClient.AbortError):
            client.noop()
    finally:
        client.shutdown()


def test_restart_keeps_ports_users_and_mail(dovecot: Dovecot, account: Account) -> None:
    dovecot.deliver(account.username, MAIL)
    connected = _plain(account)
    try:
        connected.select_folder("INBOX")
        started = time.monotonic()
        dovecot.restart()
        restart_seconds = time.monotonic() - started
        with pytest.raises(IMAPClient.AbortError):  # * BYE Server shutting down.
            connected.noop()
    finally:
        connected.shutdown()
    assert restart_seconds < 10
    with _plain(account) as client:
        assert client.select_folder("INBOX")[b"EXISTS"] == 1
    context = _tls_context(account)
    with IMAPClient(account.host, port=account.tls_port, ssl_context=context, timeout=10) as c:
        c.login(account.username, account.password)


def test_add_user_rejects_names_that_would_break_the_passwd_file(dovecot: Dovecot) -> None:
    with pytest.raises(ValueError):
        dovecot.add_user("bad:name", "pw")
    with pytest.raises(ValueError):
        dovecot.add_user("good-name", "pass:word")
