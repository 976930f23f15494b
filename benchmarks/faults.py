"""Fault runs against a loopback Dovecot: SIGKILLs at random moments, Dovecot restarts under a
running daemon, a burst of new mail. Each returns its figures; `main` runs the full sizes of
issue 7 and prints them. tests/integration/test_faults.py runs the same code in a short form.

    .venv/bin/python benchmarks/faults.py            # 100 kills / 500 mails, 50 restarts, 5,000 burst
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402

from tests.dovecot import Account, Dovecot  # noqa: E402
from tests.mails import amazon, web  # noqa: E402

COMPLAINTS = (
    lambda i: amazon(f"全巻セットの{i % 12 + 1}巻が入っていませんでした。至急送ってください。", msgid=f"<f{i}@bench>"),
    lambda i: web("mercari", f"届いた商品の電源が入りません。確認をお願いします。({i})", msgid=f"<f{i}@bench>"),
    lambda i: web("yahoo_auctions", f"落札から2週間経ちますがまだ届きません。({i})", msgid=f"<f{i}@bench>"),
    lambda i: web("rakuma", f"注文したのは黒ですが白が届きました。交換してください。({i})", msgid=f"<f{i}@bench>"),
    lambda i: amazon(f"在庫はありますか?まとめて3つ買いたいです。({i})", msgid=f"<f{i}@bench>"),
    lambda i: web("buyma", f"お支払いを来週まで待っていただけますか。({i})", msgid=f"<f{i}@bench>"),
)


def mails(n: int) -> list[bytes]:
    return [COMPLAINTS[i % len(COMPLAINTS)](i) for i in range(n)]


def config(tmp: Path, acct: Account, backoff: int = 5) -> Path:
    (tmp / "pw").write_text(acct.password + "\n")
    cfg = tmp / "madoguchi.toml"
    cfg.write_text(f'[imap]\nhost = "{acct.host}"\nport = {acct.port}\nusername = "{acct.username}"\n'
                   'password_file = "pw"\nsecurity = "none"\nidle_seconds = 60\n[state]\npath = "state.sqlite3"\n'
                   f'[seller]\nshop_name = "まどぐち書店"\nperson_name = "山田"\nfrom_address = "shop@example.com"\n'
                   f'[service]\nbackoff_max_seconds = {backoff}\n')
    return cfg


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def append_all(acct: Account, raws: list[bytes], folder: str = "INBOX") -> None:
    with IMAPClient(acct.host, port=acct.port, ssl=False) as c:
        c.login(acct.username, acct.password)
        for raw in raws:
            c.append(folder, raw)


def reply_drafts(acct: Account) -> list[tuple[int, str, int]]:
    """(draft UID, source key, priority) of every reply draft, in Drafts order."""
    with IMAPClient(acct.host, port=acct.port, ssl=False) as c:
        c.login(acct.username, acct.password)
        c.select_folder("Drafts", readonly=True)
        uids = c.search(["ALL"])
        out = []
        for i in range(0, len(uids), 1000):
            data = c.fetch(uids[i : i + 1000], ["BODY.PEEK[HEADER.FIELDS (X-MADOGUCHI-KEY X-PRIORITY)]"])
            for uid, d in data.items():
                head = next(v for k, v in d.items() if k.startswith(b"BODY")).decode()
                fields = dict(line.split(": ", 1) for line in head.strip().splitlines() if ": " in line)
                key = fields.get("X-Madoguchi-Key", "")
                if key.startswith("reply:"):
                    out.append((uid, key, int(fields.get("X-Priority", "0").split()[0])))
        return sorted(out)


def tally(acct: Account, n: int) -> dict[str, int]:
    counts = Counter(key for _, key, _ in reply_drafts(acct))
    return {"mails": n, "drafted": len(counts), "duplicates": sum(1 for c in counts.values() if c > 1),
            "missing": n - len(counts)}


def kills(dovecot: Dovecot, tmp: Path, n_mails: int = 500, n_kills: int = 100, seed: int = 1) -> dict[str, float]:
    acct = dovecot.add_user(f"kills{seed}", "pw-kills")
    cfg = config(tmp, acct)
    cli("once", "-c", str(cfg))
    append_all(acct, mails(n_mails))
    rng = random.Random(seed)
    started = time.monotonic()
    for _ in range(n_kills):
        p = subprocess.Popen([sys.executable, "-m", "daemon", "run", "-c", str(cfg)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 2.5))  # start-up is ~1 s: most kills land mid-work
        p.send_signal(signal.SIGKILL)
        p.wait()
    cli("once", "-c", str(cfg))
    return {**tally(acct, n_mails), "kills": n_kills, "seconds": round(time.monotonic() - started, 1)}


def restarts(dovecot: Dovecot, tmp: Path, n_restarts: int = 50, per_round: int = 4,
             backoff: int = 5) -> dict[str, float]:
    acct = dovecot.add_user(f"restarts{n_restarts}", "pw-restarts")
    cfg = config(tmp, acct, backoff)
    cli("once", "-c", str(cfg))
    log = (tmp / "daemon.log").open("wb")
    daemon = subprocess.Popen([sys.executable, "-m", "daemon", "run", "-c", str(cfg)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=log)
    back: list[float] = []
    sent = 0
    try:
        time.sleep(2)
        for r in range(n_restarts):
            batch = [COMPLAINTS[(sent + i) % len(COMPLAINTS)](sent + i) for i in range(per_round)]
            append_all(acct, batch)
            sent += per_round
            dovecot.restart()
            up = time.monotonic()
            marker = COMPLAINTS[0](100_000 + r)
            append_all(acct, [marker])
            sent += 1
            key = f"reply:<f{100_000 + r}@bench>"
            while key not in {k for _, k, _ in reply_drafts(acct)}:
                if time.monotonic() - up > 4 * backoff + 30:
                    raise RuntimeError(f"the daemon did not come back after restart {r + 1}")
                time.sleep(0.1)
            back.append(time.monotonic() - up)
        deadline = time.monotonic() + 60  # let the daemon finish what is in INBOX before counting
        while tally(acct, sent)["missing"] and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
        log.close()
    result = tally(acct, sent)
    marker_keys = {f"reply:<f{100_000 + r}@bench>" for r in range(n_restarts)}
    return {**result, "restarts": n_restarts, "exit_code": code,
            "back_max_s": round(max(back), 2), "back_median_s": round(sorted(back)[len(back) // 2], 2),
            "backoff_cap_s": backoff, "markers": len(marker_keys)}


def burst(dovecot: Dovecot, tmp: Path, n_mails: int = 5000, batch: int | None = None) -> dict[str, float]:
    """A burst delivered at once; `batch` overrides the daemon's own batch size (service.BATCH)."""
    from daemon import app
    from daemon import config as settings

    acct = dovecot.add_user(f"burst{n_mails}", "pw-burst")
    cfg = config(tmp, acct)
    cli("once", "-c", str(cfg))
    append_all(acct, mails(n_mails))
    svc = app.service(settings.load(cfg))
    if batch:
        svc.batch = batch
    started = time.monotonic()
    svc.run_once()
    elapsed = time.monotonic() - started
    svc._drop(logout=True)
    drafts = reply_drafts(acct)
    first_other = min((uid for uid, _, p in drafts if p != 1), default=0)
    late_p1 = sum(1 for uid, _, p in drafts if p == 1 and uid > first_other)
    return {**tally(acct, n_mails), "seconds": round(elapsed, 1), "mails_per_s": round(n_mails / elapsed),
            "priority1_after_others": late_p1, "priority1": sum(1 for *_, p in drafts if p == 1)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Dovecot(Path(tmp) / "dovecot")
        d.start()
        try:
            for name, run in (("kills", lambda: kills(d, _dir(tmp, "k"))),
                              ("restarts", lambda: restarts(d, _dir(tmp, "r"))),
                              ("burst", lambda: burst(d, _dir(tmp, "b")))):
                print(name, run(), flush=True)
        finally:
            d.stop()


def _dir(tmp: str, name: str) -> Path:
    p = Path(tmp) / name
    p.mkdir()
    return p


if __name__ == "__main__":
    main()
