"""The marketplaces whose buyers can be answered only on a transaction screen (Mercari,
Yahoo!, Rakuma, BUYMA, Otamart): one reading of their notices, driven by a small Spec each.

Their "you have a message" mail formats are [not found] in public sources
(../shared/docs/marketplaces.md §2–6). The layout assumed: a line saying a message arrived, the
buyer's words between two separator lines (or after a 内容 label), then the item block with its
id and the transaction link. When a notice carries no words, buyer_text stays empty and no
reply is drafted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.domain import ReplyChannel
from daemon.marketplaces.common import (
    Facts,
    MailView,
    between_separators,
    first,
    labelled,
    printed_date,
)

MESSAGE_PHRASES = (
    "取引メッセージが届きました", "メッセージが届きました", "質問が届きました", "コメントがありました",
    "からメッセージ", "お問い合わせが届きました", "取引連絡が届きました", "連絡がありました",
)
_WORDS_LABELS = ("メッセージ内容", "メッセージ", "内容", "質問内容", "お問い合わせ内容", "本文")

# Subject / body keywords → kind, checked in order; the first that matches wins.
NOTICE_KINDS = (
    ("return_request", ("返品の申請", "返品リクエスト", "返品申請")),
    ("rating", ("評価しました", "評価 通知", "評価されました", "評価が届きました")),
    ("payout", ("売上金", "振込申請", "振込が完了", "入金のお知らせ")),
    ("payment", ("支払いが完了", "入金が確認", "お支払いが確認", "決済が完了")),
    ("shipped", ("発送しました", "発送されました", "発送連絡", "発送通知")),
    ("sold", ("購入しました", "購入されました", "発送をお願いします", "落札者あり", "落札されました",
              "売れました", "注文が入りました", "受注")),
    ("order", ("ご購入ありがとうございます", "注文を受け付け", "注文確認")),
    ("newsletter", ("キャンペーン", "お知らせ", "ニュース", "クーポン", "ポイント", "セール")),
)


@dataclass(frozen=True)
class Spec:
    name: str
    id_labels: tuple[str, ...]
    id_pattern: str
    url_pattern: str  # finds the transaction / item link in the text
    url_template: str  # builds one from the id when the mail has none
    order_labels: tuple[str, ...] = ("取引ID", "注文ID", "注文番号")
    date_labels: tuple[str, ...] = ("購入日時", "購入日", "落札日時", "終了日時", "注文日", "取引開始日")
    via: str | None = None


def read(mail: MailView, spec: Spec) -> Facts:
    text, subject = mail.text, mail.subject
    item_id = None
    for label in spec.id_labels:
        item_id = labelled(text, label, value=spec.id_pattern)
        if item_id:
            break
    order_id = labelled(text, *spec.order_labels, value=r"[A-Za-z0-9_\-]{4,40}") or item_id
    url = first(spec.url_pattern, text, mail.html)
    if url is None and (item_id or order_id):
        url = spec.url_template.format(id=item_id or order_id)
    item = labelled(text, "商品名", "商品") or first(r"「(.{1,80}?)」", subject)
    facts = dict(
        order_id=order_id, item_id=item_id, item_name=item, via=spec.via,
        order_date=printed_date(labelled(text, *spec.date_labels), mail.date),
        reply=ReplyChannel(by_mail=False, url=url),
    )
    arrived = next((p for p in MESSAGE_PHRASES if p in subject or p in text), None)
    if arrived:
        words = between_separators(text, after=arrived if arrived in text else None)
        if not words:
            words = _after_label(text)
        buyer = first(r"([^\s、。]{1,40}?)(?:さん|様)(?:から|より)", text, subject)
        return Facts(kind="buyer_message", buyer_text=words, buyer_name=buyer, **facts)
    kind = next(
        (k for k, words in NOTICE_KINDS if any(w in subject for w in words)),
        None,
    ) or next((k for k, words in NOTICE_KINDS if any(w in text[:2000] for w in words)), "other")
    return Facts(kind=kind, **facts)


def _after_label(text: str) -> str:
    for label in _WORDS_LABELS:
        m = re.search(rf"^[■【\[]?{label}[】\]]?[ \t　]*[:：]?[ \t　]*\n(.+?)(?:\n[ \t　]*\n[■【]|\Z)",
                      text, re.M | re.S)
        if m:
            return m.group(1).strip()
    return ""
