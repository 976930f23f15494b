"""The baseline to beat: keyword rules of the kind a seller writes in Sieve or imapfilter
(`body :contains`, first match wins, no dates), scored on the same evaluation set as the model.

    .venv/bin/python benchmarks/baseline.py build/eval
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from classifier import data  # noqa: E402
from classifier.evaluate import report  # noqa: E402

# (intent, words in subject or body), in the order a seller's Sieve script would test them.
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("other", ("キャンペーン", "お知らせ", "ニュース", "セール", "ポイント", "売れました", "発送しました", "ご注文の確認",
               "返金が完了", "newsletter", "unsubscribe", "配信停止")),
    ("compensation_demand", ("慰謝料", "賠償", "補償", "弁護士", "警察", "消費者センター", "訴え", "晒", "compensation",
                             "lawyer")),
    ("not_received", ("届かない", "届いていない", "届きません", "未着", "まだ届", "追跡", "not received", "hasn't arrived",
                      "not arrived")),
    ("wrong_item", ("違う商品", "別の商品", "間違", "色違い", "サイズ違い", "wrong item", "wrong size", "wrong color")),
    ("missing_item", ("入っていない", "入ってない", "足りない", "欠品", "不足", "抜けて", "missing")),
    ("damaged_defective", ("壊れ", "破損", "割れ", "傷", "汚れ", "動かない", "不良", "故障", "電源が入らない", "broken",
                           "damaged", "defective")),
    ("not_as_described", ("説明と違", "写真と違", "記載と違", "説明と異な", "not as described")),
    ("return_request", ("返品", "返金", "交換", "キャンセル", "return", "refund")),
    ("payment_issue", ("支払", "入金", "振込", "払い込", "payment", "pay ")),
)


def rule_intent(subject: str, text: str) -> str:
    hay = (subject + "\n" + text).lower()
    for intent, words in RULES:
        if any(w.lower() in hay for w in words):
            return intent
    return "inquiry"


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "eval"
    examples = data.examples(data.raw_mails(folder))
    y_true = [e.intent for e in examples]
    y_pred = [rule_intent(e.notification.subject, e.notification.buyer_text or "") for e in examples]
    r = report(y_true, y_pred)
    print("keyword rules (Sieve/imapfilter style) on", folder)
    print(r.text())



if __name__ == "__main__":
    main()
