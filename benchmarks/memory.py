"""Memory: the RSS of a `madoguchi run` subprocess (VmRSS from /proc/PID/status, sampled every
second) while it handles 100,000 mails that arrive in rounds. Each round is delivered straight
into the user's Maildir (through tmp/ into new/, as a local delivery agent does; Dovecot's
IDLE tells the daemon), mostly non-marketplace mail with one marketplace mail in 20. The next
round is delivered once the daemon has recorded every mail of the last one.

Drafts is emptied after each round (`doveadm expunge`), as a seller who works through the drafts
would: without it Dovecot's SEARCH over a Drafts folder of tens of thousands of drafts slows the
run down (that cost is the backfill part's), and the run would not reach 100,000 mails in time.

Reported: RSS at start (idle, model loaded), after warm-up (the first 10% of the mails), at the
end and the maximum, and whether it stayed flat (end within 10% + 5 MB of after warm-up).

    .venv/bin/python benchmarks/memory.py [--mails 100000] [--round 2500]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sqlite3
import subprocess
import sys
import threading
import time
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


def _proc_kb(path: str, field: str) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    return None


def rss_kb(pid: int) -> int | None:
    return _proc_kb(f"/proc/{pid}/status", "VmRSS:")


def pss_kb(pid: int) -> int | None:
    """Proportional set size: pages shared by several processes (a forked parent's) counted
    once in all, where summing RSS would count them in each."""
    return _proc_kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def tree_pss_kb(pid: int) -> int | None:
    """Memory of `pid` and every process below it (the daemon's parsing processes), as PSS."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        pss = pss_kb(p)
        if pss is None and p == pid:
            return None
        total += pss or 0
        todo += children.get(p, [])
    return total


def recorded(db: Path) -> int:
    """Mails the daemon has recorded (handled or failed), read from its state file."""
    if not db.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return int(c.execute("SELECT (SELECT count(*) FROM handled) + (SELECT count(*) FROM failures)").fetchone()[0])
    except sqlite3.Error:
        return -1  # not created yet, or busy: the sampler keeps the last value


def started(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return c.execute("SELECT count(*) FROM folders").fetchone()[0] > 0
    except sqlite3.Error:
        return False


class Sampler(threading.Thread):
    def __init__(self, pid: int, db: Path) -> None:
        super().__init__(daemon=True)
        self.pid, self.db = pid, db
        self.samples: list[tuple[float, int, int]] = []  # (seconds, RSS kB, mails recorded)
        self.stop = threading.Event()
        self.count = 0

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.is_set():
            rss = rss_kb(self.pid)
            if rss is None:
                break
            n = recorded(self.db)
            if n >= 0:
                self.count = n
            self.samples.append((time.monotonic() - t0, rss, self.count))
            self.stop.wait(1.0)


def run(loop: Loopback, work: Path, n: int = 100_000, round_size: int = 2500, market_every: int = 20,
        seed: int = 9, time_cap: float = 2400, idle_seconds: int = 60, empty_drafts: bool = True) -> dict:
    acct = loop.user("memory")
    filler = MaildirFiller(loop, "memory")  # the Maildir exists before the daemon's first login
    folder = work / "memory"
    # idle_seconds = 60: should a server's notice of a round ever be missed, the next IDLE
    # renewal finds it within a minute rather than nine
    cfg = madoguchi_config(folder, acct, idle_seconds=idle_seconds)
    db = folder / "state.sqlite3"
    exe = ROOT / ".venv" / "bin" / "madoguchi"
    cmd = [str(exe), "run", "-c", str(cfg)] if exe.exists() else [sys.executable, "-m", "daemon", "run", "-c", str(cfg)]
    log = (folder / "daemon.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + time_cap
    sampler = Sampler(proc.pid, db)
    sent, capped, died = 0, False, None
    try:
        t = time.monotonic()
        while not started(db) and proc.poll() is None and time.monotonic() - t < 120:
            time.sleep(0.2)
        time.sleep(2)  # into IDLE
        sampler.start()
        time.sleep(3)
        pool, _ = filler_pool()
        stream = filler_stream(pool, marketplace_pool(), n, market_every, "mem", seed)
        rounds = 0
        while sent < n:
            for _ in range(min(round_size, n - sent)):
                raw, _ = next(stream)
                filler.stage(raw)
                sent += 1
            filler.deliver()  # the whole round lands at once, while the daemon is in IDLE
            rounds += 1
            while sampler.count < sent and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if proc.poll() is not None:
                died = proc.returncode
                break
            if time.monotonic() >= deadline:
                capped = True
                break
            if empty_drafts:  # the seller works through the drafts (see the module doc)
                loop.dovecot.doveadm("expunge", "-u", "memory", "mailbox", "Drafts", "all")
            if rounds % 4 == 0:
                s = sampler.samples[-1]
                print(f"  memory: {s[2]} mails recorded, RSS {s[1] / 1024:.0f} MB, {s[0]:.0f} s", flush=True)
        time.sleep(3)
    finally:
        sampler.stop.set()
        sampler.join(5)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        loop.drop_user_mail("memory")
    s = sampler.samples
    if not s:
        return {"error": "no samples", "exit": proc.returncode}
    done = s[-1][2]
    warm_at = max(1, done // 10)
    warm = next((x for x in s if x[2] >= warm_at), s[-1])
    start_mb, warm_mb, end_mb = s[0][1] / 1024, warm[1] / 1024, s[-1][1] / 1024
    max_mb = max(x[1] for x in s) / 1024
    flat = end_mb <= warm_mb * 1.10 + 5
    # the slope over the part after warm-up: MB per 10,000 mails (least squares)
    after = [(x[2], x[1] / 1024) for x in s if x[2] >= warm_at]
    slope = 0.0
    if len(after) > 2 and after[-1][0] > after[0][0]:
        mx = sum(a for a, _ in after) / len(after)
        my = sum(b for _, b in after) / len(after)
        den = sum((a - mx) ** 2 for a, _ in after)
        slope = (sum((a - mx) * (b - my) for a, b in after) / den) * 10_000 if den else 0.0
    tail = (folder / "daemon.log").read_text(errors="replace").splitlines()[-5:] if died is not None else []
    return {"mails": done, "delivered": sent, "idle_seconds": idle_seconds, "empty_drafts": empty_drafts,
            "round": round_size, "samples": len(s),
            "seconds": s[-1][0],
            "start_mb": start_mb, "warm_mb": warm_mb, "warm_at": warm_at, "end_mb": end_mb, "max_mb": max_mb,
            "flat": flat, "slope_mb_per_10k": slope, "capped": capped, "died": died, "log_tail": tail,
            "exit": proc.returncode, "series": [(round(a), round(b / 1024, 1), c) for a, b, c in s[:: max(1, len(s) // 60)]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mails", type=int, default=100_000)
    ap.add_argument("--round", type=int, default=2500)
    ap.add_argument("--time-cap", type=float, default=2400)
    args = ap.parse_args()
    with standalone("memory") as (loop, work):
        r = run(loop, work, args.mails, args.round, time_cap=args.time_cap)
    for k, v in r.items():
        print(f"{k:18} {v}")


if __name__ == "__main__":
    main()
