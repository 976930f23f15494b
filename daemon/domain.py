"""The plain values that flow through the pipeline: parse → classify → decide → render.

Frozen dataclasses of plain values only (no sockets, rows or templates), so tests compare whole
values and every rule can be tested with three lines and no fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import EmailMessage

MARKETPLACES = ("amazon", "buyma", "mercari", "yahoo_auctions", "rakuma", "otamart", "unknown")

INTENTS = (
    "wrong_item",
    "missing_item",
    "damaged_defective",
    "not_as_described",
    "not_received",
    "compensation_demand",
    "late_return",
    "return_request",
    "payment_issue",
    "inquiry",
    "other",
)

# What a mail is, before anyone reads the buyer's words.
KINDS = (
    "buyer_message",
    "return_policy",  # Amazon customer service relaying a return after the window
    "return_request",
    "order",
    "sold",
    "shipped",
    "payment",
    "payout",
    "rating",
    "newsletter",
    "other",
)


@dataclass(frozen=True)
class ReplyChannel:
    """How the seller can answer: by mail through a relay, or only on a web screen."""

    by_mail: bool
    address: str | None = None  # Amazon's relay alias, Rakuten's masked address, a direct buyer
    url: str | None = None  # the transaction screen, when the answer must be typed there
    token: str | None = None  # Amazon's [commMgrTok:…], kept in the reply


@dataclass(frozen=True)
class Notification:
    """What parsing understood of one mail."""

    message_id: str
    marketplace: str
    kind: str
    subject: str
    buyer_text: str
    sender: str
    date: datetime | None  # the Date header, in JST
    order_id: str | None = None
    buyer_name: str | None = None
    item_name: str | None = None
    item_id: str | None = None  # ASIN, 商品ID, auction id: joins complaints to listings
    order_date: date | None = None  # printed in the mail
    reply: ReplyChannel = field(default_factory=lambda: ReplyChannel(by_mail=False))
    references: tuple[str, ...] = ()
    language: str = "ja"
    via: str | None = None  # "amazon_pay", "rakuten", "yahoo_flea" … when the marketplace is a cousin
    truncated: bool = False


@dataclass(frozen=True)
class Prediction:
    intent: str
    confidence: float
    probabilities: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Decision:
    intent: str
    priority: int
    complaint: bool
    late_return: bool
    alert: bool
    needs_review: bool
    confidence: float
    reasons: tuple[str, ...]
    checklist: tuple[str, ...] = ()
    days_since_order: int | None = None

    @property
    def wants_reply(self) -> bool:
        return self.intent != "other"


@dataclass(frozen=True)
class Draft:
    """One mail to file in Drafts. `key` identifies it there (source Message-ID or alert key)."""

    role: str  # "reply" | "alert"
    key: str
    message: EmailMessage
    flagged: bool

    def __hash__(self) -> int:  # EmailMessage is unhashable; the key identifies a draft
        return hash((self.role, self.key))


@dataclass(frozen=True)
class Outcome:
    notification: Notification
    prediction: Prediction
    decision: Decision
    drafts: tuple[Draft, ...]
