"""The sans-I/O core: raw bytes → parse → classify → decide → render → Outcome.

Everything that touches the world arrives as an argument: the classifier (model), the template
environment, the policy and the seller's settings, the clock (`now`), and read-only lookups into
the state store (order dates from earlier notices, earlier complaints about a product).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from jinja2 import Environment

from classifier.predict import Classifier
from daemon.catalogue import Listing, product_key, related
from daemon.decide import NOT_ASKED, Policy, decide, needs_model
from daemon.domain import Notification, Outcome, Prediction
from daemon.errors import MadoguchiError
from daemon.parse import ParseMany, parse, parse_many
from daemon.render import Complaint, Seller, complaint_of, render


@dataclass(frozen=True)
class Context:
    classifier: Classifier
    env: Environment
    policy: Policy = field(default_factory=Policy)
    seller: Seller = field(default_factory=Seller)
    listings: tuple[Listing, ...] = ()
    order_date_of: Callable[[str], date | None] = field(default=lambda _order_id: None)
    complaints_of: Callable[[str], tuple[Complaint, ...]] = field(default=lambda _key: ())


def handle(raw: bytes, ctx: Context, now: datetime) -> Outcome:
    return handle_parsed(parse(raw), ctx, now)


def handle_batch(raws: Sequence[bytes], ctx: Context, now: datetime, *, drafts: bool = True,
                 parse_all: ParseMany = parse_many) -> list[Outcome | MadoguchiError]:
    """Many mails at once: the model is asked once for the whole batch (one call costs about
    as much as a hundred mails), and a mail that fails gives its error in its place. With
    `drafts` False only the decisions are wanted (ranking a burst): nothing is rendered.
    `parse_all` may parse elsewhere (daemon/workers.py: on every core)."""
    parsed = parse_all(raws)
    good = [n for n in parsed if isinstance(n, Notification)]
    predictions = iter(predict(ctx, good))
    # Complaints of this batch about one product count in each later alert of the batch: the
    # store knows them only once the batch is filed, and the last alert is the one kept.
    batch: dict[str, tuple[Complaint, ...]] = {}
    ctx = replace(ctx, complaints_of=lambda key, known=ctx.complaints_of: (*known(key), *batch.get(key, ())))
    out: list[Outcome | MadoguchiError] = []
    for n in parsed:
        if isinstance(n, MadoguchiError):
            out.append(n)
            continue
        try:
            outcome = handle_parsed(n, ctx, now, next(predictions), drafts=drafts)
        except MadoguchiError as exc:
            out.append(exc)
            continue
        if outcome.decision.alert:
            key = product_key(n.item_id, n.item_name, n.order_id)
            batch[key] = (*batch.get(key, ()), complaint_of(outcome.decision, n))
        out.append(outcome)
    return out


def predict(ctx: Context, notifications: Sequence[Notification]) -> list[Prediction]:
    """The model's guess for each buyer's message; notices, which decide() files as "other"
    whatever the model says, are not asked about (most of a backfill is such mail)."""
    asked = iter(ctx.classifier.predict([n for n in notifications if needs_model(n)]))
    return [next(asked) if needs_model(n) else NOT_ASKED for n in notifications]


def handle_parsed(n: Notification, ctx: Context, now: datetime,
                  prediction: Prediction | None = None, *, drafts: bool = True) -> Outcome:
    prediction = prediction or predict(ctx, [n])[0]
    known = ctx.order_date_of(n.order_id) if n.order_id else None
    decision = decide(n, prediction, ctx.policy, now, known)
    if not drafts:
        return Outcome(n, prediction, decision, ())
    complaints: tuple[Complaint, ...] = ()
    matches = ()
    if decision.alert:
        key = product_key(n.item_id, n.item_name, n.order_id)
        earlier = tuple(c for c in ctx.complaints_of(key) if c.message_id != n.message_id)
        complaints = (*earlier, complaint_of(decision, n))
        matches = related(ctx.listings, item_name=n.item_name, item_id=n.item_id)
    return Outcome(n, prediction, decision, render(decision, n, ctx.env, ctx.seller, now, related=matches,
                                                   complaints=complaints, catalogue=bool(ctx.listings)))
