"""Raw mail bytes → Notification. Pure: no network, no disk, no clock.

The MIME tree is read with the standard library's lenient compat32 parser (it never raises on
malformed structure), text is decoded by daemon.decode, the Date header by mail-parser's
forensic RFC 5322 reader, and the marketplace modules pick the facts out of the text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses

from mailparser.dates import parse_mail_date

from daemon import marketplaces
from daemon.decode import decode_bytes, decode_header, html_to_text
from daemon.domain import Notification, ReplyChannel
from daemon.errors import MadoguchiError, ParseError
from daemon.marketplaces.common import Facts, MailView

JST = timezone(timedelta(hours=9), "JST")
MAX_RAW = 8 * 1024 * 1024  # bytes of a mail read at all: enough for any text, bounds the work
MAX_TEXT = 20_000  # characters of buyer text handed to the classifier and the drafts
MAX_HTML = 1024 * 1024
MAX_PARTS = 300
MAX_DEPTH = 8

_FORWARD_MARKERS = re.compile(
    r"^[ \t>]*(?:-{3,} ?(?:Forwarded message|Original Message|転送メッセージ|元のメッセージ) ?-{3,}"
    r"|Begin forwarded message:|転送:|-{5,}\s*転送.{0,20}-{5,})[ \t]*$",
    re.M | re.I,
)
_QUOTE_CUT = re.compile(
    r"^(?:-{2,} ?Original Message ?-{2,}|_{10,}|On .{1,200} wrote:|.{0,80}(?:wrote|のメッセージ|"
    r"さんは書きました|様は書きました):[ \t]*$|\d{4}年\d{1,2}月\d{1,2}日.{0,60}(?:<[^>\n]{1,100}>|:)[ \t]*$"
    r"|(?:差出人|From)[ \t]*[:：].{0,200}\n(?:.{0,200}\n){0,2}(?:件名|Subject|送信日時|Sent|Date)[ \t]*[:：])",
    re.M,
)


ParseMany = Callable[[Sequence[bytes]], list[Notification | MadoguchiError]]


def parse_many(raws: Sequence[bytes]) -> list[Notification | MadoguchiError]:
    """parse() each mail; a mail that cannot be parsed gives its error in its place."""
    parsed: list[Notification | MadoguchiError] = []
    for raw in raws:
        try:
            parsed.append(parse(raw))
        except MadoguchiError as exc:
            parsed.append(exc)
    return parsed


def parse(raw: bytes) -> Notification:
    """Understand one raw mail. Raises ParseError with a reason when it is not a mail at all."""
    if not isinstance(raw, bytes | bytearray):
        raise ParseError("the input is not raw mail bytes")
    raw = bytes(raw)
    if not raw.strip():
        raise ParseError("the mail is empty")
    truncated = len(raw) > MAX_RAW
    if truncated:
        raw = raw[:MAX_RAW]
    if not _has_header(raw):
        raise ParseError("this is not an e-mail: it has no header lines (From:, Subject: …)")
    msg = message_from_bytes(raw)
    message_id = _message_id(msg, raw)
    try:
        return _notification(msg, message_id, truncated, depth=0)
    except RecursionError:
        raise ParseError("the mail nests attached mails too deeply to read") from None


_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:", re.M)


def _has_header(raw: bytes) -> bool:
    head = raw[:16384].lstrip(b"\r\n\t ")
    return head.startswith(b"From ") or bool(_HEADER_LINE.match(head))  # mbox line or a header


def _message_id(msg: Message, raw: bytes) -> str:
    found = re.search(r"<[^<>\s]{1,250}>", decode_header(_header(msg, "Message-ID")))
    if found and found.group(0).isascii():  # it becomes a header and an IMAP search key
        return found.group(0)
    return f"<{hashlib.sha256(raw).hexdigest()[:32]}@madoguchi.invalid>"


def message_id_of(raw: bytes) -> str:
    """The Message-ID a mail is known by, as parse() would give it (for the raw header alone,
    the synthetic id of a mail without one cannot be computed: "" then)."""
    found = re.search(rb"<[^<>\s]{1,250}>", raw)
    return found.group(0).decode("ascii", "replace") if found else ""


def _notification(msg: Message, message_id: str, truncated: bool, depth: int) -> Notification:
    subject = decode_header(_header(msg, "Subject"))
    sender = _address(msg, "From")
    reply_to = _address(msg, "Reply-To") or _address(msg, "Return-Path")
    date = header_date(_header(msg, "Date"))
    plain, html, inner = _bodies(msg)
    text = plain or (html_to_text(html[:MAX_HTML]) if html else "")
    module = marketplaces.owner(sender.lower(), reply_to.lower()) if _authentic(msg) else None
    if module is None and depth < MAX_DEPTH:
        forwarded = _forwarded(inner, text, message_id, truncated, depth)
        if forwarded is not None:
            return forwarded
    view = MailView(subject=subject, text=text, html=html, sender=sender.lower(),
                    reply_to=reply_to.lower(), date=date, raw_sender=sender,
                    raw_reply_to=reply_to)
    if module is not None:
        facts = module.read(view)
        marketplace = module.NAME
    else:
        facts = _direct(msg, view)
        marketplace = "unknown"
    words = _clean(facts.buyer_text)
    if len(words) > MAX_TEXT:
        words, truncated = words[:MAX_TEXT], True
    return Notification(
        message_id=message_id,
        marketplace=marketplace,
        kind=facts.kind,
        subject=subject,
        buyer_text=words,
        sender=sender.lower(),
        date=date,
        order_id=facts.order_id,
        buyer_name=facts.buyer_name,
        item_name=facts.item_name,
        item_id=facts.item_id,
        order_date=facts.order_date,
        reply=facts.reply,
        references=tuple(re.findall(r"<[^<>\s]{1,250}>", decode_header(_header(msg, "References")))),
        language=language_of(words or subject),  # the buyer's own words, not the wrapper's
        via=facts.via,
        truncated=truncated,
    )


def _header(msg: Message, name: str) -> str | None:
    """A header's stored value, bypassing compat32's conversion of 8-bit values into Header
    objects (which cannot be decoded reliably): decode_header handles the raw form."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else str(value)
    return None


def _address(msg: Message, name: str) -> str:
    """The first addr-spec of an address header, as written (case kept: Amazon's +caseid).
    Taken from the raw value, so an encoded display name holding CR/LF or an address of its
    own cannot pose as the address."""
    value = _header(msg, name)
    if not value:
        return ""
    raw = value.encode("ascii", "surrogateescape").decode("ascii", "replace")
    for _, addr in getaddresses([raw.replace("\r", " ").replace("\n", " ")]):
        if "@" in addr:
            return addr.strip().strip("<>")
    return ""


def _authentic(msg: Message) -> bool:
    """False when the receiving server recorded that the sender was forged (DMARC failed, or
    both SPF and DKIM failed). Only the topmost Authentication-Results counts: it is the one
    the seller's own server added; lower ones may have been written by the sender."""
    results = msg.get_all("Authentication-Results") or []
    if not results:
        return True
    top = str(results[0]).lower()
    if "dmarc=fail" in top:
        return False
    return not ("spf=fail" in top and "dkim=fail" in top)


def header_date(value: str | None) -> datetime | None:
    """The Date header in JST; RFC 5322 and its obsolete forms, and the Japanese forms some
    mailers write (2026/11/20 10:00, assumed JST)."""
    if not value:
        return None
    text = decode_header(value)[:200]
    result = parse_mail_date(re.sub(r"\bJST\b", "+0900", text))
    if result.value is not None:
        return result.value.astimezone(JST)
    m = re.search(r"(\d{4})[/\-年](\d{1,2})[/\-月](\d{1,2})日?\D{0,6}(\d{1,2})[:時](\d{2})", text)
    if m:
        try:
            return datetime(*map(int, m.groups()), tzinfo=JST)
        except ValueError:
            return None
    return None


def _bodies(msg: Message) -> tuple[str, str, list[Message]]:
    """(plain text, html, attached mails) of a message, walking at most MAX_PARTS parts."""
    plains: list[str] = []
    htmls: list[str] = []
    txt_attachments: list[str] = []
    inner: list[Message] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        ctype = part.get_content_type()
        payload = part.get_payload()
        if ctype == "message/rfc822" or (isinstance(payload, list) and ctype.startswith("message/")):
            if isinstance(payload, list):
                inner.extend(p for p in payload if isinstance(p, Message))
            continue
        if part.is_multipart():
            if depth < MAX_DEPTH and isinstance(payload, list):
                stack.extend((p, depth + 1) for p in reversed(payload) if isinstance(p, Message))
            continue
        if not ctype.startswith(("text/", "application/")):
            continue
        attachment = "attachment" in str(part.get("Content-Disposition", "")).lower()
        if ctype == "text/plain" and not attachment:
            plains.append(_part_text(part))
        elif ctype == "text/html" and not attachment:
            htmls.append(_part_text(part))
        elif (ctype == "text/plain" and attachment) or \
                (_param(part, "filename", "Content-Disposition") or _param(part, "name")).lower().endswith(".txt"):
            txt_attachments.append(_part_text(part))
    plain = "\n".join(p for p in plains if p.strip())
    if not plain and not htmls and txt_attachments:
        plain = "\n".join(txt_attachments)
    return plain, "\n".join(htmls), inner


def _param(part: Message, name: str, header: str = "Content-Type") -> str:
    value = part.get_param(name, header=header)
    if value is None:
        return ""
    return decode_header(collapse_rfc2231_value(value))  # type: ignore[arg-type]


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError):  # broken base64 / QP: use the bytes as sent
        data = None
    if not isinstance(data, bytes):
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    text = decode_bytes(data, _param(part, "charset") or None)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _forwarded(inner: list[Message], text: str, message_id: str, truncated: bool,
               depth: int) -> Notification | None:
    """A notification forwarded by the seller's staff keeps the original's marketplace."""
    for part in inner:
        found = _notification(part, message_id, truncated, depth + 1)
        if found.marketplace != "unknown" or found.via:
            return found
    m = _FORWARD_MARKERS.search(text)
    if m:
        block = text[m.end():].lstrip("\n")
        block = re.sub(r"^>[ \t]?", "", block, flags=re.M)
        head, sep, body = block.partition("\n\n")
        if sep and re.search(r"^(?:From|差出人)[ \t]*[:：]", head, re.M | re.I):
            head = re.sub(r"^差出人[ \t]*[:：]", "From:", head, flags=re.M)
            head = re.sub(r"^件名[ \t]*[:：]", "Subject:", head, flags=re.M)
            head = re.sub(r"^(?:日時|送信日時)[ \t]*[:：]", "Date:", head, flags=re.M)
            raw = (head + "\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode("utf-8")
            found = _notification(message_from_bytes(raw), message_id, truncated, depth + 1)
            if found.marketplace != "unknown" or found.via:
                return found
    return None


# What a mail from no marketplace must mention to be taken as a buyer writing to the shop.
_SHOP_WORDS = re.compile(
    r"注文|購入|買っ|買い|商品|品物|発送|配送|届|返品|返金|交換|在庫|落札|出品|取引|お支払|入金|振込|"
    r"\border|purchas|bought|shipp|deliver|refund|\breturn|\bitem|parcel|package|\bpaid\b|payment|"
    r"订单|购买|买的|发货|退货|退款|收到",
    re.I)

_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|failure|notification)|returned mail|mail delivery|failure notice|"
    r"non-?delivery|delivery has failed|could not be delivered|auto-?reply|out of office|autoreply|"
    r"配信(?:不能|エラー|できません)|送信できません|不達|自動(?:返信|応答)", re.I)

_AUTOMATED_LOCALS = re.compile(r"^(?:no-?reply|do-?not-?reply|mailer-daemon|postmaster|bounce"
                               r"|news(?:letter)?|info|notification|magazine|mag|campaign)\b")


def _direct(msg: Message, view: MailView) -> Facts:
    """A mail from no known marketplace: a buyer writing directly, or anything else."""
    local = view.sender.partition("@")[0]
    bulk = (
        msg.get("List-Unsubscribe") or msg.get("List-Id")
        or str(msg.get("Precedence", "")).lower() in ("bulk", "list", "junk")
        or msg.get_content_type() == "multipart/report"
        or str(msg.get("Auto-Submitted", "no")).lower() != "no"
    )
    if bulk:
        return Facts(kind="newsletter" if msg.get("List-Unsubscribe") else "other",
                     buyer_text=view.text)
    if _AUTOMATED_LOCALS.match(local) or _BOUNCE_SUBJECT.search(view.subject) or \
            not _SHOP_WORDS.search(view.subject + "\n" + view.text[:5000]):
        # Ordinary mail of the seller's (friends, suppliers, bounces): not a buyer's message.
        return Facts(kind="other", buyer_text=view.text)
    address = view.reply_to if "@" in view.reply_to and not view.reply_to.startswith("bounce") \
        else view.sender
    by_mail = bool(address) and not _AUTOMATED_LOCALS.match(local)
    order_id = re.search(r"\b(\d{3}-\d{7}-\d{7}|P0\d-\d{7}-\d{7}|m\d{9,12})\b",
                         view.subject + "\n" + view.text[:5000])
    return Facts(kind="buyer_message", buyer_text=view.text,
                 order_id=order_id.group(1) if order_id else None,
                 reply=ReplyChannel(by_mail=by_mail, address=address if by_mail else None))


_SIGNATURE = re.compile(r"^-- ?$", re.M)


def _clean(text: str) -> str:
    """The buyer's own words: quoted earlier mails and signatures removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    cut = _QUOTE_CUT.search(text[:200_000])
    if cut and cut.start() > 0:
        text = text[: cut.start()]
    sig = _SIGNATURE.search(text)
    if sig and sig.start() > 0:
        text = text[: sig.start()]
    lines = [ln for ln in text.split("\n") if not ln.lstrip().startswith((">", "＞"))]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def language_of(text: str) -> str:
    """ja, zh or en, by what the text is mostly made of: an English message that names a
    product in kanji is English; a Japanese one quoting an English model name is Japanese."""
    sample = text[:2000]
    kana = len(re.findall(r"[\u3040-\u30ff\uff66-\uff9f]", sample))
    han = len(re.findall(r"[\u4e00-\u9fff]", sample))
    latin = len(re.findall(r"[A-Za-z]", sample))
    if latin > 10 and latin > 3 * (kana + han):
        return "en"
    if kana >= 2 or (kana and kana * 10 >= han):
        return "ja"
    if han > 3:
        return "zh"
    return "en" if latin > 10 else "ja"
