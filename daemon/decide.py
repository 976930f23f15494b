"""(Notification, Prediction, Policy, now, known order date) → Decision, as an ordered table.

Each rule is (name, predicate, action) over plain values; every rule that fires appends its
reason, and the reasons reach the seller (draft headers, the note) and `classify --json`.
The intent table itself (priority, complaint, alert) is domain.md's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from daemon.dates import purchase_date_from_text
from daemon.domain import Decision, Notification, Prediction

# intent: (priority, complaint, alert) — ../shared/docs/domain.md
TABLE: dict[str, tuple[int, bool, bool]] = {
    "wrong_item": (1, True, False),
    "missing_item": (1, True, False),
    "damaged_defective": (1, True, True),
    "not_as_described": (1, True, True),
    "not_received": (2, True, False),
    "compensation_demand": (2, True, False),
    "late_return": (2, False, False),
    "return_request": (3, False, False),
    "payment_issue": (3, False, False),
    "inquiry": (3, False, False),
    "other": (4, False, False),
}
COMPLAINTS = tuple(i for i, (_, c, _) in TABLE.items() if c)
RETURNS = ("late_return", "return_request")

CHECKLISTS: dict[str, tuple[str, ...]] = {
    "wrong_item": ("購入者の氏名・住所を確認", "正しい商品を当日発送し追跡番号を連絡",
                   "誤送品の扱いを決める(安価なら返送不要、高額なら着払いで返送)"),
    "missing_item": ("購入者の氏名・住所を確認", "不足分を当日発送し追跡番号を連絡",
                     "在庫がなければ3日程度の猶予を依頼、入手できなければ返金を検討"),
    "damaged_defective": ("関連出品を停止", "状態を写真で確認", "交換品の発送または返金を決める",
                          "同じ仕入れ先・ロットの在庫を点検"),
    "not_as_described": ("関連出品を停止", "商品説明・写真と現物を照合", "説明の誤りを修正",
                         "交換・返品・返金を決める"),
    "not_received": ("追跡番号で配送状況を自分でも確認", "追跡がなければ2〜3日待ってもらう",
                     "届かなければ再送または全額返金"),
    "compensation_demand": ("事務局(マーケットプレイスのサポート)へ先に連絡", "金銭要求には応じない",
                            "電話での説明は購入者に打診してから", "評価が付く前に経緯を記録"),
    "late_return": ("返品期間を過ぎていることを確認", "不良なら出品者の責任として受ける",
                    "購入者都合なら理由を丁寧に説明(受けるかどうかは経営判断)"),
    "return_request": ("返品期間内であることを確認", "返品方法と送料負担を案内"),
    "payment_issue": ("支払期限を確認", "猶予の申し出には応じる", "期限後は24時間の最終案内"),
    "inquiry": ("質問に事実で答える",),
    "other": (),
}


@dataclass(frozen=True)
class Policy:
    return_window_days: int = 30
    review_below: float = 0.6
    complaint_threshold: float = 0.35  # P(any complaint) above which a mail is treated as one


@dataclass
class _State:
    intent: str
    confidence: float
    reasons: list[str]
    late: bool = False
    days: int | None = None
    review: bool = False


Rule = tuple[str, Callable[[Notification, Prediction, _State], bool],
             Callable[[Notification, Prediction, _State], None]]


def decide(n: Notification, p: Prediction, policy: Policy, now: datetime,
           known_order_date: date | None = None) -> Decision:
    s = _State(intent=p.intent, confidence=p.confidence, reasons=[])
    for _name, when, then in _rules(policy, now, known_order_date):
        if when(n, p, s):
            then(n, p, s)
    priority, complaint, alert = TABLE[s.intent]
    if alert and s.review:
        # An unsure guess must not tell the seller to stop listings: the note says why not.
        alert = False
        s.reasons.append("no stop-listings alert: whether this is a quality complaint is not certain")
    quality = QUALITY_WORDS.search(n.buyer_text[:5000]) if s.intent == "compensation_demand" else None
    if quality:
        alert = True  # a threat about a defect is still a defect other buyers may get
        s.reasons.append(f"a quality problem is described too (「{quality.group(0)}」): "
                         "stop-related-listings alert")
    return Decision(
        intent=s.intent, priority=priority, complaint=complaint, late_return=s.intent == "late_return",
        alert=alert, needs_review=s.review and s.intent != "other", confidence=round(s.confidence, 3),
        reasons=tuple(s.reasons), checklist=CHECKLISTS[s.intent], days_since_order=s.days,
    )


def _set(intent: str, reason: str) -> Callable[[Notification, Prediction, _State], None]:
    def action(n: Notification, p: Prediction, s: _State) -> None:
        s.intent = intent
        s.reasons.append(reason.format(kind=n.kind, intent=intent))
    return action


# A notice (order, shipping, payout, newsletter …) is "other" whatever the model says.
NOT_ASKED = Prediction(intent="other", confidence=1.0, probabilities=(("other", 1.0),))


def needs_model(n: Notification) -> bool:
    """Only a buyer's message (or Amazon's return-policy mail) is worth asking the model about."""
    return n.kind in ("buyer_message", "return_policy")


def _rules(policy: Policy, now: datetime, known: date | None) -> tuple[Rule, ...]:
    def notice(n: Notification, p: Prediction, s: _State) -> bool:
        return not needs_model(n)

    def bare(n: Notification, p: Prediction, s: _State) -> bool:
        return n.kind == "buyer_message" and not (n.buyer_text.strip() or n.subject.strip())

    def model_said(n: Notification, p: Prediction, s: _State) -> None:
        s.reasons.append(f"classifier: {p.intent} ({p.confidence:.2f})")

    def hidden_complaint(n: Notification, p: Prediction, s: _State) -> bool:
        if n.kind != "buyer_message" or s.intent in COMPLAINTS:
            return False
        return _complaint_mass(p) >= policy.complaint_threshold

    def promote(n: Notification, p: Prediction, s: _State) -> None:
        top = max((x for x in p.probabilities if x[0] in COMPLAINTS), key=lambda x: x[1])
        s.reasons.append(f"complaint likely (P={_complaint_mass(p):.2f} ≥ "
                         f"{policy.complaint_threshold}): treated as {top[0]}")
        s.intent, s.confidence, s.review = top[0], top[1], True

    def is_return(n: Notification, p: Prediction, s: _State) -> bool:
        return n.kind == "buyer_message" and s.intent in RETURNS

    def by_dates(n: Notification, p: Prediction, s: _State) -> None:
        mail_day = (n.date or now).date()
        ordered, source = _order_date(n, known, mail_day)
        if ordered is None:
            s.reasons.append("no order date found: late or not judged from the words")
            return
        s.days = (mail_day - ordered).days
        late = s.days > policy.return_window_days
        s.intent = "late_return" if late else "return_request"
        s.reasons.append(f"{s.days} days since the order ({source}) "
                         f"{'>' if late else '≤'} {policy.return_window_days}-day window")

    def unsure(n: Notification, p: Prediction, s: _State) -> bool:
        return s.confidence < policy.review_below

    def mark_review(n: Notification, p: Prediction, s: _State) -> None:
        s.review = True
        s.reasons.append(f"low confidence ({s.confidence:.2f} < {policy.review_below}): "
                         "check the intent")

    return (
        ("notice", notice, _set("other", "notice ({kind}), not a buyer's message: no reply")),
        ("policy-mail", lambda n, p, s: n.kind == "return_policy",
         _set("late_return", "Amazon customer-service return-policy mail: late by definition")),
        ("bare", bare, _set("other", "the notice carries no buyer words: nothing to answer")),
        ("model", lambda n, p, s: n.kind == "buyer_message" and s.intent == p.intent, model_said),
        ("hidden-complaint", hidden_complaint, promote),
        ("return-dates", is_return, by_dates),
        ("review", lambda n, p, s: s.intent != "other" and unsure(n, p, s), mark_review),
    )


# A demand that describes a defect or a mismatch with the listing: the calibrated model gives
# such mails almost all their mass on compensation_demand, so the words decide the alert.
QUALITY_WORDS = re.compile(
    r"壊れ|破損|割れ|ヒビ|ひび|欠け|不良|故障|動かな|作動しな|電源が入らな|外れ|取れ|偽物|偽造|コピー品|傷|汚れ|シミ|染み|"
    r"色落ち|カビ|臭|漏れ|ほつれ|破れ|説明と(?:違|異な)|写真と(?:違|異な)|記載と(?:違|異な)|"
    r"broken|damaged|defect|fake|counterfeit|not as described|损坏|坏了|假货|破损")


def _complaint_mass(p: Prediction) -> float:
    return sum(prob for intent, prob in p.probabilities if intent in COMPLAINTS)


def _order_date(n: Notification, known: date | None, mail_day: date) -> tuple[date | None, str]:
    if n.order_date:
        return n.order_date, f"order date {n.order_date} printed in the mail"
    if known:
        return known, f"order date {known} from the earlier order notice"
    found = purchase_date_from_text(n.subject + "\n" + n.buyer_text, mail_day)
    if found:
        return found[0], f"the buyer wrote 「{found[1]}」"
    return None, ""

