"""Arrival → draft: mails APPENDed to INBOX one at a time, and the time from each APPEND's
completion to the Service's `on_filed` callback (the drafts are in Drafts and the mail is
recorded), with the daemon in-process on IDLE and then on polling. A bare imapclient IDLE
client on the same INBOX measures Dovecot's own notification delay (APPEND → EXISTS) in the
same run.

    .venv/bin/python benchmarks/latency.py [--mails 200] [--poll-seconds 1]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imapclient import IMAPClient

from benchmarks.harness import Loopback, Mail, built, madoguchi_config, mixed_stream, spread, standalone
from daemon.domain import Outcome
from tests.dovecot import Account

WAIT_PER_MAIL = 20.0  # seconds before a mail counts as never filed


class Filings:
    """on_filed → (time.time(), drafts) by UID, and a condition to wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.at: dict[int, tuple[float, Outcome]] = {}
        self.failed: dict[int, str] = {}

    def __call__(self, uid: int, outcome: Outcome) -> None:
        t = time.time()
        with self.cond:
            self.at[uid] = (t, outcome)
            self.cond.notify_all()

    def fail(self, uid: int, reason: str) -> None:
        with self.cond:
            self.failed[uid] = reason
            self.cond.notify_all()

    def wait(self, uid: int, timeout: float) -> tuple[float, Outcome] | None:
        """The filing of `uid`; None once it failed (recorded by the Service) or timed out."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while uid not in self.at:
                if uid in self.failed:
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.at[uid]


class BareIdle(threading.Thread):
    """A plain imapclient IDLE on INBOX: the time each EXISTS is seen, by message count."""

    def __init__(self, acct: Account) -> None:
        super().__init__(daemon=True)
        self.acct = acct
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.seen: dict[int, float] = {}

    def run(self) -> None:
        with IMAPClient(self.acct.host, port=self.acct.port, ssl=False, timeout=30) as c:
            c.login(self.acct.username, self.acct.password)
            c.select_folder("INBOX", readonly=True)
            c.idle()
            self.ready.set()
            renew = time.monotonic() + 300
            while not self.stop.is_set():
                for r in c.idle_check(timeout=0.2):
                    if len(r) > 1 and r[1] == b"EXISTS":
                        self.seen.setdefault(int(r[0]), time.time())
                if time.monotonic() > renew:
                    c.idle_done()
                    c.idle()
                    renew = time.monotonic() + 300
            c.idle_done()


APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


def run_mode(loop: Loopback, work: Path, mode: str, mails: list[Mail], poll_seconds: int, seed: int) -> dict:
    """One daemon (IDLE or polling) on a user of its own; returns the figures."""
    from daemon import app, config

    acct = loop.user(f"lat{mode}")
    cfg = madoguchi_config(work / f"lat-{mode}", acct, poll_seconds=poll_seconds)
    svc = app.service(config.load(cfg))
    filings = Filings()
    svc.on_filed = filings
    record_failure = svc._failed

    def failed(uid, raw, reason, detail, filed):  # type: ignore[no-untyped-def]
        record_failure(uid, raw, reason, detail, filed)  # the Service's own bookkeeping, then ours
        filings.fail(uid, reason)

    svc._failed = failed  # type: ignore[method-assign]
    if mode == "poll":  # the Mailbox sees no IDLE capability: it polls every poll_seconds
        connect = svc.connect

        def polling():  # type: ignore[no-untyped-def]
            box = connect()
            box.idle = False  # type: ignore[attr-defined]
            return box

        svc.connect = polling
    bare = BareIdle(acct)
    bare.start()
    bare.ready.wait(30)
    daemon = threading.Thread(target=svc.run, kwargs={"idle_seconds": 540}, daemon=True)
    rng = random.Random(seed)
    lat: list[float] = []
    lat_all: list[float] = []
    missing = 0
    count = 0
    exists: list[float] = []
    with IMAPClient(acct.host, port=acct.port, ssl=False, timeout=30) as client:
        client.login(acct.username, acct.password)
        daemon.start()
        # warm-up: the first mails load templates and open Drafts; not counted
        warm = [built(i, f"warm{mode}") for i in range(3)]
        for k, m in enumerate([*warm, *mails]):
            gap = rng.uniform(0.2, 0.5) if mode == "idle" else rng.uniform(0.2, poll_seconds + 0.2)
            time.sleep(gap)  # the daemon is back in IDLE (or at a random point of its poll)
            resp = client.append("INBOX", m.raw)
            appended = time.time()
            count += 1
            found = APPENDUID.search(resp if isinstance(resp, bytes) else str(resp).encode())
            uid = int(found.group(1)) if found else count
            got = filings.wait(uid, WAIT_PER_MAIL)
            if k < len(warm):
                continue
            seen = bare.seen.get(count)
            if seen is not None:
                exists.append(seen - appended)
            if got is None:
                missing += uid not in filings.failed
                continue
            t, outcome = got
            lat_all.append(t - appended)
            if outcome.drafts:
                lat.append(t - appended)
    svc.stop.set()
    daemon.join(30)
    bare.stop.set()
    bare.join(10)
    svc.store.close()
    return {"mode": mode, "appended": len(mails), "drafted": spread(lat), "handled": spread(lat_all),
            "missing": missing, "failed": dict(sorted(filings.failed.items())), "exists": spread(exists),
            "poll_seconds": poll_seconds if mode == "poll" else None}


def run(loop: Loopback, work: Path, n_mails: int, poll_seconds: int = 1, seed: int = 7) -> dict:
    out = {}
    for i, mode in enumerate(("idle", "poll")):
        mails = mixed_stream(n_mails, seed + i, f"lat{mode}")
        out[mode] = run_mode(loop, work, mode, mails, poll_seconds, seed + i)
        print(f"  latency {mode}: {fmt(out[mode]['drafted'])} (drafted), Dovecot EXISTS {fmt(out[mode]['exists'])}",
              flush=True)
    exists = out["idle"]["exists"]
    return {**out, "dovecot_exists": exists}


def fmt(s: dict) -> str:
    return f"p50 {s['p50']:.3f} / p95 {s['p95']:.3f} / max {s['max']:.3f} s (n={s['n']})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mails", type=int, default=200)
    ap.add_argument("--poll-seconds", type=int, default=1)
    args = ap.parse_args()
    with standalone("latency") as (loop, work):
        r = run(loop, work, args.mails, args.poll_seconds)
    for mode in ("idle", "poll"):
        print(mode, "drafted", fmt(r[mode]["drafted"]), "handled", fmt(r[mode]["handled"]), "missing", r[mode]["missing"])
    print("dovecot IDLE EXISTS", fmt(r["dovecot_exists"]))


if __name__ == "__main__":
    main()
