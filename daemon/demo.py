"""`madoguchi demo`: the real daemon against an embedded IMAP server, with sample mails.

It starts pymap on 127.0.0.1, starts the daemon (IDLE and all) in a thread, delivers the
sample marketplace mails written for the project (daemon/samples/), waits until each is
handled, and prints what was filed. No config, no network beyond 127.0.0.1.
"""

from __future__ import annotations

import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from typing import TextIO

from daemon import app, config
from daemon.demo_server import DemoServer
from daemon.domain import Outcome
from daemon.mailbox import ImapAccount, ImapMailbox
from daemon.service import Service
from daemon.store import Store

CATALOGUE = Path(__file__).resolve().parent.parent / "config" / "listings.example.csv"


def samples() -> list[tuple[str, bytes]]:
    folder = resources.files("daemon") / "samples"
    return sorted((p.name, p.read_bytes()) for p in folder.iterdir() if p.name.endswith(".eml"))


def run_demo(out: TextIO, timeout: float = 25.0) -> int:
    started = time.monotonic()
    mails = samples()
    settings = config.from_mapping({
        "seller": {"shop_name": "まどぐち書店", "person_name": "山田 太郎", "shop_name_latin": "Madoguchi Books",
                   "person_name_latin": "Taro Yamada",
                   "from_address": "shop@example.com"},
        "catalogue": {"path": str(CATALOGUE)},
    }, None)
    filed: list[tuple[int, Outcome]] = []
    server = DemoServer()
    with tempfile.TemporaryDirectory(prefix="madoguchi-demo-") as tmp, server as account:
        store = Store(Path(tmp) / "state.sqlite3")
        acct = ImapAccount(host=account.host, port=account.port, username=account.username,
                           password=account.password, security="none")
        model = app.classifier_for(settings)
        ctx = app.context(settings, store, model)
        svc = Service(connect=lambda: ImapMailbox(acct), store=store, context=lambda: ctx,
                      on_filed=lambda uid, o: filed.append((uid, o)))
        svc.run_once()  # the first start: from now on, new mail is handled
        thread = threading.Thread(target=svc.run, kwargs={"idle_seconds": 60}, daemon=True)
        thread.start()
        print(f"IMAP server on {account.host}:{account.port}; daemon watching INBOX (IDLE)\n",
              file=out)
        for _name, raw in mails:
            server.append("INBOX", raw)  # as a marketplace's mail would arrive
        deadline = time.monotonic() + timeout
        while len(filed) < len(mails) and time.monotonic() < deadline:
            time.sleep(0.05)
        svc.stop.set()
        thread.join(10)
        store.close()
    for _uid, o in sorted(filed, key=lambda x: x[0]):
        _print(out, o)
    elapsed = time.monotonic() - started
    drafts = sum(len(o.drafts) for _, o in filed)
    print(f"{len(filed)} of {len(mails)} mails handled, {drafts} drafts filed in Drafts, "
          f"{elapsed:.1f} s", file=out)
    return 0 if len(filed) == len(mails) else 1


def _print(out: TextIO, o: Outcome) -> None:
    n, d = o.notification, o.decision
    print(f"● {n.subject[:70]}", file=out)
    print(f"  priority {d.priority}  intent {d.intent}  marketplace {n.marketplace}"
          + (f" ({n.via})" if n.via else "") + f"  confidence {d.confidence:.2f}"
          + ("  [review]" if d.needs_review else ""), file=out)
    print(f"  why: {'; '.join(d.reasons)}", file=out)
    if not o.drafts:
        print("  → no draft (nothing to answer)\n", file=out)
        return
    for draft in o.drafts:
        m = draft.message
        body = m.get_content().strip().splitlines()
        flag = " \\Flagged" if draft.flagged else ""
        print(f"  → {draft.role} draft{flag}: To {m['To'] or '(seller)'} | {m['Subject']}", file=out)
        for line in [ln for ln in body if ln.strip()][:4]:
            print(f"      {line[:90]}", file=out)
    print(file=out)
