"""The IMAP edge: the Mailbox protocol and ImapMailbox over imapclient.

Two connections: one watches the notification folder (EXAMINE, read-only: nothing madoguchi
does can change a flag on the seller's mail; mail is read with BODY.PEEK[]), one writes to
Drafts. imapclient, socket and ssl errors are translated here, once: ConnectionLost means
"drop it and reconnect", LoginRefused means "stop and tell the seller".
"""

from __future__ import annotations

import imaplib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP
from typing import Protocol, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imapclient import DRAFTS

from daemon.errors import ConnectionLost, LoginRefused, MailboxError
from daemon.parse import MAX_RAW

log = logging.getLogger("madoguchi")
T = TypeVar("T")

FETCH_CHUNK = 100
KEYS_PER_SEARCH = 50  # draft keys OR-ed in one SEARCH: a command line well under servers' limits
APPEND_CHUNK = 100  # drafts in one MULTIAPPEND
KEY_HEADER = "X-Madoguchi-Key"


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int
    username: str
    password: str
    security: str = "tls"  # tls | starttls | none
    verify: bool = True
    ca_file: str = ""
    timeout: float = 60.0
    folder: str = "INBOX"
    drafts_folder: str = "Drafts"
    idle_seconds: int = 540
    poll_seconds: int = 60
    auth: str = "password"  # password | xoauth2 | oauthbearer (SASL with an OAuth2 access token)
    token: Callable[[], str] | None = field(default=None, repr=False, compare=False)  # daemon/oauth.py

    def __repr__(self) -> str:  # the password never reaches a log or a traceback
        return f"ImapAccount({self.username}@{self.host}:{self.port}, {self.security})"


class Mailbox(Protocol):
    def uidvalidity(self) -> int: ...
    def uidnext(self) -> int: ...
    def uids_from(self, first_uid: int) -> list[int]: ...
    def uids_since(self, day: date) -> list[int]: ...
    def internal_dates(self, uids: list[int]) -> dict[int, datetime]: ...
    def message_ids(self, uids: list[int]) -> dict[int, str]: ...
    def sizes(self, uids: list[int]) -> dict[int, int]: ...
    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]: ...
    def find_drafts(self, key: str) -> list[int]: ...
    def drafts_by_key(self, keys: list[str]) -> dict[str, list[int]]: ...
    def append_draft(self, message: EmailMessage, *, flagged: bool) -> None: ...
    def append_drafts(self, drafts: list[tuple[EmailMessage, bool]]) -> None: ...
    def delete_drafts(self, uids: list[int]) -> None: ...
    def wait(self, seconds: float, stop: threading.Event) -> None: ...
    def close(self) -> None: ...


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except LoginError as exc:
        raise LoginRefused(f"the IMAP server refused the login ({what}): check the user name "
                           "and password") from exc
    except (IMAPClientAbortError, imaplib.IMAP4.abort, OSError, EOFError) as exc:
        # socket.timeout and ssl errors are OSErrors
        raise ConnectionLost(f"lost the connection to the IMAP server during {what}: "
                             f"{type(exc).__name__}") from exc
    except IMAPClientError as exc:
        raise MailboxError(f"the IMAP server refused {what}: {exc}") from exc


def _connect(account: ImapAccount) -> IMAPClient:
    context = None
    if account.security != "none":
        context = ssl.create_default_context(cafile=account.ca_file or None)
        if not account.verify:  # config allows this only for localhost
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    secret = account.token() if account.auth != "password" and account.token else account.password
    with _translated("connect"):
        client = IMAPClient(account.host, port=account.port, ssl=account.security == "tls",
                            ssl_context=context, timeout=account.timeout)
        try:
            if account.security == "starttls":
                client.starttls(context)
            _login(client, account, secret)
        except BaseException:
            _shutdown(client)
            raise
    return client


def _login(client: IMAPClient, account: ImapAccount, secret: str) -> None:
    """LOGIN with the password, or SASL XOAUTH2 / OAUTHBEARER with the access token."""
    if account.auth == "password":
        client.login(account.username, secret)
        return
    if account.token is None:
        raise LoginRefused(f"[imap] auth = {account.auth!r} needs an OAuth2 access token: set [oauth]")
    try:
        if account.auth == "oauthbearer":
            client.oauthbearer_login(account.username, secret)
        else:
            client.oauth2_login(account.username, secret)
    except LoginError as exc:
        raise LoginRefused(f"the IMAP server refused the {account.auth.upper()} login of "
                           f"{account.username}: check [imap] username (the account that signed in) "
                           "and that IMAP is on for it; if access was revoked, run `madoguchi auth` again"
                           ) from exc


def _body(data: dict[bytes, object]) -> bytes | None:
    """The mail in a FETCH answer: BODY[]<0> for a partial fetch (BODY[] from some servers)."""
    for key, value in data.items():
        if key.startswith(b"BODY[]") and isinstance(value, bytes):
            return value
    return None


def _header_value(raw: bytes) -> str:
    """The value of the one header in a HEADER.FIELDS answer, unfolded and decoded (a long
    key is written as RFC 2047 encoded words, so that it can be folded)."""
    value = " ".join(raw.decode("ascii", "replace").partition(":")[2].split())
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError, HeaderParseError):
        return value


def _forget_unsolicited(client: IMAPClient) -> None:
    """imaplib keeps every response no command asked for (EXISTS, RECENT, FETCH of flags,
    APPENDUID …) for the whole session: a few per mail and per draft, never read by madoguchi,
    and over months the daemon's only growth. Called between commands, never during one."""
    client._imap.untagged_responses.clear()


def _shutdown(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except (OSError, IMAPClientError, imaplib.IMAP4.error):
        pass  # closing a dead socket: nothing left to do


class ImapMailbox:
    def __init__(self, account: ImapAccount) -> None:
        self.account = account
        self._uidnext_at_search: int | None = None
        self.watch = _connect(account)
        try:
            self.writer = _connect(account)
            with _translated("open folders"):
                self.idle = b"IDLE" in self.watch.capabilities()
                info = self.watch.select_folder(account.folder, readonly=True)
                self._uidvalidity = int(info[b"UIDVALIDITY"])
                self.drafts = self._drafts_folder()
                self.writer.select_folder(self.drafts)
        except BaseException:
            self.close()
            raise

    def _drafts_folder(self) -> str:
        found = self.writer.find_special_folder(DRAFTS)
        if found:
            return str(found)
        name = self.account.drafts_folder
        if not self.writer.folder_exists(name):
            self.writer.create_folder(name)
        return name

    def close(self) -> None:
        for client in (getattr(self, "watch", None), getattr(self, "writer", None)):
            if client is None:
                continue
            try:
                client.logout()
            except (OSError, IMAPClientError, imaplib.IMAP4.error):
                _shutdown(client)

    def uidvalidity(self) -> int:
        return self._uidvalidity

    def uidnext(self) -> int:
        with _translated("STATUS"):
            status = self.writer.folder_status(self.account.folder, [b"UIDNEXT", b"UIDVALIDITY"])
        return int(status[b"UIDNEXT"])

    def uids_from(self, first_uid: int) -> list[int]:
        # Taken first: wait() compares it with the folder's UIDNEXT then (see there).
        self._uidnext_at_search = self.uidnext()
        with _translated("SEARCH"):
            # A server may answer SEARCH from the session's last view of the folder (pymap
            # does) and only announce newer mail after it: NOOP brings that view up to date.
            self.watch.noop()
            found = self.watch.search(["UID", f"{max(first_uid, 1)}:*"])
            _forget_unsolicited(self.watch)
        return sorted(u for u in found if u >= first_uid)

    def uids_since(self, day: date) -> list[int]:
        with _translated("SEARCH"):
            return sorted(self.watch.search(["SINCE", day]))

    def internal_dates(self, uids: list[int]) -> dict[int, datetime]:
        out: dict[int, datetime] = {}
        with _translated("FETCH"):
            for i in range(0, len(uids), 500):
                for uid, data in self.watch.fetch(uids[i : i + 500], ["INTERNALDATE"]).items():
                    out[uid] = data[b"INTERNALDATE"]
        return out

    def message_ids(self, uids: list[int]) -> dict[int, str]:
        from daemon.parse import message_id_of

        out: dict[int, str] = {}
        field = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
        with _translated("FETCH"):
            for i in range(0, len(uids), 500):
                chunk = uids[i : i + 500]
                for uid, data in self.watch.fetch(chunk, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).items():
                    out[uid] = message_id_of(data.get(field, b""))
        return out

    def sizes(self, uids: list[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        with _translated("FETCH"):
            for i in range(0, len(uids), 500):
                for uid, data in self.watch.fetch(uids[i : i + 500], ["RFC822.SIZE"]).items():
                    out[uid] = int(data.get(b"RFC822.SIZE", 0))
            _forget_unsolicited(self.watch)
        return out

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        # parse() reads at most MAX_RAW bytes of a mail: one byte more tells it the mail was cut
        # short, and a 40 MB mail of photos is not held whole in memory for nothing.
        wanted = [f"BODY.PEEK[]<0.{MAX_RAW + 1}>"]
        for i in range(0, len(uids), FETCH_CHUNK):
            chunk = uids[i : i + FETCH_CHUNK]
            with _translated("FETCH"):
                data = {u: _body(d) for u, d in self.watch.fetch(chunk, wanted).items()}
                # A server may leave a message out of a FETCH answer (seen with Dovecot right
                # after a restart): ask again for each one rather than skip it silently.
                for uid in [u for u in chunk if data.get(u) is None]:
                    data.update({u: _body(d) for u, d in self.watch.fetch([uid], wanted).items()})
                _forget_unsolicited(self.watch)
            for uid in chunk:
                raw = data.get(uid)
                if raw is not None:
                    yield uid, raw
                else:
                    log.warning("uid=%s is no longer in %s (expunged?): not handled", uid, self.account.folder)

    def find_drafts(self, key: str) -> list[int]:
        def search() -> list[int]:
            self.writer.noop()  # see drafts appended by the other connection
            return list(self.writer.search(["HEADER", KEY_HEADER, key]))

        return self._in_drafts("SEARCH in Drafts", search)

    def drafts_by_key(self, keys: list[str]) -> dict[str, list[int]]:
        """The drafts holding each of `keys`: a SEARCH per KEYS_PER_SEARCH keys and one FETCH
        of the key headers found, where find_drafts would cost a round trip per key."""
        wanted = set(keys)

        def look() -> dict[str, list[int]]:
            self.writer.noop()  # see drafts appended by the other connection
            found: set[int] = set()
            for i in range(0, len(keys), KEYS_PER_SEARCH):
                chunk = keys[i : i + KEYS_PER_SEARCH]
                criteria: list[str] = ["OR"] * (len(chunk) - 1)
                for key in chunk:
                    criteria += ["HEADER", KEY_HEADER, key]
                found.update(self.writer.search(criteria))
            out: dict[str, list[int]] = {}
            part = f"BODY[HEADER.FIELDS ({KEY_HEADER.upper()})]".encode()
            for uid, data in self.writer.fetch(sorted(found), [f"BODY.PEEK[HEADER.FIELDS ({KEY_HEADER})]"]).items():
                key = _header_value(data.get(part, b""))  # SEARCH matched a substring: check it
                if key in wanted:
                    out.setdefault(key, []).append(uid)
            return out

        if not keys:
            return {}
        return self._in_drafts("SEARCH in Drafts", look)

    def append_draft(self, message: EmailMessage, *, flagged: bool) -> None:
        self.append_drafts([(message, flagged)])

    def append_drafts(self, drafts: list[tuple[EmailMessage, bool]]) -> None:
        """File drafts in order; with MULTIAPPEND (RFC 3502) each chunk of them in one command,
        which the server takes all or none of."""
        items = [{"msg": message.as_bytes(policy=SMTP),
                  "flags": [b"\\Draft"] + ([b"\\Flagged"] if flagged else [])} for message, flagged in drafts]
        if len(items) > 1 and b"MULTIAPPEND" in self.writer.capabilities():
            for i in range(0, len(items), APPEND_CHUNK):
                chunk = items[i : i + APPEND_CHUNK]
                self._in_drafts("APPEND to Drafts", lambda c=chunk: self._multiappend(c))
            return
        for item in items:
            self._in_drafts("APPEND to Drafts",
                            lambda m=item: self.writer.append(self.drafts, m["msg"], flags=m["flags"]))

    def _multiappend(self, items: list[dict[str, object]]) -> None:
        # imapclient returns a refusal (NO [OVERQUOTA] …) instead of raising it, unlike append()
        typ, data = self.writer.multiappend(self.drafts, items)
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise IMAPClientError(f"append failed: {text}")

    def _in_drafts(self, what: str, op: Callable[[], T]) -> T:
        """Run `op` on Drafts. If the seller deleted Drafts meanwhile, recreate it and run
        again; if it is there but the server still refuses (a session gone stale: Dovecot's
        SERVERBUG after its selected folder vanished), reconnect."""
        with _translated(what):
            try:
                result = op()
                _forget_unsolicited(self.writer)
                return result
            except IMAPClientError as first:
                if self.writer.folder_exists(self.drafts):
                    if "SERVERBUG" in str(first) or "NONEXISTENT" in str(first).upper():
                        raise ConnectionLost(f"the Drafts folder changed under madoguchi ({first})") from first
                    raise
                log.warning("the Drafts folder %s was deleted: creating it again", self.drafts)
                self.writer.create_folder(self.drafts)
                self.writer.select_folder(self.drafts)
                return op()

    def delete_drafts(self, uids: list[int]) -> None:
        """Only madoguchi's own drafts (found by their key header) are ever deleted."""
        if not uids:
            return
        with _translated("replace a draft"):
            self.writer.add_flags(uids, [b"\\Deleted"])
            if b"UIDPLUS" in self.writer.capabilities():
                self.writer.uid_expunge(uids)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Until new mail may be there, `seconds` pass, or `stop` is set. IDLE where offered
        (renewed by the caller at least every idle_seconds), else a NOOP poll."""
        if not self.idle:
            seconds = min(seconds, self.account.poll_seconds)
        deadline = time.monotonic() + seconds
        with _translated("IDLE"):
            if not self.idle:
                while not stop.is_set() and time.monotonic() < deadline:
                    stop.wait(min(1.0, max(deadline - time.monotonic(), 0)))
                self.watch.noop()
                return
            # Mail that arrived while the watching session ran SEARCH or FETCH was announced
            # (EXISTS) in those commands' answers, not in IDLE's, so IDLE would wait for the next
            # mail to see it. UIDNEXT, asked on the other session, shows it was there.
            if self.uidnext() != self._uidnext_at_search:
                return
            self.watch.idle()
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    responses = self.watch.idle_check(timeout=min(1.0, max(deadline - time.monotonic(), 0.01)))
                    if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                        break
                    if any(r and r[0] == b"BYE" for r in responses):
                        raise ConnectionLost("the IMAP server closed the connection (BYE)")
            finally:
                self.watch.idle_done()


def probe(account: ImapAccount) -> str:
    """Log in and out once: for `check-config`. Returns the server's capabilities."""
    client = _connect(account)
    try:
        with _translated("CAPABILITY"):
            caps = b" ".join(client.capabilities()).decode("ascii", "replace")
    finally:
        try:
            client.logout()
        except (OSError, IMAPClientError, imaplib.IMAP4.error):
            _shutdown(client)
    return caps



def _training_mail(self: ImapMailbox) -> Iterator[tuple[str, str, bytes]]:
    """Labelled mail from Madoguchi/Training/<intent> folders (read-only, BODY.PEEK[])."""
    from classifier.data import imap_mails

    def folders() -> list[str]:
        with _translated("LIST"):
            return [str(f[2]) for f in self.writer.list_folders("", "Madoguchi*")]

    def fetch(name: str) -> Iterator[bytes]:
        with _translated("read a training folder"):
            self.writer.select_folder(name, readonly=True)
            uids = self.writer.search(["ALL"])
            for i in range(0, len(uids), FETCH_CHUNK):
                data = self.writer.fetch(uids[i : i + FETCH_CHUNK], ["BODY.PEEK[]"])
                for uid in uids[i : i + FETCH_CHUNK]:
                    if uid in data:
                        yield data[uid][b"BODY[]"]
            self.writer.select_folder(self.drafts)

    yield from imap_mails(folders, fetch)


ImapMailbox.training_mail = _training_mail  # type: ignore[attr-defined]
