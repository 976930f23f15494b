"""The `madoguchi` command: a thin skin over the library. Each subcommand parses its
arguments, calls one function, prints. MadoguchiError → its message on stderr, no traceback."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path

from daemon import config
from daemon.errors import MadoguchiError, UsageError

log = logging.getLogger("madoguchi")
COMMANDS: dict[str, tuple[str, Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str) -> Callable[[Callable[[argparse.Namespace], int]],
                                              Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = (help, fn)
        return fn
    return register


def _settings(args: argparse.Namespace) -> config.Settings:
    return config.load(Path(args.config)) if getattr(args, "config", None) else config.defaults()


def _since(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError("--since: expected a date like 2026-11-01") from None


@command("demo", "run the daemon against an embedded IMAP server seeded with sample mails")
def _demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    return run_demo(sys.stdout)


@command("run", "watch the mailbox and file drafts until stopped (SIGTERM stops cleanly)")
def _run(args: argparse.Namespace) -> int:
    from daemon import app, heap
    from daemon.logs import REDACTOR

    heap.settle()  # before the model and the first mail are read
    s = _settings(args)
    svc = app.service(s, _since(args.since))
    if s.imap.auth == "password":  # OAuth2 tokens are added by daemon/oauth.py as it sees them
        REDACTOR.add(config.password(s))
    signal.signal(signal.SIGTERM, lambda *_: svc.stop.set())
    signal.signal(signal.SIGINT, lambda *_: svc.stop.set())
    signal.signal(signal.SIGHUP, lambda *_: svc.reload.set())
    svc.run(idle_seconds=s.imap.idle_seconds)
    return 0


@command("once", "one pass over what is new, then exit")
def _once(args: argparse.Namespace) -> int:
    from daemon import app

    s = _settings(args)
    svc = app.service(s, _since(args.since))
    signal.signal(signal.SIGTERM, lambda *_: svc.stop.set())
    try:
        filed = svc.run_once()
    finally:
        svc._drop(logout=True)
        svc.store.close()
    for h in filed.outcomes:
        print(f"uid {h.uid}: priority {h.priority} {h.intent} {h.marketplace} drafts={h.drafts}")
    for uid, reason in filed.failures:
        print(f"uid {uid}: FAILED {reason}")
    print(f"{filed.handled} handled, {filed.failed} failed")
    return 1 if filed.failed else 0


@command("classify", "parse, classify and decide each file; --json for one JSON line per file")
def _classify(args: argparse.Namespace) -> int:
    from daemon import app
    from daemon.parse import parse
    from daemon.pipeline import handle_parsed

    s = _settings(args)
    ctx = app.context(s)
    orders: dict[str, date] = {}
    from dataclasses import replace

    ctx = replace(ctx, order_date_of=orders.get)
    failed = 0
    for name in args.files:
        try:
            n = parse(Path(name).read_bytes())
            if n.kind in ("order", "sold") and n.order_id and (n.order_date or n.date):
                orders[n.order_id] = n.order_date or n.date.date()  # type: ignore[union-attr]
            o = handle_parsed(n, ctx, n.date or datetime.now().astimezone())
            d = o.decision
            row = {"file": name, "marketplace": n.marketplace, "via": n.via, "kind": n.kind,
                   "intent": d.intent, "complaint": d.complaint, "late_return": d.late_return,
                   "priority": d.priority, "alert": d.alert, "order_id": n.order_id,
                   "confidence": d.confidence, "needs_review": d.needs_review,
                   "reasons": list(d.reasons)}
        except OSError as exc:
            failed += 1
            row = {"file": name, "error": f"cannot read the file: {exc.strerror}"}
        except MadoguchiError as exc:
            failed += 1
            row = {"file": name, "error": str(exc)}
        except Exception as exc:  # the contract: one line per file, never a traceback
            failed += 1
            log.debug("unexpected error on %s", name, exc_info=True)
            row = {"file": name, "error": f"unexpected error: {type(exc).__name__}: {exc}"}
        if args.json:
            print(json.dumps(row, ensure_ascii=False), flush=True)
        elif "error" in row:
            print(f"{name}: ERROR {row['error']}")
        else:
            print(f"{name}: priority {row['priority']} {row['intent']} ({row['marketplace']}, "
                  f"confidence {row['confidence']:.2f})")
    return 1 if failed else 0


@command("draft", "write the drafts the daemon would file for each mail, without a server")
def _draft(args: argparse.Namespace) -> int:
    from email.policy import SMTP

    from daemon import app
    from daemon.pipeline import handle

    s = _settings(args)
    ctx = app.context(s)
    out = Path(args.output) if args.output else None
    failed = 0
    for name in args.files:
        try:
            o = handle(Path(name).read_bytes(), ctx, datetime.now().astimezone())
        except (OSError, MadoguchiError) as exc:
            failed += 1
            print(f"{name}: ERROR {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            continue
        if not o.drafts:
            print(f"{name}: no draft ({o.decision.intent}: {'; '.join(o.decision.reasons)})")
        for draft in o.drafts:
            data = draft.message.as_bytes(policy=SMTP)
            if out:
                out.mkdir(parents=True, exist_ok=True)
                target = out / f"{Path(name).stem}.{draft.role}.eml"
                target.write_bytes(data)
                print(f"{name}: wrote {target}")
            else:
                print(draft.message.as_string())
    return 1 if failed else 0


@command("train", "train a model from labelled mail and print an evaluation report")
def _train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from classifier import data, persist, train
    from classifier.linear import LinearModel

    source = _imap_training_mail(_settings(args)) if args.imap else data.raw_mails(Path(args.data))
    mails = list(source)
    skipped: list[tuple[str, str]] = []
    examples = data.examples(tqdm(mails, desc="reading mail", unit="mail", file=sys.stderr),
                             skipped)
    for source, reason in skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    if len({e.intent for e in examples}) < 2:
        raise UsageError("training needs labelled mail of at least two intents")
    print(f"training on {len(examples)} mails …", file=sys.stderr)
    pipeline, meta = train.fit(examples, seed=args.seed)
    persist.save(LinearModel.from_pipeline(pipeline), meta, Path(args.output))
    print(f"saved {args.output} (complaint threshold {meta['complaint_threshold']})")
    if args.eval:
        return _evaluate(argparse.Namespace(data=args.eval, model=args.output, png=None))
    return 0


def _imap_training_mail(s: config.Settings):  # type: ignore[no-untyped-def]
    from daemon import app
    from daemon.mailbox import ImapMailbox

    box = ImapMailbox(app.account(s))
    try:
        yield from box.training_mail()
    finally:
        box.close()


@command("evaluate", "per-intent precision/recall/F1 and the confusion matrix on labelled mail")
def _evaluate(args: argparse.Namespace) -> int:
    from classifier import data
    from classifier.evaluate import report
    from classifier.predict import ModelClassifier
    from daemon import app

    s = config.defaults()
    model = ModelClassifier.from_file(Path(args.model) if args.model else None)
    ctx = app.context(s, classifier=model)
    examples = data.examples(data.raw_mails(Path(args.data)))
    y_true, y_pred = evaluate_examples(examples, ctx)
    r = report(y_true, y_pred)
    print(r.text())
    print("\nmost frequent confusions (true → predicted):")
    for t, p, n in r.confusions():
        print(f"  {t} → {p}: {n}")
    if args.png:
        r.save_png(Path(args.png))
        print(f"confusion matrix written to {args.png}")
    return 0


def evaluate_examples(examples: Sequence, ctx) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def,type-arg]
    """The whole middle as the daemon runs it: order notices seen first feed the date rule."""
    from dataclasses import replace

    from daemon.decide import decide

    orders = {e.notification.order_id: (e.notification.order_date or e.notification.date.date())
              for e in examples if e.notification.kind in ("order", "sold")
              and e.notification.order_id and (e.notification.order_date or e.notification.date)}
    ctx = replace(ctx, order_date_of=orders.get)
    predictions = ctx.classifier.predict([e.notification for e in examples])
    y_pred = []
    for e, p in zip(examples, predictions, strict=True):
        n = e.notification
        known = orders.get(n.order_id) if n.order_id else None
        y_pred.append(decide(n, p, ctx.policy, n.date or datetime.now().astimezone(), known).intent)
    return [e.intent for e in examples], y_pred


@command("check-config", "validate the configuration and try the login")
def _check_config(args: argparse.Namespace) -> int:
    if args.print_example:
        print(config.example_toml(), end="")
        return 0
    if not args.config:
        raise UsageError("check-config needs -c CONFIG")
    from daemon import app
    from daemon.mailbox import probe

    s = _settings(args)
    print(f"{args.config}: settings are valid")
    app.classifier_for(s)
    print("model: loads")
    caps = probe(app.account(s))
    print(f"login to {s.imap.host}:{s.imap.port} as {s.imap.username}: ok ({caps[:80]})")
    return 0


@command("status", "last contact, handled / failed counts and recent failures")
def _status(args: argparse.Namespace) -> int:
    from daemon import app

    st = app.store(_settings(args))
    counts = st.counts()
    print(f"last contact: {st.meta('last_contact') or 'never'}")
    print(f"handled: {counts['handled']}  drafts: {counts['drafts']}  failed: {counts['failed']}")
    for f in st.failures(10):
        print(f"  {f.last_failed} uid {f.uid} {f.message_id or ''}: {f.reason} "
              f"(attempts {f.attempts})")
    st.close()
    return 0


@command("retry", "handle the mails that failed before, once more")
def _retry(args: argparse.Namespace) -> int:
    return _once(args)


@command("auth", "sign in to Gmail or Microsoft 365 and keep the OAuth2 refresh token in [oauth] credentials_file")
def _auth(args: argparse.Namespace) -> int:
    from daemon import oauth

    s = _settings(args)
    path = oauth.sign_in(s, args.provider, browser=not args.no_browser, device_code=not args.interactive)
    print(f"signed in to {args.provider}: the refresh token is kept in {path} (mode 0600)")
    if s.imap.auth == "password":
        print('madoguchi: set [imap] auth = "xoauth2" in the config to log in with it', file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="madoguchi", description="Buyer complaints in a seller's "
                                "mailbox become prioritised draft replies in Drafts.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, _) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name in ("run", "once", "retry", "status", "check-config", "classify", "draft", "train"):
            sp.add_argument("-c", "--config", help="the TOML configuration file",
                            required=name in ("run", "once", "retry", "status"))
        if name in ("run", "once"):
            sp.add_argument("--since", help="also handle mail received on or after DATE (YYYY-MM-DD)")
        if name == "classify":
            sp.add_argument("--json", action="store_true", help="one JSON object per line")
        if name in ("classify", "draft"):
            sp.add_argument("files", nargs="+", metavar="FILE.eml")
        if name == "draft":
            sp.add_argument("-o", "--output", help="folder for <stem>.<role>.eml files")
        if name == "train":
            sp.add_argument("data", nargs="?", help="folder with a sub-folder or mbox per intent")
            sp.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
            sp.add_argument("--imap", action="store_true",
                            help="read Madoguchi/Training/<intent> folders over IMAP (needs -c)")
            sp.add_argument("--eval", help="labelled mail to evaluate the new model on")
            sp.add_argument("--seed", type=int, default=20261123)
        if name == "evaluate":
            sp.add_argument("data")
            sp.add_argument("--model", help="model file (default: the shipped one)")
            sp.add_argument("--png", help="write the confusion matrix as a PNG here")
        if name == "check-config":
            sp.add_argument("--print-example", action="store_true",
                            help="print config/example.toml, generated from the settings")
        if name == "auth":
            sp.add_argument("provider", choices=("gmail", "microsoft"))
            sp.add_argument("-c", "--config", required=True, help="the TOML configuration file")
            sp.add_argument("--no-browser", action="store_true",
                            help="gmail: print the sign-in address instead of opening a browser")
            sp.add_argument("--interactive", action="store_true",
                            help="microsoft: sign in in a browser instead of with a device code")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from daemon.logs import setup

    args = parser().parse_args(argv)
    setup(args.verbose)
    if args.command == "train" and not args.imap and not args.data:
        print("madoguchi: train needs DATA or --imap -c CONFIG", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.command][1](args)
    except MadoguchiError as exc:
        print(f"madoguchi: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0

