"""Otamart (オタマート). Sender, subjects and ids are [not found] in public sources: mails from
otamart.com are taken as Otamart's, and a 取引ID of letters and digits is assumed."""

from __future__ import annotations

from daemon.marketplaces import webchannel
from daemon.marketplaces.common import Facts, MailView, in_domain

NAME = "otamart"
SPEC = webchannel.Spec(
    name=NAME,
    id_labels=("商品ID",),
    id_pattern=r"[A-Za-z0-9]{6,20}",
    url_pattern=r"(https://otamart\.com/[^\s\"'<>]+)",
    url_template="https://otamart.com/items/{id}",
)


def owns(sender: str, reply_to: str) -> bool:
    return in_domain(sender, "otamart.com")


def read(mail: MailView) -> Facts:
    return webchannel.read(mail, SPEC)
