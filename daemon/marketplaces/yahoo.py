"""Yahoo!オークション (auction-master@mail.yahoo.co.jp, confirmed) and Yahoo!フリマ
(paypay-fleamarket@mail.yahoo.co.jp, confirmed; via "yahoo_flea"). Other mail.yahoo.co.jp
senders (Yahoo! Mail itself, other services) are not marketplaces."""

from __future__ import annotations

from daemon.marketplaces import webchannel
from daemon.marketplaces.common import Facts, MailView, in_domain

NAME = "yahoo_auctions"
AUCTION = webchannel.Spec(
    name=NAME,
    id_labels=("オークションID",),
    id_pattern=r"[a-zA-Z]\d{6,12}",
    url_pattern=r"(https://(?:contact|page)\.auctions\.yahoo\.co\.jp/[^\s\"'<>]+)",
    url_template="https://contact.auctions.yahoo.co.jp/seller/top?aid={id}",
)
FLEA = webchannel.Spec(
    name=NAME,
    id_labels=("商品ID",),
    id_pattern=r"z\d{6,12}",
    url_pattern=r"(https://paypayfleamarket(?:-sec)?\.yahoo\.co\.jp/item/[^\s\"'<>]+)",
    url_template="https://paypayfleamarket.yahoo.co.jp/item/{id}",
    via="yahoo_flea",
)


def owns(sender: str, reply_to: str) -> bool:
    local = sender.partition("@")[0]
    return in_domain(sender, "mail.yahoo.co.jp") and (
        local.startswith("auction") or local == "paypay-fleamarket"
    )


def read(mail: MailView) -> Facts:
    flea = mail.sender.startswith("paypay-fleamarket@")
    return webchannel.read(mail, FLEA if flea else AUCTION)
