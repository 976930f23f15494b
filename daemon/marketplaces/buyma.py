"""BUYMA (buyma.com; buyma-desk@ is 事務局, info@ promotional). Item pages
buyma.com/item/<digits>/; the order id format is not public (digits assumed)."""

from __future__ import annotations

from daemon.marketplaces import webchannel
from daemon.marketplaces.common import Facts, MailView, in_domain

NAME = "buyma"
SPEC = webchannel.Spec(
    name=NAME,
    id_labels=("商品ID",),
    id_pattern=r"\d{6,12}",
    url_pattern=r"(https://www\.buyma\.com/(?:my/|item/)[^\s\"'<>]+)",
    url_template="https://www.buyma.com/my/orders/{id}/",  # [not found]: assumed order page
    order_labels=("注文ID", "取引ID", "注文番号"),
)


def owns(sender: str, reply_to: str) -> bool:
    return in_domain(sender, "buyma.com")


def read(mail: MailView) -> Facts:
    return webchannel.read(mail, SPEC)
