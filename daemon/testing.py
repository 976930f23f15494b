"""Test helpers shipped with the package: a FakeMailbox that implements our Mailbox protocol
(not imapclient's internals) and a fixed clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes
from email.message import EmailMessage

JST = timezone(timedelta(hours=9))


class FakeMailbox:
    def __init__(self, uidvalidity: int = 1) -> None:
        self.uv = uidvalidity
        self.inbox: dict[int, bytes] = {}
        self.next_uid = 1
        self.drafts: dict[int, tuple[bytes, tuple[str, ...]]] = {}
        self.next_draft = 1

    def deliver(self, raw: bytes) -> int:
        uid = self.next_uid
        self.inbox[uid] = raw
        self.next_uid += 1
        return uid

    def uidvalidity(self) -> int:
        return self.uv

    def uidnext(self) -> int:
        return self.next_uid

    def uids_from(self, first_uid: int) -> list[int]:
        return sorted(u for u in self.inbox if u >= first_uid)

    def uids_since(self, day: date) -> list[int]:
        return sorted(self.inbox)

    def internal_dates(self, uids: list[int]) -> dict[int, datetime]:
        return {u: datetime.now() for u in uids if u in self.inbox}

    def message_ids(self, uids: list[int]) -> dict[int, str]:
        return {u: str(message_from_bytes(self.inbox[u]).get("Message-ID", "")).strip()
                for u in uids if u in self.inbox}

    def sizes(self, uids: list[int]) -> dict[int, int]:
        return {u: len(self.inbox[u]) for u in uids if u in self.inbox}

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        for u in uids:
            if u in self.inbox:
                yield u, self.inbox[u]

    def find_drafts(self, key: str) -> list[int]:
        return [u for u, (raw, _) in self.drafts.items()
                if message_from_bytes(raw).get("X-Madoguchi-Key") == key]

    def drafts_by_key(self, keys: list[str]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for u, (raw, _) in self.drafts.items():
            key = message_from_bytes(raw).get("X-Madoguchi-Key")
            if key in keys:
                out.setdefault(key, []).append(u)
        return out

    def append_drafts(self, drafts: list[tuple[EmailMessage, bool]]) -> None:
        """One at a time through append_draft, so that a test's refusal there refuses the lot
        part-way, as a server without MULTIAPPEND would."""
        for message, flagged in drafts:
            self.append_draft(message, flagged=flagged)

    def append_draft(self, message: EmailMessage, *, flagged: bool) -> None:
        flags = ("\\Draft", "\\Flagged") if flagged else ("\\Draft",)
        self.drafts[self.next_draft] = (message.as_bytes(), flags)
        self.next_draft += 1

    def delete_drafts(self, uids: list[int]) -> None:
        for u in uids:
            self.drafts.pop(u, None)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(min(seconds, 0.01))

    def close(self) -> None:
        pass


def fixed_clock(when: datetime | None = None) -> datetime:
    return when or datetime(2026, 11, 23, 9, 0, tzinfo=JST)
