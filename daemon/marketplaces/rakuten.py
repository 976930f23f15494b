"""楽天市場 (not Rakuma): buyers write from masked @pc.fw.rakuten.ne.jp addresses and the shop
can answer by mail through Rakuten's relay (confirmed). Reported as marketplace "unknown" with
via "rakuten", because the CLI contract's marketplace list has no 楽天市場."""

from __future__ import annotations

import re

from daemon.domain import ReplyChannel
from daemon.marketplaces.common import Facts, MailView, first, in_domain, labelled, printed_date

NAME = "unknown"
ORDER_ID = r"\b(\d{6}-\d{8}-\d{6,10})\b"


def owns(sender: str, reply_to: str) -> bool:
    return in_domain(sender, "pc.fw.rakuten.ne.jp") or in_domain(sender, "rakuten.co.jp")


def read(mail: MailView) -> Facts:
    order_id = first(ORDER_ID, mail.subject, mail.text)
    order_date = printed_date(labelled(mail.text, "注文日時", "注文日"), mail.date)
    if in_domain(mail.sender, "pc.fw.rakuten.ne.jp"):
        return Facts(kind="buyer_message", buyer_text=mail.text, order_id=order_id, via="rakuten",
                     order_date=order_date, item_name=labelled(mail.text, "商品名"),
                     reply=ReplyChannel(by_mail=True, address=mail.raw_sender or mail.sender))
    kind = "order" if re.search(r"注文|受注", mail.subject) else "newsletter"
    return Facts(kind=kind, order_id=order_id, via="rakuten", order_date=order_date)
