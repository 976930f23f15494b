"""Mercari and Mercari Shops. Senders: no-reply@mercari.jp (+ email.mercari.jp),
no-reply@mercari-shops.com (confirmed; replies bounce). Item ids m + 9–12 digits."""

from __future__ import annotations

from daemon.marketplaces import webchannel
from daemon.marketplaces.common import Facts, MailView, in_domain

NAME = "mercari"
SPEC = webchannel.Spec(
    name=NAME,
    id_labels=("商品ID",),
    id_pattern=r"m\d{9,12}",
    url_pattern=r"(https://jp\.mercari\.com/transaction/[A-Za-z0-9_]+)",
    url_template="https://jp.mercari.com/transaction/{id}",
    order_labels=("注文番号", "取引ID"),
)


def owns(sender: str, reply_to: str) -> bool:
    return in_domain(sender, "mercari.jp", "mercari-shops.com")


def read(mail: MailView) -> Facts:
    return webchannel.read(mail, SPEC)
