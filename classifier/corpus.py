"""Build labelled .eml folders from the hand-written JSONL messages in data/.

    python -m classifier.corpus data/train build/train --seed 1
    python -m classifier.corpus data/eval  build/eval  --seed 2

Writers wrote only what buyers wrote (data/BRIEF.md). This wraps each message in its
marketplace's notification layout — the same layouts the parser reads, see
daemon/marketplaces/ — in a varied encoding (ISO-2022-JP, Shift_JIS/CP932, EUC-JP, UTF-8 as
8bit / base64 / quoted-printable, sometimes HTML-only), dated so that `days_since_order` holds.
For Amazon messages it also writes, most of the time, the earlier "sold" notice that carries
the order date, as a seller's mailbox would hold it. Output: OUT/<intent>/<id>.eml.
"""

from __future__ import annotations

import argparse
import base64
import json
import quopri
import random
import string
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any

from classifier.dedupe import near_duplicates

JST = timezone(timedelta(hours=9))
BASE = datetime(2026, 10, 1, 9, 0, tzinfo=JST)
SEP = "━━━━━━━━━━━━━━━━━━━━━━━━"


def _rid(rng: random.Random, n: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def _encode_body(text: str, rng: random.Random) -> tuple[bytes, str, str]:
    """(body bytes, charset label, transfer encoding)."""
    choices = [("iso-2022-jp", "iso2022_jp", "7bit"), ("shift_jis", "cp932", "base64"),
               ("Shift_JIS", "cp932", "8bit"), ("euc-jp", "euc_jp", "8bit"),
               ("utf-8", "utf-8", "base64"), ("utf-8", "utf-8", "quoted-printable"),
               ("utf-8", "utf-8", "8bit")]
    label, codec, cte = rng.choice(choices)
    try:
        data = text.encode(codec)
    except UnicodeEncodeError:
        if codec == "iso2022_jp":
            try:
                data = text.encode("cp932")
                # a real-world mislabel: JIS header, Shift_JIS bytes in the body
                label, cte = "iso-2022-jp", "8bit"
            except UnicodeEncodeError:
                label, codec, cte = "utf-8", "utf-8", "base64"
                data = text.encode("utf-8")
        else:
            label, codec, cte = "utf-8", "utf-8", "base64"
            data = text.encode("utf-8")
    data = data.replace(b"\n", b"\r\n")
    if cte == "base64":
        data = base64.encodebytes(data)
    elif cte == "quoted-printable":
        data = quopri.encodestring(data)
    return data, label, cte


def _mail(headers: list[tuple[str, str]], text: str, rng: random.Random, html: str = "") -> bytes:
    head_cs = rng.choice(["iso-2022-jp", "utf-8", "utf-8", "shift_jis"])
    lines = []
    for name, value in headers:
        if value.isascii():
            lines.append(f"{name}: {value}")
            continue
        if name in ("From", "To") and "<" in value:
            display, _, addr = value.rpartition("<")
            lines.append(f"{name}: {_word(display.strip(), head_cs)} <{addr}")
        else:
            lines.append(f"{name}: {_word(value, head_cs)}")
    body, label, cte = _encode_body(html or text, rng)
    ctype = "text/html" if html else "text/plain"
    lines += ["MIME-Version: 1.0", f"Content-Type: {ctype}; charset={label}",
              f"Content-Transfer-Encoding: {cte}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def _word(value: str, charset: str) -> str:
    for cs in (charset, "utf-8"):
        try:
            return Header(value, cs, maxlinelen=76).encode()
        except UnicodeEncodeError:
            continue
    return Header(value, "utf-8").encode()


def wrap(item: dict[str, Any], rng: random.Random) -> list[tuple[str, bytes, str | None]]:
    """[(name suffix, raw mail, the order id printed in it)] for one hand-written message: the
    message, and maybe the earlier order notice."""
    sent = BASE + timedelta(days=rng.randint(0, 50), minutes=rng.randint(0, 14 * 60))
    days = int(item.get("days_since_order") or 0)
    ordered = sent - timedelta(days=days, minutes=rng.randint(0, 600))
    mp = item["marketplace"]
    text = item["text"]
    subject = item.get("subject") or ""
    buyer = item.get("buyer_name") or "購入者"
    product = item.get("item") or "商品"
    msgid = f"<{_rid(rng, 20)}@{mp}.example.test>"
    common = [("Date", format_datetime(sent)), ("Message-ID", msgid)]
    if item["intent"] == "other" and item.get("from"):
        return [("", _mail([("From", item["from"]), ("To", "shop@example.com"),
                            ("Subject", subject or "お知らせ"), *common], text, rng), None)]
    out: list[tuple[str, bytes]] = []
    if mp == "amazon":
        oid = f"{rng.choice(['249', '250', '503'])}-{_digits(rng, 7)}-{_digits(rng, 7)}"
        asin = "B0" + _rid(rng, 8, string.ascii_uppercase + string.digits)
        if rng.random() < 0.7:
            notice = (f"出品者様\n\n以下の商品が売れました。出荷してください。\n\n注文番号: {oid}\n"
                      f"注文日: {ordered:%Y/%m/%d}\n商品名: {product}\nASIN: {asin}\n数量: 1\n")
            out.append(("-0order", _mail([("From", "seller-notification@amazon.co.jp"),
                                           ("To", "shop@example.com"),
                                           ("Subject", f"売れました！出荷してください: {product[:30]}"),
                                           ("Date", format_datetime(ordered)),
                                           ("Message-ID", f"<{_rid(rng, 20)}@amazon.co.jp>")],
                                          notice, rng), oid))
        if item["intent"] == "late_return" and rng.random() < 0.35:
            body = ("購入者様に代わりまして、Amazon.co.jpカスタマーサービスよりご連絡いたします。\n\n"
                    "下記のご注文についてご依頼がありました。お手数ですが、購入者様にご連絡いただきますよう"
                    f"お願い申し上げます。\n\n注文番号: {oid}\n注文日: {ordered:%Y/%m/%d}\n商品名: {product}\n\n"
                    f"ご依頼内容:\n{text}\n\nAmazon.co.jpカスタマーサービス\n")
            subj = f"Amazonのカスタマー {buyer}様から返品および返金ポリシーに関するお問い合わせ(注文:{oid})"
            out.append(("", _mail([("From", f"{_rid(rng, 15)}@marketplace.amazon.co.jp"),
                                   ("To", "shop@example.com"), ("Subject", subj), *common], body, rng), oid))
            return out
        relay = f"{_rid(rng, 15)}@{rng.choice(['', '', 'm.'])}marketplace.amazon.co.jp"
        tok = _rid(rng, 13, string.ascii_uppercase + string.digits)
        if item.get("lang") == "en":
            subj = subject or f"Inquiry from Amazon customer {buyer} (Order: {oid})"
            start, end = "------------- Begin message -------------", "------------- End message -------------"
            head = f"Order ID {oid}:\n1 of {product} [ASIN: {asin}]"
        else:
            subj = subject or f"購入者からのお問い合わせ:Amazonのカスタマー {buyer}様から(注文:{oid})"
            start, end = "------------- メッセージ開始 -------------", "------------- メッセージ終了 -------------"
            head = f"注文番号 {oid}:\n1 個 {product} [ASIN: {asin}]"
        foot = ("Amazon.co.jpでは、紛争の解決のため、購入者と出品者間のメッセージを保存しています。\n"
                f"返信不要としてマークするには、こちらをクリックしてください: https://sellercentral.amazon.co.jp/"
                f"messaging/no-response?msg={_rid(rng, 10)}\n[commMgrTok:{tok}]")
        body = f"{head}\n\n{start}\n\n{text}\n\n{end}\n\n{foot}\n"
        html = ""
        if rng.random() < 0.25:
            html = (f"<html><body><table><tr><td>注文番号 {oid}</td></tr></table>"
                    f"<pre style=\"white-space: pre-wrap; white-space: -o-pre-wrap\">{escape(text)}</pre>"
                    f"<p style=\"font-size:10px\">[commMgrTok:{tok}]</p></body></html>")
        out.append(("", _mail([("From", f"{buyer} - Amazon Marketplace <{relay}>"),
                               ("To", "shop@example.com"), ("Subject", subj), *common], body, rng, html), oid))
        return out
    if mp == "amazon_pay":
        oid = f"P03-{_digits(rng, 7)}-{_digits(rng, 7)}"
        body = ("購入者様に代わりまして、Amazon Payよりご連絡いたします。\n\n"
                f"購入者様のお名前: {buyer}\n購入者様のEメールアドレス: {_rid(rng, 8)}@example.net\n"
                f"注文番号: {oid}\n注文日: {ordered:%Y/%m/%d}\n商品名: {product}\n\n"
                f"お問い合わせ内容:\n{text}\n\nAmazon Pay\n")
        subj = subject or f"お問い合わせ_{oid}"
        return [("", _mail([("From", "Amazon Pay <auto-communicator@amazonpay.amazon.co.jp>"),
                            ("To", "shop@example.com"), ("Subject", subj), *common], body, rng), oid)]
    if mp in ("rakuten", "direct"):
        if mp == "rakuten":
            sender = f"{_rid(rng, 12)}@pc.fw.rakuten.ne.jp"
            oid = f"{_digits(rng, 6)}-{ordered:%Y%m%d}-{_digits(rng, 10)}"
            printed = f"\n\n注文番号:{oid}\n注文日時:{ordered:%Y-%m-%d %H:%M}\n"
            body = text + (printed if rng.random() < 0.6 else "")
            subj = subject or f"[楽天市場]ご注文({oid})についての問い合わせ"
        else:
            domain = rng.choice(["gmail.com", "yahoo.co.jp", "docomo.ne.jp", "icloud.com", "example.co.jp"])
            sender = f"{_rid(rng, 8)}@{domain}"
            topics = [f"{product}について", "注文の件", "お問い合わせ", "Re: ご注文ありがとうございます", ""]
            body, subj = text, subject or rng.choice(topics)
        printed_id = oid if mp == "rakuten" and (oid in body or oid in subj) else None
        return [("", _mail([("From", f"{buyer} <{sender}>"), ("To", "shop@example.com"),
                            ("Subject", subj), *common], body, rng), printed_id)]
    layouts = {
        "mercari": ("メルカリ <no-reply@mercari.jp>", f"「{product[:40]}」に取引メッセージが届きました",
                    "取引メッセージが届きました", "商品ID : m" + _digits(rng, 11), "購入日時",
                    "https://jp.mercari.com/transaction/{}"),
        "yahoo_auctions": ("Yahoo!オークション <auction-master@mail.yahoo.co.jp>",
                           f"ヤフオク! - 取引メッセージ：{product[:40]}", "落札者から取引メッセージが届きました",
                           "オークションID：" + rng.choice("bcdefghjklmnopqrstuvwxyz") + _digits(rng, 10),
                           "終了日時", "https://contact.auctions.yahoo.co.jp/seller/top?aid={}"),
        "yahoo_flea": ("Yahoo!フリマ <paypay-fleamarket@mail.yahoo.co.jp>",
                       f"Yahoo!フリマ - 取引メッセージ：{product[:40]}", "購入者から取引メッセージが届きました",
                       "商品ID：z" + _digits(rng, 9), "購入日時",
                       "https://paypayfleamarket.yahoo.co.jp/item/z{}/trade"),
        "rakuma": ("ラクマ <no-reply@fril.jp>", "【ラクマ】取引メッセージが届きました",
                   "取引メッセージが届きました", "商品ID：" + _rid(rng, 16, "0123456789abcdef"), "購入日時",
                   "https://fril.jp/item/{}"),
        "buyma": ("BUYMA <no-reply@buyma.com>", "【BUYMA】取引メッセージが届きました",
                  "からメッセージが届きました", "取引ID：" + _digits(rng, 9), "注文日",
                  "https://www.buyma.com/my/orders/{}/"),
        "otamart": ("オタマート <no-reply@otamart.com>", "【オタマート】取引メッセージが届きました",
                    "取引メッセージが届きました", "商品ID：" + _rid(rng, 10, string.ascii_letters + string.digits),
                    "購入日時", "https://otamart.com/items/{}"),
    }
    sender, subj, phrase, id_line, date_label, url = layouts[mp]
    ident = id_line.split("：")[-1].split(": ")[-1].strip()
    link = url.format(ident.lstrip("mz") if "{}" in url and mp in ("yahoo_flea",) else ident)
    printed = f"{date_label}：{ordered:%Y/%m/%d %H:%M}\n" if rng.random() < 0.8 else ""
    if mp == "buyma":
        phrase = f"{buyer}様{phrase}"
    else:
        phrase = f"{buyer}さんから{phrase}" if "購入者" not in phrase and "落札者" not in phrase else phrase
    body = (f"ショップ様\n\n{phrase}。\n\n{SEP}\n{(subject + chr(10)) if subject else ''}{text}\n{SEP}\n\n"
            f"■取引情報\n{id_line}\n商品名：{product}\n{printed}\n取引画面はこちら\n{link}\n\n"
            "※このメールは送信専用です。返信はお取引画面から行ってください。\n")
    return [("", _mail([("From", sender), ("To", "shop@example.com"), ("Subject", subj), *common],
                       body, rng), ident)]


EXPECTED_MARKETPLACE = {"amazon_pay": "amazon", "yahoo_flea": "yahoo_auctions", "rakuten": "unknown",
                        "direct": "unknown"}


def build(source: Path, out: Path, seed: int) -> dict[str, int]:
    """Writes OUT/<intent>/<id>.eml and OUT/truth.jsonl: for every buyer message, the
    marketplace and order id that parsing should find (the order id as printed in the mail)."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    truth: list[str] = []
    items = [json.loads(line) for path in sorted(source.rglob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    drop = near_duplicates([i["text"] for i in items])
    for n, item in enumerate(items):
        if n in drop:
            continue
        for suffix, raw, order_id in wrap(item, rng):
            label = "other" if suffix else item["intent"]
            folder = out / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{item['id']}{suffix}.eml").write_bytes(raw)
            counts[label] = counts.get(label, 0) + 1
            if not suffix and item["intent"] != "other":
                mp = EXPECTED_MARKETPLACE.get(item["marketplace"], item["marketplace"])
                truth.append(json.dumps({"file": f"{label}/{item['id']}.eml", "marketplace": mp,
                                         "order_id": order_id}))
    (out / "truth.jsonl").write_text("\n".join(truth) + "\n", encoding="utf-8")
    counts["near-duplicates dropped"] = len(drop)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    counts = build(args.source, args.out, args.seed)
    print(json.dumps(counts, ensure_ascii=False, sort_keys=True), sum(counts.values()))


if __name__ == "__main__":
    main()
