"""Builders of test mails written for the project: marketplace layouts in given encodings."""

from __future__ import annotations

import base64
from email.header import Header

SEP = "━━━━━━━━━━━━━━━━━━━━━━━━"


def mail(headers: list[tuple[str, str]], body: str, charset: str = "utf-8",
         codec: str | None = None, cte: str = "8bit", ctype: str = "text/plain",
         header_charset: str = "utf-8", eol: str = "\r\n") -> bytes:
    lines = []
    for k, v in headers:
        if v.isascii():
            lines.append(f"{k}: {v}")
        elif k in ("From", "To", "Reply-To") and "<" in v:
            d, _, a = v.rpartition("<")
            lines.append(f"{k}: {Header(d.strip(), header_charset).encode()} <{a}")
        else:
            lines.append(f"{k}: {Header(v, header_charset).encode()}")
    data = body.replace("\n", eol).encode(codec or charset)
    if cte == "base64":
        data = base64.encodebytes(data)
    lines += ["MIME-Version: 1.0", f"Content-Type: {ctype}; charset={charset}",
              f"Content-Transfer-Encoding: {cte}"]
    return (eol.join(lines) + eol + eol).encode() + data


def amazon(text: str, *, charset: str = "iso-2022-jp", codec: str = "iso2022_jp",
           sender: str = "q8v2kd7mx1ty4pa@marketplace.amazon.co.jp",
           order: str = "249-3029688-3087868", msgid: str = "<t-amazon@example.test>",
           date: str = "Fri, 20 Nov 2026 21:48:10 +0900", cte: str = "7bit") -> bytes:
    body = (f"注文番号 {order}:\n1 個 【全巻セット】銀河の剣 1-12巻 完結 [ASIN: B0EXAMPLE1]\n\n"
            f"------------- メッセージ開始 -------------\n\n{text}\n\n"
            "------------- メッセージ終了 -------------\n\n[commMgrTok:A1B2C3D4E5F6G]\n")
    return mail([("From", f"佐藤 美香 - Amazon Marketplace <{sender}>"), ("To", "shop@example.com"),
                 ("Subject", f"購入者からのお問い合わせ:Amazonのカスタマー 佐藤 美香様から(注文:{order})"),
                 ("Date", date), ("Message-ID", msgid)], body, charset, codec, cte,
                header_charset="iso-2022-jp")


def web(marketplace: str, text: str, *, charset: str = "utf-8", codec: str | None = None,
        msgid: str = "<t-web@example.test>", cte: str = "8bit",
        printed: str = "購入日時 : 2026/11/01 09:12") -> bytes:
    senders = {"mercari": ("メルカリ <no-reply@mercari.jp>", "商品ID : m12345678901"),
               "yahoo_auctions": ("Yahoo!オークション <auction-master@mail.yahoo.co.jp>",
                                  "オークションID：x1234567890"),
               "yahoo_flea": ("Yahoo!フリマ <paypay-fleamarket@mail.yahoo.co.jp>", "商品ID：z123456789"),
               "rakuma": ("ラクマ <no-reply@fril.jp>", "商品ID：0a1b2c3d4e5f6a7b"),
               "buyma": ("BUYMA <no-reply@buyma.com>", "取引ID：123456789"),
               "otamart": ("オタマート <no-reply@otamart.com>", "商品ID：Ab12Cd34Ef")}
    sender, id_line = senders[marketplace]
    body = (f"ショップ様\n\nみーさんから取引メッセージが届きました。\n\n{SEP}\n{text}\n{SEP}\n\n"
            f"■取引情報\n{id_line}\n商品名：ステンレス 電気ケトル 1.0L ホワイト\n{printed}\n\n"
            "取引画面はこちら\nhttps://jp.mercari.com/transaction/m12345678901\n")
    return mail([("From", sender), ("To", "shop@example.com"),
                 ("Subject", "「ステンレス 電気ケトル 1.0L ホワイト」に取引メッセージが届きました"),
                 ("Date", "Sun, 22 Nov 2026 13:20:00 +0900"), ("Message-ID", msgid)],
                body, charset, codec, cte)
