"""Backfill: `--since` over a mailbox of 50,000 mails, mostly non-marketplace mail with some
thousands of marketplace notifications among them; mails screened per second end to end
(Service.run_once with `since` set: SEARCH, FETCH, parse, classify, decide, render, file the
drafts, record).

The mailbox is filled fast: the mails are written straight into the user's Maildir
(`cur/<n>.bench:2,`, owned by Dovecot's mail user, received dates spread over the last 20
days) and Dovecot indexes them with `doveadm force-resync`, instead of 50,000 APPENDs.

    .venv/bin/python benchmarks/backfill.py [--mails 50000] [--profile backfill.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import re
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import (
    ROOT,
    Loopback,
    MaildirFiller,
    filler_pool,
    filler_stream,
    madoguchi_config,
    marketplace_pool,
    standalone,
)
from benchmarks.memory import rss_kb, tree_pss_kb
from daemon import workers
from daemon.domain import Outcome

DAYS = 20


def fill(loop: Loopback, user: str, n: int, market_every: int, seed: int, *, spread_days: int = DAYS,
         tag: str = "bf") -> dict:
    pool, source = filler_pool()
    market = marketplace_pool()
    filler = MaildirFiller(loop, user)
    t = time.monotonic()
    now = time.time()
    markets = 0
    for i, (raw, is_market) in enumerate(filler_stream(pool, market, n, market_every, tag, seed)):
        filler.put(raw, mtime=now - spread_days * 86400 * (n - i) / n)
        markets += is_market
    written = time.monotonic() - t
    t = time.monotonic()
    loop.resync(user)
    indexed = time.monotonic() - t
    return {"mails": n, "marketplace": markets, "bytes": filler.bytes, "write_s": written, "index_s": indexed,
            "filler_source": source}


def run(loop: Loopback, work: Path, n: int = 50_000, market_every: int = 15, seed: int = 5,
        profile: Path | None = None, time_cap: float = 1200) -> dict:
    from daemon import app, config

    acct = loop.user("backfill")
    filled = fill(loop, "backfill", n, market_every, seed)
    print(f"  backfill: {n} mails written ({filled['bytes'] / 1e6:.0f} MB, {filled['marketplace']} marketplace) "
          f"in {filled['write_s']:.0f} s, indexed in {filled['index_s']:.0f} s", flush=True)
    since = date.today() - timedelta(days=DAYS + 5)
    svc = app.service(config.load(madoguchi_config(work / "backfill", acct)), since=since)
    svc._context()  # the model is loaded before the clock starts, as at a daemon's start
    marks: list[tuple[int, float]] = []  # (mails filed, seconds) every 1,000 mails: is the rate steady?

    filed_count = drafts = 0

    def filed_one(uid: int, outcome: Outcome) -> None:
        nonlocal filed_count, drafts
        filed_count += 1
        drafts += len(outcome.drafts)
        if filed_count % 1000 == 0:
            marks.append((filed_count, time.monotonic() - t))

    svc.on_filed = filed_one
    cap = threading.Timer(time_cap, svc.stop.set)  # the pass stops at a batch boundary after this
    prof = cProfile.Profile() if profile else None
    t = time.monotonic()
    cap.start()
    if prof:
        prof.enable()
    try:
        filed = svc.run_once()
    finally:
        if prof:
            prof.disable()
            prof.dump_stats(str(profile))
        cap.cancel()
    elapsed = time.monotonic() - t
    capped = svc.stop.is_set()
    svc._drop(logout=True)
    svc.store.close()
    screened = filed.handled + filed.failed
    reasons: dict[str, int] = {}
    for _, reason in filed.failures:
        reasons[reason[:80]] = reasons.get(reason[:80], 0) + 1
    loop.drop_user_mail("backfill")
    return {**filled, "screened": screened, "handled": filed.handled, "failed": filed.failed,
            "failure_reasons": dict(sorted(reasons.items(), key=lambda x: -x[1])[:5]),
            "drafts": drafts, "seconds": elapsed, "mails_per_s": screened / elapsed if elapsed else 0.0,
            "since": since.isoformat(), "profile": str(profile) if profile else None, "capped": capped,
            "time_cap_s": time_cap, "marks": marks}


def run_cli(loop: Loopback, work: Path, n: int = 50_000, market_every: int = 15, seed: int = 5,
            time_cap: float = 1200) -> dict:
    """The same backfill as a seller runs it: `madoguchi once --since` in a process of its own,
    start-up included, with its RSS, and the PSS of it and its parsing processes together,
    sampled every 0.2 s."""
    acct = loop.user("backfillcli")
    filled = fill(loop, "backfillcli", n, market_every, seed, tag="bc")
    since = date.today() - timedelta(days=DAYS + 5)
    cfg = madoguchi_config(work / "backfill-cli", acct)
    exe = ROOT / ".venv" / "bin" / "madoguchi"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "daemon"]
    output = work / "backfill-cli" / "output.txt"
    t = time.monotonic()
    with output.open("wb") as sink:
        proc = subprocess.Popen([*cmd, "once", "-c", str(cfg), "--since", since.isoformat()], cwd=ROOT,
                                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.DEVNULL)
    peak_main = peak_tree = 0
    while proc.poll() is None and time.monotonic() - t < time_cap:
        main_kb, tree_kb = rss_kb(proc.pid), tree_pss_kb(proc.pid)
        peak_main, peak_tree = max(peak_main, main_kb or 0), max(peak_tree, tree_kb or 0)
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    elapsed = time.monotonic() - t
    out = output.read_text(encoding="utf-8", errors="replace")
    found = re.search(r"(\d+) handled, (\d+) failed", out)
    handled, failed = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    loop.drop_user_mail("backfillcli")
    return {"mails": n, "marketplace": filled["marketplace"], "screened": handled + failed, "failed": failed,
            "seconds": elapsed, "mails_per_s": (handled + failed) / elapsed, "exit": proc.returncode,
            "peak_rss_mb": peak_main / 1024, "peak_tree_pss_mb": peak_tree / 1024, "cores": workers.cores()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mails", type=int, default=50_000)
    ap.add_argument("--market-every", type=int, default=15, help="one marketplace mail in N (default 15)")
    ap.add_argument("--profile", type=Path, help="write cProfile stats of run_once here")
    ap.add_argument("--time-cap", type=float, default=1200, help="stop the pass after this many seconds")
    ap.add_argument("--cli", action="store_true", help="run `madoguchi once --since` as a process instead, "
                    "and sample its RSS")
    args = ap.parse_args()
    with standalone("backfill") as (loop, work):
        if args.cli:
            r = run_cli(loop, work, args.mails, args.market_every, time_cap=args.time_cap)
        else:
            r = run(loop, work, args.mails, args.market_every, profile=args.profile, time_cap=args.time_cap)
    for k, v in r.items():
        print(f"{k:16} {v}")


if __name__ == "__main__":
    main()
