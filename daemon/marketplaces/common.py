"""What the marketplace modules share: the mail as they see it, the facts they return, and
small text helpers (markers, printed dates, address checks)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from daemon.domain import ReplyChannel


@dataclass(frozen=True)
class MailView:
    """One mail, decoded: what a marketplace module may look at."""

    subject: str
    text: str  # the plain text body (from HTML when there was no plain part)
    html: str  # the raw HTML body, "" if none
    sender: str  # the From address, lower-case
    reply_to: str
    date: datetime | None
    raw_sender: str = ""  # as written: the case of Amazon's +caseid part matters in a reply
    raw_reply_to: str = ""


@dataclass(frozen=True)
class Facts:
    kind: str
    buyer_text: str = ""
    order_id: str | None = None
    buyer_name: str | None = None
    item_name: str | None = None
    item_id: str | None = None
    order_date: date | None = None
    reply: ReplyChannel = field(default_factory=lambda: ReplyChannel(by_mail=False))
    via: str | None = None


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def in_domain(address: str, *domains: str) -> bool:
    """True when the address's domain is one of `domains` or a sub-domain of one.
    `amazon.co.jp.example.com` and `amazon-co-jp.com` are not amazon.co.jp."""
    d = domain_of(address)
    return any(d == x or d.endswith("." + x) for x in domains)


_SEPARATOR = re.compile(r"^[ \t　]*[━─\-=＝_＿*＊■□◆◇~〜・]{8,}[ \t　]*$", re.M)


def between_separators(text: str, after: str | None = None) -> str:
    """The text between the first two separator lines (after the phrase `after`, if given)."""
    start = 0
    if after:
        i = text.find(after)
        if i < 0:
            return ""
        start = i + len(after)
    first = _SEPARATOR.search(text, start)
    if not first:
        return ""
    second = _SEPARATOR.search(text, first.end())
    if not second:
        return ""
    return text[first.end() : second.start()].strip()


def between(text: str, start_markers: tuple[str, ...], end_markers: tuple[str, ...]) -> str:
    for start in start_markers:
        i = text.find(start)
        if i < 0:
            continue
        i = text.find("\n", i)
        if i < 0:
            return ""
        ends = [j for j in (text.find(e, i) for e in end_markers) if j >= 0]
        body = text[i : min(ends)] if ends else text[i:]
        # drop the end marker's own dashes left on the line before it
        return re.sub(r"[-\s]*$", "", body).strip()
    return ""


def labelled(text: str, *labels: str, value: str = r"[^\n]+") -> str | None:
    """The value printed after `label :` / `label：` / `label:` on one line."""
    for label in labels:
        m = re.search(rf"{re.escape(label)}[ \t　]*[:：][ \t　]*({value})", text)
        if m:
            return m.group(1).strip()
    return None


_FULL_DATE = re.compile(
    r"(20\d\d|19\d\d)\s*[/年.\-]\s*(\d{1,2})\s*[/月.\-]\s*(\d{1,2})\s*日?"
)
_MONTH_DAY = re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*日")


def printed_date(text: str | None, reference: datetime | None) -> date | None:
    """A date as marketplaces print it: 2026/10/01, 2026年10月1日, or 10月 1日 (year from the
    mail's own date, the latest such date not after it)."""
    if not text:
        return None
    m = _FULL_DATE.search(text)
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
    m = _MONTH_DAY.search(text)
    if m and reference is not None:
        try:
            d = date(reference.year, int(m.group(1)), int(m.group(2)))
        except ValueError:
            return None
        return d if d <= reference.date() else d.replace(year=d.year - 1)
    return None


def first(pattern: str, *texts: str, flags: int = 0) -> str | None:
    for t in texts:
        m = re.search(pattern, t, flags)
        if m:
            return m.group(1) if m.groups() else m.group(0)
    return None
