"""The embedded IMAP server of ``madoguchi demo``, exercised with a real IMAP client."""

from __future__ import annotations

import socket
import time

import pytest
from imapclient import IMAPClient

from daemon.demo_server import DemoAccount, DemoServer

MESSAGE = (
    b"From: buyer@example.com\r\n"
    b"To: shop@example.com\r\n"
    b"Subject: where is my parcel?\r\n"
    b"Message-ID: <demo-1@example.com>\r\n"
    b"\r\n"
    b"It has not arrived.\r\n"
)


def _login(account: DemoAccount) -> IMAPClient:
    client = IMAPClient(account.host, port=account.port, ssl=False, timeout=10)
    client.login(account.username, account.password)
    return client


def test_demo_server_serves_imap_with_drafts_peek_and_idle() -> None:
    started = time.perf_counter()
    server = DemoServer(username="seller", password="s3cret")
    with server as account:
        assert time.perf_counter() - started < 2.0
        assert account.host == "127.0.0.1"
        assert account.port > 0
        assert (account.username, account.password) == ("seller", "s3cret")

        with _login(account) as client:
            capabilities = client.capabilities()
            assert b"IDLE" in capabilities
            assert b"UIDPLUS" in capabilities
            names = {name for _flags, _delim, name in client.list_folders()}
            assert {"INBOX", "Drafts"} <= names

            server.append("INBOX", MESSAGE)
            client.select_folder("INBOX")
            uids = client.search("ALL")
            assert len(uids) == 1
            fetched = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"])[uids[0]]
            assert fetched[b"BODY[]"] == MESSAGE
            assert b"\\Seen" not in fetched[b"FLAGS"]
            flags = client.get_flags(uids)[uids[0]]
            assert b"\\Seen" not in flags

        _assert_idle_sees_append_from_another_connection(account)


def _assert_idle_sees_append_from_another_connection(account: DemoAccount) -> None:
    with _login(account) as idler, _login(account) as sender:
        idler.select_folder("INBOX")
        idler.idle()
        try:
            appended_at = time.monotonic()
            sender.append("INBOX", MESSAGE)
            exists_at = None
            while exists_at is None and time.monotonic() - appended_at < 5.0:
                for response in idler.idle_check(timeout=0.5):
                    if len(response) >= 2 and response[1] == b"EXISTS":
                        exists_at = time.monotonic()
        finally:
            idler.idle_done()
        assert exists_at is not None, "no EXISTS during IDLE"
        assert exists_at - appended_at < 2.0
        assert len(idler.search("ALL")) == 2


def test_demo_server_stops_with_a_client_connected_and_starts_empty() -> None:
    first = DemoServer()
    with first as account:
        first.append("Drafts", MESSAGE)
        lingering = _login(account)
        lingering.select_folder("Drafts")
    with pytest.raises(OSError):
        socket.create_connection((account.host, account.port), timeout=1).close()
    lingering.shutdown()
    with DemoServer() as account, _login(account) as client:
        assert client.select_folder("Drafts")[b"EXISTS"] == 0


def test_mail_delivered_while_the_watching_session_was_quiet_is_found_and_not_waited_for() -> None:
    """pymap answers SEARCH from the session's last view of INBOX and announces newer mail
    only afterwards, so IDLE never reports it: the demo then waited forever for four of its
    five mails. uids_from() must see such mail, and wait() must not sleep on it."""
    import threading

    from daemon.mailbox import ImapAccount, ImapMailbox

    server = DemoServer()
    with server as account:
        box = ImapMailbox(ImapAccount(host=account.host, port=account.port, username=account.username,
                                      password=account.password, security="none"))
        try:
            first = box.uidnext()
            assert box.uids_from(first) == []
            server.append("INBOX", MESSAGE)
            server.append("INBOX", MESSAGE.replace(b"demo-1", b"demo-2"))
            assert box.uids_from(first) == [first, first + 1]

            box.uids_from(first + 2)  # nothing new: a real wait follows ...
            server.append("INBOX", MESSAGE.replace(b"demo-1", b"demo-3"))  # ... unless mail came
            started = time.monotonic()
            box.wait(5.0, threading.Event())
            assert time.monotonic() - started < 2.0
            assert box.uids_from(first + 2) == [first + 2]
        finally:
            box.close()


def test_a_long_session_keeps_no_unsolicited_responses() -> None:
    """imaplib stores every EXISTS / RECENT / FETCH / APPENDUID it is told; a daemon that runs for
    months must not (it was the only growth in benchmarks/memory.py)."""
    from email.message import EmailMessage

    from daemon.mailbox import ImapAccount, ImapMailbox

    server = DemoServer()
    with server as account:
        box = ImapMailbox(ImapAccount(host=account.host, port=account.port, username=account.username,
                                      password=account.password, security="none"))
        try:
            for i in range(20):
                server.append("INBOX", MESSAGE.replace(b"demo-1", f"demo-{i}".encode()))
                assert [uid for uid, _ in box.fetch(box.uids_from(1)[-1:])]
                draft = EmailMessage()
                draft["X-Madoguchi-Key"] = f"reply:<demo-{i}@example.com>"
                draft.set_content("下書き")
                assert not box.find_drafts(draft["X-Madoguchi-Key"])
                box.append_draft(draft, flagged=i % 2 == 0)
            stored = {name: dict(c._imap.untagged_responses) for name, c in (("watch", box.watch), ("writer", box.writer))}
            assert stored == {"watch": {}, "writer": {}}
            assert len(box.find_drafts("reply:<demo-7@example.com>")) == 1
        finally:
            box.close()
