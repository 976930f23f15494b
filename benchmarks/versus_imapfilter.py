"""Side by side with imapfilter (Debian's /usr/bin/imapfilter): the same mail stream goes to
mailboxes of their own, screened by

* imapfilter in its daemon loop, `become_daemon(60, forever)` (and a 10 s one),
* imapfilter in IDLE mode (`while … do INBOX:enter_idle(); screen() end`),
* madoguchi (in-process Service on IDLE, filing time from `on_filed`).

imapfilter's rules are keyword rules that flag (\\Flagged) the unseen, unflagged mails whose
body holds a complaint word a seller would list. Its time is observed by polling FLAGS every
50 ms from here; madoguchi's is its `on_filed`. For every complaint (by its label): the time
from the APPEND's completion until it is flagged / drafted, and whether it was caught at all.

    .venv/bin/python benchmarks/versus_imapfilter.py [--mails 120] [--spacing 2.5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imapclient import IMAPClient

from benchmarks.harness import Loopback, Mail, madoguchi_config, mixed_stream, spread, standalone
from benchmarks.latency import APPENDUID, Filings
from tests.dovecot import Account

IMAPFILTER = shutil.which("imapfilter") or "/usr/bin/imapfilter"
# The complaint words a seller would put in a rule, with the everyday conjugations.
WORDS = ("届かない", "届いていない", "届きません", "未着", "違う", "違い", "間違", "壊れ", "破損", "割れ", "不良",
         "故障", "動かない", "電源が入らない", "入っていない", "入っていませ", "足りない", "欠品", "返品", "返金", "交換")
OBSERVE_EVERY = 0.05

_COMMON = """\
-- written by benchmarks/versus_imapfilter.py; see man imapfilter_config
options.starttls = false      -- plain IMAP on 127.0.0.1 (the loopback Dovecot's own port)
options.info = false
options.charset = 'UTF-8'     -- the search words are Japanese
options.timeout = 60
account = IMAP {{ server = '127.0.0.1', port = {port}, username = '{user}', password = '{password}' }}
words = {{ {words} }}
deadline = os.time() + {seconds}   -- stops by itself after the benchmark's time

function screen()
    local box = account.INBOX
    local candidates = box:is_unseen() * box:is_unflagged()
    local hits = Set {{}}
    for _, word in ipairs(words) do
        hits = hits + candidates:contain_body(word)
    end
    hits:mark_flagged()
end
"""

_DAEMON = """
wrote = false
function forever()
    if not wrote then   -- the daemon's pid, for the benchmark to stop it by id
        local f = io.open('/proc/self/stat'); local pid = f:read('*l'):match('^(%d+)'); f:close()
        local out = io.open('{pidfile}', 'w'); out:write(pid); out:close(); wrote = true
    end
    if os.time() > deadline then os.exit(0) end
    screen()
end

become_daemon({interval}, forever, true, true)
"""

_IDLE = """
screen()
while os.time() < deadline do
    account.INBOX:enter_idle()
    screen()
end
"""


class Imapfilter:
    """One imapfilter process screening one account: a daemon loop or an IDLE loop."""

    def __init__(self, work: Path, name: str, acct: Account, interval: int | None, seconds: int) -> None:
        self.name, self.interval = name, interval
        self.dir = work / name
        (self.dir / "home").mkdir(parents=True, exist_ok=True)  # imapfilter needs a writable HOME
        self.pidfile = self.dir / "pid"
        self.config = self.dir / "config.lua"
        body = _COMMON.format(port=acct.port, user=acct.username, password=acct.password, seconds=seconds,
                              words=", ".join(f"'{w}'" for w in WORDS))
        body += _DAEMON.format(pidfile=self.pidfile, interval=interval) if interval else _IDLE
        self.config.write_text(body, encoding="utf-8")
        self.log = (self.dir / "log").open("wb")
        self.proc = subprocess.Popen([IMAPFILTER, "-c", str(self.config)], cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env={"HOME": str(self.dir / "home"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})

    def daemon_pid(self) -> int | None:
        """The pid of imapfilter's own daemon (become_daemon forks), once it has written it."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if str(self.config).encode() in cmdline:
                return pid
        return None

    def ready(self, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.interval is None:
                if self.proc.poll() is not None:
                    return False
                time.sleep(1.0)  # the first screen() and enter_idle() are done by then
                return True
            if self.daemon_pid():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        pid = self.daemon_pid() if self.interval else None
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class FlagWatcher(threading.Thread):
    """Polls FLAGS on each account every 50 ms; the first time each UID is seen \\Flagged."""

    def __init__(self, accounts: dict[str, Account]) -> None:
        super().__init__(daemon=True)
        self.accounts = accounts
        self.flagged: dict[str, dict[int, float]] = {name: {} for name in accounts}
        self.stop = threading.Event()
        self.polls = 0

    def run(self) -> None:
        clients = {}
        try:
            for name, a in self.accounts.items():
                c = IMAPClient(a.host, port=a.port, ssl=False, timeout=30)
                c.login(a.username, a.password)
                c.select_folder("INBOX", readonly=True)
                clients[name] = c
            while not self.stop.is_set():
                started = time.monotonic()
                for name, c in clients.items():
                    c.noop()
                    uids = c.search(["FLAGGED"])
                    now = time.time()
                    seen = self.flagged[name]
                    for uid in uids:
                        seen.setdefault(uid, now)
                self.polls += 1
                self.stop.wait(max(0.0, OBSERVE_EVERY - (time.monotonic() - started)))
        finally:
            for c in clients.values():
                with contextlib.suppress(Exception):
                    c.logout()


def run(loop: Loopback, work: Path, n_mails: int = 120, spacing: float = 2.5, intervals: tuple[int, ...] = (60, 10),
        seed: int = 11) -> dict:
    from daemon import app, config

    mails: list[Mail] = mixed_stream(n_mails, seed, "vs", complaint_share=0.5, notice_share=0.2)
    # a mail that lands just after imapfilter's check waits a whole cycle: two intervals and a margin
    tail = 2 * max(intervals) + 15
    seconds = int(n_mails * spacing + tail + 120)
    names = [f"if{i}s" for i in intervals] + ["ifidle"]
    accts = {name: loop.user(f"vs{name}") for name in names}
    accts["madoguchi"] = loop.user("vsmadoguchi")
    # madoguchi: in-process, IDLE
    svc = app.service(config.load(madoguchi_config(work / "vs-madoguchi", accts["madoguchi"])))
    filings = Filings()
    svc.on_filed = filings
    daemon = threading.Thread(target=svc.run, kwargs={"idle_seconds": 540}, daemon=True)
    daemon.start()
    filters = [Imapfilter(work, name, accts[name], interval, seconds)
               for name, interval in zip(names, [*intervals, None], strict=True)]
    watcher = FlagWatcher({name: accts[name] for name in names})
    appended: dict[str, list[tuple[int, float]]] = {name: [] for name in accts}
    try:
        for f in filters:
            if not f.ready():
                raise RuntimeError(f"imapfilter {f.name} did not start: {(f.dir / 'log').read_text(errors='replace')}")
        watcher.start()
        clients = {}
        for name, a in accts.items():
            c = IMAPClient(a.host, port=a.port, ssl=False, timeout=30)
            c.login(a.username, a.password)
            clients[name] = c
        started = time.monotonic()
        for i, m in enumerate(mails):
            time.sleep(max(0.0, started + i * spacing - time.monotonic()))
            order = list(clients.items())
            order = order[i % len(order):] + order[: i % len(order)]  # nobody is always first
            for name, c in order:
                resp = c.append("INBOX", m.raw)
                t = time.time()
                found = APPENDUID.search(resp if isinstance(resp, bytes) else str(resp).encode())
                appended[name].append((int(found.group(1)) if found else i + 1, t))
        for c in clients.values():
            c.logout()
        # every variant gets one full interval (and a margin) after the last mail
        wait_until = time.monotonic() + tail
        while time.monotonic() < wait_until:
            done_m = all(uid in filings.at or uid in filings.failed for uid, _ in appended["madoguchi"])
            done_f = all(uid in watcher.flagged[n] for n in names
                         for m, (uid, _) in zip(mails, appended[n], strict=True) if m.complaint)
            if done_m and done_f:
                break
            time.sleep(0.5)
    finally:
        watcher.stop.set()
        watcher.join(10)
        for f in filters:
            f.stop()
        svc.stop.set()
        daemon.join(30)
        svc.store.close()
    out: dict[str, dict] = {}
    complaints = sum(m.complaint for m in mails)
    for name in names:
        times, caught, false_flags = [], 0, 0
        for m, (uid, t) in zip(mails, appended[name], strict=True):
            at = watcher.flagged[name].get(uid)
            if m.complaint and at is not None:
                caught += 1
                times.append(at - t)
            elif at is not None:
                false_flags += 1
        out[name] = {"caught": caught, "complaints": complaints, "time": spread(times), "false_alarms": false_flags,
                     "non_complaints": len(mails) - complaints}
    times, caught, false_flags, drafted = [], 0, 0, 0
    for m, (uid, t) in zip(mails, appended["madoguchi"], strict=True):
        got = filings.at.get(uid)
        if got is None:
            continue
        at, outcome = got
        said = outcome.decision.complaint
        if m.complaint and said:
            caught += 1
            times.append(at - t)
        elif said:
            false_flags += 1
        drafted += bool(outcome.drafts)
    out["madoguchi"] = {"caught": caught, "complaints": complaints, "time": spread(times), "false_alarms": false_flags,
                        "non_complaints": len(mails) - complaints, "failed": len(filings.failed), "drafted": drafted}
    m_med = out["madoguchi"]["time"]["p50"]
    for name in names:
        out[name]["time_ratio"] = out[name]["time"]["p50"] / m_med if m_med else float("nan")
        out[name]["catch_ratio"] = caught / out[name]["caught"] if out[name]["caught"] else float("inf")
    out["_run"] = {"mails": len(mails), "spacing_s": spacing, "observer_polls": watcher.polls,
                   "intervals": list(intervals), "words": list(WORDS)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mails", type=int, default=120)
    ap.add_argument("--spacing", type=float, default=2.5)
    args = ap.parse_args()
    with standalone("vs") as (loop, work):
        r = run(loop, work, args.mails, args.spacing)
    for name, v in r.items():
        print(name, v)


if __name__ == "__main__":
    main()
