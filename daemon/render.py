"""(Decision, Notification, templates, seller) → the drafts to file. Pure.

Buyer text is data: it is never a template (templates come from files, through the sandboxed
environment passed in), never a header (every header value is reduced to one line), and only
ever shown to the seller, quoted, in the note — the reply itself is written from the playbook.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any

from jinja2 import Environment, TemplateNotFound
from jinja2.exceptions import TemplateError as JinjaError

from daemon.catalogue import Match
from daemon.domain import Decision, Draft, Notification
from daemon.errors import TemplateError

WEB_MARKETPLACES = ("mercari", "yahoo_auctions", "rakuma", "buyma", "otamart")
ANONYMOUS = ("mercari", "rakuma", "yahoo_auctions", "otamart")  # 匿名配送: no address to ask for
INTENT_JA = {
    "wrong_item": "誤発送", "missing_item": "欠品・不足", "damaged_defective": "破損・不良",
    "not_as_described": "説明と相違", "not_received": "未着", "compensation_demand": "補償要求・強いクレーム",
    "late_return": "返品期間後の返品希望", "return_request": "返品希望", "payment_issue": "支払い",
    "inquiry": "問い合わせ", "other": "その他",
}
LABELS = {"amazon": "Amazon", "mercari": "メルカリ", "yahoo_auctions": "ヤフオク!", "rakuma": "ラクマ",
          "buyma": "BUYMA", "otamart": "オタマート", "amazon_pay": "Amazon Pay", "rakuten": "楽天市場",
          "yahoo_flea": "Yahoo!フリマ", "unknown": "メール"}
BEGIN = "▼▼▼ ここから購入者へのメッセージ(この線の間をコピーして貼り付け) ▼▼▼"
END = "▲▲▲ ここまで ▲▲▲"
NOTE_HEAD = "―― 出品者様へのメモ(購入者には送らないでください) ――"


class _Registry(HeaderRegistry):
    """The standard header registry, but each header's class is made once: the standard one
    makes a new class with type() for every header set, a fifth of the cost of a draft."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        if key not in self._made:
            self._made[key] = super().__getitem__(name)
        return self._made[key]


class _Policy(EmailPolicy):
    """email.policy.default, but a short printable ASCII header value (a key, a date, a
    Message-ID, an ASCII subject) is kept as the string it is: parsing it into a header
    object and folding that back gives the same line, at half the cost of a draft. Anything
    else (non-ASCII, long, with CR or LF: refused as before) goes the standard way."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if isinstance(value, str) and value.isascii() and value.isprintable() and \
                len(name) + 2 + len(value) <= self.max_line_length:
            return name, value
        return super().header_store_parse(name, value)


POLICY = _Policy(header_factory=_Registry())


@dataclass(frozen=True)
class Seller:
    shop_name: str = ""
    person_name: str = ""
    from_address: str = ""
    return_window_days: int = 30
    shop_name_latin: str = ""
    person_name_latin: str = ""


@dataclass(frozen=True)
class Complaint:
    """One complaint about a product, as remembered for its alert."""

    message_id: str
    when: str
    marketplace: str
    order_id: str
    buyer: str
    intent: str
    excerpt: str


def label(n: Notification) -> str:
    return LABELS.get(n.via or n.marketplace, n.marketplace)


def one_line(value: object, limit: int = 200) -> str:
    text = re.sub(r"[\x00-\x1f\x7f\u2028\u2029\u0085]+", " ", str(value or ""))
    return re.sub(r"[ \t]{2,}", " ", text).strip()[:limit]


def render(d: Decision, n: Notification, env: Environment, seller: Seller, now: datetime,
           *, related: tuple[Match, ...] = (), complaints: tuple[Complaint, ...] = (),
           catalogue: bool = False) -> tuple[Draft, ...]:
    if not d.wants_reply:
        return ()
    drafts = [_reply(d, n, env, seller, now)]
    if n.reply.by_mail:  # the reply goes to the buyer as it is: the seller's note travels apart
        drafts.append(_note(d, n, seller, now))
    if d.alert:
        drafts.append(alert(n, complaints or (complaint_of(d, n),), related, seller, now,
                            catalogue=catalogue))
    return tuple(drafts)


def complaint_of(d: Decision, n: Notification) -> Complaint:
    when = n.date.strftime("%Y-%m-%d %H:%M") if n.date else ""
    excerpt = one_line(n.buyer_text or n.subject, 80)
    return Complaint(n.message_id, when, label(n), n.order_id or "", one_line(n.buyer_name, 60),
                     d.intent, excerpt)


def reply_text(d: Decision, n: Notification, env: Environment, seller: Seller) -> str:
    lang = n.language if n.language in ("en", "zh") else ("ja_easy" if plain_japanese(n.buyer_text) else "ja")
    # An unsure guess gets a neutral draft (thanks, then the seller's answer): the playbook of
    # a wrong intent would tell a happy buyer sorry for a broken item. The doubt is flagged
    # to the seller in the subject and the note.
    intent = "_review" if d.needs_review else d.intent
    names = [f"{lang}/{n.via or n.marketplace}/{intent}.txt.j2", f"{lang}/{intent}.txt.j2"]
    try:
        template = env.select_template(names)
    except TemplateNotFound:
        raise TemplateError(f"no template for {d.intent} in {lang} (looked for {names[-1]})") from None
    placeholder = {"ja": "【要確認:{}】", "ja_easy": "【要確認:{}】", "zh": "【要确认:{}】"}.get(lang, "[TO CHECK: {}]")
    buyer = one_line(n.buyer_name, 60)
    if not buyer:  # the seller can see the name on the transaction screen: a placeholder, not a guess
        buyer = "落札者" if lang == "ja" and n.marketplace == "yahoo_auctions" and not n.via \
            else placeholder.format({"ja": "お名前", "ja_easy": "お名前", "zh": "姓名"}.get(lang, "name"))
    variables = {
        "buyer": buyer,
        "buyer_known": bool(one_line(n.buyer_name, 60)),
        "shop_latin": seller.shop_name_latin or placeholder.format("shop name in Latin letters"),
        "person_latin": seller.person_name_latin or placeholder.format("your name in Latin letters"),
        "shop": seller.shop_name or placeholder.format({"ja": "ショップ名", "zh": "店名"}.get(lang, "shop name")),
        "person": seller.person_name or placeholder.format({"ja": "担当者名", "zh": "负责人"}.get(lang, "your name")),
        "item": one_line(n.item_name, 120),
        "order_id": one_line(n.order_id, 40),
        "channel": "mail" if n.reply.by_mail else "web",
        "complaint": d.complaint,
        "anonymous": n.marketplace in ANONYMOUS,
        "marketplace_label": label(n),
        "days": d.days_since_order if d.days_since_order and d.days_since_order > 0 else None,
        "window": seller.return_window_days,
        "fixed_window": n.marketplace == "amazon" and not n.via,  # Amazon's own 30-day rule
        "bought": "ご注文" if n.reply.by_mail else ("ご落札" if n.marketplace == "yahoo_auctions" and not n.via
                                                    else "ご購入"),
    }
    try:
        text = template.render(**variables)
    except JinjaError as exc:
        raise TemplateError(f"template {template.name} failed: {exc}") from None
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


_KANA = re.compile(r"[\u3040-\u30ff]")
_HAN = re.compile(r"[\u4e00-\u9fff]")


def plain_japanese(text: str) -> bool:
    """A buyer who writes almost only in kana (often elderly, or learning Japanese), or says
    their Japanese is weak, gets the plain-Japanese (やさしい日本語) draft."""
    sample = text[:1000]
    if re.search(r"(?:にほんご|日本語).{0,6}(?:へた|下手|苦手|にがて|すこし|少し|わからな)", sample):
        return True
    kana, han = len(_KANA.findall(sample)), len(_HAN.findall(sample))
    return kana >= 20 and han * 20 <= kana


def seller_note(d: Decision, n: Notification) -> str:
    lines = [NOTE_HEAD,
             f"判定: {INTENT_JA[d.intent]} / 優先度 {d.priority} / 確信度 {d.confidence:.2f}"
             + (" / 判定を確認してください" if d.needs_review else ""),
             f"{label(n)}" + (f" 注文番号 {n.order_id}" if n.order_id else "")
             + (f" / {one_line(n.item_name, 80)}" if n.item_name else ""),
             "理由:"]
    lines += [f"- {r}" for r in d.reasons]
    checklist = [c for c in d.checklist if not (n.marketplace in ANONYMOUS and "住所" in c)]
    if checklist:
        lines.append("やること:")
        lines += [f"□ {c}" for c in checklist]
    lines.append(f"購入者のメッセージ({one_line(n.buyer_name, 60) or '名前不明'}):")
    quoted = (n.subject + "\n" + n.buyer_text).strip()[:4000]
    lines += ["> " + ln for ln in quoted.splitlines()]
    return "\n".join(lines) + "\n"


def _reply(d: Decision, n: Notification, env: Environment, seller: Seller, now: datetime) -> Draft:
    text = reply_text(d, n, env, seller)
    key = f"reply:{n.message_id}"
    # A mail reply reaches the buyer as filed, headers included: no seller-only header on it.
    msg = _message(key, n, d, now, for_seller=not n.reply.by_mail)
    if n.reply.by_mail:
        subject = one_line(n.subject) or "お問い合わせの件"
        msg["Subject"] = subject if re.match(r"(?i)re\s*:", subject) else f"Re: {subject}"
        _address(msg, "To", n.reply.address or "")
        _address(msg, "From", seller.from_address)
        msg["In-Reply-To"] = n.message_id
        msg["References"] = " ".join((*n.references, n.message_id))
        if n.reply.token:
            text += f"\n[commMgrTok:{one_line(n.reply.token, 64)}]\n"
        msg.set_content(text)
    else:
        what = one_line(n.item_name, 60) or one_line(n.subject, 60)
        doubt = "【判定を確認】" if d.needs_review else ""
        msg["Subject"] = f"【優先{d.priority}】{doubt}【{label(n)}】返信案: {what}"
        _address(msg, "To", seller.from_address)
        _address(msg, "From", seller.from_address)
        where = f"取引画面: {n.reply.url}" if n.reply.url else "取引画面のリンクは通知メールに見つかりませんでした。"
        body = (f"この下書きは送信しないでください。{label(n)}の取引画面に、下の線の間の文章を貼り付けて送ってください。\n"
                f"{where}\n\n{BEGIN}\n{text}{END}\n\n{seller_note(d, n)}")
        msg.set_content(body)
    return Draft("reply", key, msg, flagged=d.priority == 1)


def _note(d: Decision, n: Notification, seller: Seller, now: datetime) -> Draft:
    key = f"note:{n.message_id}"
    msg = _message(key, n, d, now)
    doubt = "【判定を確認】" if d.needs_review else ""
    msg["Subject"] = (f"【優先{d.priority}】{doubt}【メモ】{label(n)}: {INTENT_JA[d.intent]} "
                      f"{one_line(n.item_name or n.order_id or n.subject, 60)}")
    _address(msg, "To", seller.from_address)
    _address(msg, "From", seller.from_address)
    msg.set_content("返信の下書き(「Re:」で始まる同じ件名の下書き)と一緒にご確認ください。"
                    "このメモは購入者に送るものではありません。\n\n" + seller_note(d, n))
    return Draft("note", key, msg, flagged=d.priority == 1)


def alert(n: Notification, complaints: tuple[Complaint, ...], related: tuple[Match, ...],
          seller: Seller, now: datetime, catalogue: bool = False) -> Draft:
    from daemon.catalogue import product_key

    product = product_key(n.item_id, n.item_name, n.order_id)
    # The key is searched for in Drafts (IMAP SEARCH HEADER takes ASCII): a hash of the product,
    # which may be a Japanese title when the mail carries no item id.
    key = "alert:" + hashlib.sha256(product.encode("utf-8")).hexdigest()[:24]
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = (f"【優先1】【出品停止の確認】{one_line(n.item_name or product, 60)}: "
                      f"品質の苦情 {len(complaints)}件")
    _address(msg, "To", seller.from_address)
    _address(msg, "From", seller.from_address)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = _msgid(key + str(len(complaints)))
    msg["X-Madoguchi-Key"] = key
    msg["X-Madoguchi-Source"] = n.message_id
    msg["X-Madoguchi-Draft"] = "alert"
    msg["X-Priority"] = "1 (Highest)"
    lines = ["品質に関する苦情が届きました。ほかの購入者に同じ問題が届く前に、関連する出品を止めることをご検討ください。",
             "(この下書きは出品者様用のお知らせです。送信する必要はありません。)", "",
             f"商品: {one_line(n.item_name, 120) or '(商品名不明)'}" + (f" [{n.item_id}]" if n.item_id else ""),
             "", f"苦情({len(complaints)}件):"]
    for i, c in enumerate(complaints, 1):
        lines.append(f"{i}. {c.when} {c.marketplace} {('注文 ' + c.order_id) if c.order_id else ''} "
                     f"{c.buyer + '様' if c.buyer else ''}: {INTENT_JA.get(c.intent, c.intent)}")
        lines.append(f"   「{c.excerpt}」")
    lines += ["", "停止を検討する出品(可能性の高い順):"]
    if related:
        for i, m in enumerate(related, 1):
            lines.append(f"{i}. [{LABELS.get(m.listing.marketplace, m.listing.marketplace)}] "
                         f"{m.listing.title} — {m.why}")
            lines.append(f"   {m.listing.url}")
    elif catalogue:
        lines.append("(出品一覧CSVに、この商品に似た出品は見つかりませんでした。)")
    else:
        lines.append("(出品一覧CSVが設定されていません。設定 [catalogue] path に出品一覧CSVを"
                     "指定すると、関連する出品がここに並びます。)")
    lines += ["", "やること:", "□ 関連出品を停止", "□ 同じ仕入れ先・ロットの在庫を点検",
              "□ 基準を満たしていなければ購入者へすぐ連絡", "□ 改善を確認してから販売を再開"]
    msg.set_content("\n".join(lines) + "\n")
    return Draft("alert", key, msg, flagged=True)


def _message(key: str, n: Notification, d: Decision, now: datetime,
             for_seller: bool = True) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = _msgid(key)
    msg["X-Madoguchi-Key"] = key  # opaque: how Drafts is asked whether this draft is there
    msg["X-Madoguchi-Source"] = n.message_id
    msg["X-Madoguchi-Draft"] = key.partition(":")[0]
    msg["X-Priority"] = {1: "1 (Highest)", 2: "2 (High)", 3: "3 (Normal)"}.get(d.priority, "5 (Lowest)")
    if not for_seller:
        return msg
    msg["X-Madoguchi-Intent"] = d.intent
    msg["X-Madoguchi-Priority"] = str(d.priority)
    msg["X-Madoguchi-Confidence"] = f"{d.confidence:.2f}"
    msg["X-Madoguchi-Review"] = "yes" if d.needs_review else "no"
    msg["X-Madoguchi-Reasons"] = one_line(" | ".join(d.reasons), 900)
    if d.checklist:
        msg["X-Madoguchi-Checklist"] = one_line(" | ".join(d.checklist), 900)
    return msg


def _msgid(key: str) -> str:
    return f"<madoguchi.{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()[:24]}@madoguchi.invalid>"


def _address(msg: EmailMessage, header: str, address: str) -> None:
    address = one_line(address, 254)
    if not address or "@" not in address:
        return
    local, _, domain = address.rpartition("@")
    try:
        msg[header] = Address(addr_spec=f"{local}@{domain}")
    except (ValueError, IndexError, HeaderParseError):
        return  # an address the mail library refuses is left out rather than mangled
