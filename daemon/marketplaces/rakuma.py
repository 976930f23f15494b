"""楽天ラクマ (formerly フリル). The sender is [not found] in public sources; mails from the
fril.jp and rakuma.rakuten.co.jp domains are taken as Rakuma's. Never confuse with 楽天市場."""

from __future__ import annotations

from daemon.marketplaces import webchannel
from daemon.marketplaces.common import Facts, MailView, in_domain

NAME = "rakuma"
SPEC = webchannel.Spec(
    name=NAME,
    id_labels=("商品ID",),
    id_pattern=r"[0-9a-f]{8,32}",
    url_pattern=r"(https://(?:web\.|item\.)?fril\.jp/[^\s\"'<>]+)",
    url_template="https://fril.jp/item/{id}",
)


def owns(sender: str, reply_to: str) -> bool:
    return in_domain(sender, "fril.jp", "rakuma.rakuten.co.jp")


def read(mail: MailView) -> Facts:
    return webchannel.read(mail, SPEC)
