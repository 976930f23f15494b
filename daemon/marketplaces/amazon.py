"""Amazon.co.jp: buyer messages through the anonymised relay, customer-service return-policy
mails, system notices; Amazon Pay relays (via "amazon_pay").

Sources: ../shared/docs/marketplaces.md §1. The Japanese BSM body markers (メッセージ開始 /
メッセージ終了) and the layout of the return-policy mail beyond its first line are [not found]
in public sources: the forms here are plausible guesses, kept in this module only.
"""

from __future__ import annotations

import re

from daemon.domain import ReplyChannel
from daemon.marketplaces.common import (
    Facts,
    MailView,
    between,
    first,
    in_domain,
    labelled,
    printed_date,
)

NAME = "amazon"
RELAY = re.compile(r"^[a-z0-9]+(\+[A-Za-z0-9-]+)?@(m\.)?marketplace\.amazon\.co\.jp$")
ORDER_ID = r"\b(\d{3}-\d{7}-\d{7})\b"
PAY_ORDER_ID = r"\b(P0\d-\d{7}-\d{7})\b"
POLICY_OPENING = "購入者様に代わりまして、Amazon.co.jpカスタマーサービスよりご連絡いたします"
PAY_OPENING = "購入者様に代わりまして、Amazon Payよりご連絡いたします"
_TOKEN = re.compile(r"\[commMgrTok:\s*([^\]\s]{1,64})\s*\]")
_PRE = re.compile(r"<pre\b[^>]{0,500}>(.*?)</pre>", re.S | re.I)


def owns(sender: str, reply_to: str) -> bool:
    return bool(RELAY.match(sender)) or in_domain(sender, "amazon.co.jp")


def read(mail: MailView) -> Facts:
    if in_domain(mail.sender, "amazonpay.amazon.co.jp"):
        return _amazon_pay(mail)
    subject, text = mail.subject, mail.text
    order_id = first(ORDER_ID, subject, text)
    token = first(_TOKEN.pattern, text, mail.html)
    item = labelled(text, "商品名", "商品") or first(r"\n\s*\d+\s*(?:個|of)\s+([^\n]+?)\s*(?:\[ASIN|\n)", text)
    asin = first(r"\bASIN[:：]?\s*([A-Z0-9]{10})\b", text)
    buyer = first(r"カスタマー\s*([^\s(（:：][^(（:：]{0,40}?)\s*様から", subject) or first(
        r"from Amazon customer\s+(.+?)\s*\(", subject
    )
    if POLICY_OPENING in text or "返品および返金ポリシー" in subject:
        body = between(text, ("ご依頼内容", "お問い合わせ内容", "詳細"), ("Amazon.co.jpカスタマーサービス", "----")) or text
        return Facts(
            kind="return_policy", buyer_text=body, order_id=order_id, buyer_name=buyer,
            item_name=item, item_id=asin,
            order_date=printed_date(labelled(text, "注文日", "ご注文日"), mail.date),
            reply=_relay(mail, token),
        )
    if RELAY.match(mail.sender) or RELAY.match(mail.reply_to):
        body = _buyer_words(text, mail.html)
        return Facts(
            kind="buyer_message", buyer_text=body, order_id=order_id, buyer_name=buyer,
            item_name=item, item_id=asin,
            order_date=printed_date(labelled(text, "注文日", "ご注文日"), mail.date),
            reply=_relay(mail, token),
        )
    return Facts(kind=_system_kind(mail), order_id=order_id, item_name=item, item_id=asin,
                 order_date=printed_date(labelled(text, "注文日", "ご注文日"), mail.date)
                 or (mail.date.date() if mail.date and _system_kind(mail) in ("order", "sold") else None))


def _relay(mail: MailView, token: str | None) -> ReplyChannel:
    address = (mail.raw_sender or mail.sender) if RELAY.match(mail.sender) else (
        (mail.raw_reply_to or mail.reply_to) if RELAY.match(mail.reply_to) else None)
    return ReplyChannel(by_mail=address is not None, address=address, token=token)


def _buyer_words(text: str, html: str) -> str:
    body = between(
        text,
        ("------------- Begin message", "------------- メッセージ開始", "-------------メッセージ開始", "メッセージ開始"),
        ("------------- End message", "------------- メッセージ終了", "メッセージ終了"),
    )
    if body:
        return body
    m = _PRE.search(html) if html else None
    if m:
        from daemon.decode import html_to_text

        return html_to_text("<pre>" + m.group(1) + "</pre>").strip()
    return text


def _system_kind(mail: MailView) -> str:
    local = mail.sender.partition("@")[0]
    s = mail.subject
    if "返品リクエスト" in s or "return request" in s.lower():
        return "return_request"
    if "売れました" in s or (local == "seller-notification" and "注文" in s):
        return "sold"
    if local in ("auto-confirm", "order-update") or "ご注文の確認" in s or "注文確定" in s:
        return "order"
    if local == "shipment-tracking" or "発送" in s:
        return "shipped"
    if local.startswith("payments") or "支払い" in s or "入金" in s:
        return "payout"
    if "評価" in s or "feedback" in s.lower():
        return "rating"
    if local in ("store-news", "newsletter", "promotion", "deals"):
        return "newsletter"
    return "other"


def _amazon_pay(mail: MailView) -> Facts:
    text = mail.text
    buyer_mail = labelled(text, "購入者様のEメールアドレス", "購入者のメールアドレス", value=r"[^\s@]+@[^\s]+")
    if PAY_OPENING not in text and not buyer_mail:
        return Facts(kind="other", via="amazon_pay", order_id=first(PAY_ORDER_ID, mail.subject, text))
    body = between(text, ("お問い合わせ内容", "ご依頼内容", "メッセージ"), ("Amazon Pay", "----")) or text
    return Facts(
        kind="buyer_message", via="amazon_pay", buyer_text=body,
        order_id=first(PAY_ORDER_ID, mail.subject, text),
        buyer_name=labelled(text, "購入者様のお名前", "購入者名"),
        item_name=labelled(text, "商品名"),
        order_date=printed_date(labelled(text, "注文日", "ご注文日"), mail.date),
        reply=ReplyChannel(by_mail=buyer_mail is not None, address=buyer_mail),
    )
