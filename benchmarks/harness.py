"""Shared pieces of the benchmark suite (benchmarks/run_all.py): a loopback Dovecot with users,
madoguchi configs, labelled mixed mail streams, non-marketplace filler mail, Maildir filling,
percentiles and the machine description. Nothing here talks to any address but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from daemon.decide import COMPLAINTS  # noqa: E402
from daemon.domain import INTENTS  # noqa: E402
from tests.dovecot import Account, Dovecot  # noqa: E402
from tests.mails import amazon, web  # noqa: E402

SHARED_CORPUS = ROOT.parent / "shared" / "corpus"
EVAL = ROOT / "build" / "eval"
TRAIN = ROOT / "build" / "train"
QUESTIONS = ("inquiry", "payment_issue", "return_request", "late_return")


# --- numbers ------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def spread(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "max": max(values) if values else float("nan")}


@contextlib.contextmanager
def standalone(name: str) -> Iterator[tuple[Loopback, Path]]:
    """For one part run on its own: a temporary folder with a loopback Dovecot in it, and the
    in-process daemon's log in a file there."""
    with tempfile.TemporaryDirectory(prefix=f"madoguchi-{name}-") as tmp, Loopback(Path(tmp)) as loop:
        log_to(Path(tmp) / "daemon-in-process.log")
        yield loop, Path(tmp)


def log_to(path: Path) -> None:
    """The in-process daemon's log (INFO, one line per mail, as `madoguchi run` writes it) goes
    to a file rather than between the benchmark's own lines."""
    import logging

    log = logging.getLogger("madoguchi")
    for h in list(log.handlers):
        log.removeHandler(h)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


# --- the server ---------------------------------------------------------------------------

class Loopback:
    """One Dovecot on 127.0.0.1 for the whole run, from tests/dovecot.py, with helpers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dovecot = Dovecot(root / "dovecot")
        self.users: dict[str, Account] = {}

    def __enter__(self) -> Loopback:
        self.dovecot.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.dovecot.stop()

    def user(self, name: str) -> Account:
        acct = self.dovecot.add_user(name, f"pw-{name}")
        self.users[name] = acct
        return acct

    def maildir(self, name: str) -> Path:
        return self.dovecot.root / "mail" / name / "Maildir"

    def resync(self, name: str, folder: str = "INBOX") -> None:
        self.dovecot.doveadm("force-resync", "-u", name, folder)

    def drop_user_mail(self, name: str) -> None:
        """Free the disk a big Maildir took once its part is over."""
        shutil.rmtree(self.maildir(name), ignore_errors=True)


def madoguchi_config(folder: Path, acct: Account, *, poll_seconds: int = 60, idle_seconds: int = 540,
                     state: str = "state.sqlite3") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pw").write_text(acct.password + "\n")
    cfg = folder / "madoguchi.toml"
    cfg.write_text(
        f'[imap]\nhost = "{acct.host}"\nport = {acct.port}\nusername = "{acct.username}"\n'
        f'password_file = "pw"\nsecurity = "none"\nidle_seconds = {idle_seconds}\n'
        f"poll_seconds = {poll_seconds}\n"
        f'[state]\npath = "{state}"\n'
        '[seller]\nshop_name = "まどぐち書店"\nperson_name = "山田"\nfrom_address = "shop@example.com"\n'
        "[service]\nbackoff_max_seconds = 5\n")
    return cfg


# --- mail -------------------------------------------------------------------------------------

def with_message_id(raw: bytes, msgid: str) -> bytes:
    """The mail with its Message-ID replaced (or added), so every copy is a mail of its own.
    Keeps the mail's own line ends (CRLF, LF or the CR-only of old Mac mail)."""
    sample = raw[:4000]
    eol = b"\r\n" if b"\r\n" in sample else (b"\r" if b"\r" in sample and b"\n" not in sample else b"\n")
    cut = raw.find(eol + eol)
    head, rest = (raw[:cut], raw[cut:]) if cut >= 0 else (raw, b"")
    lines, skipping = [], False
    for line in head.split(eol):
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line[:11].lower() == b"message-id:"
        if not skipping:
            lines.append(line)
    return b"Message-ID: " + msgid.encode() + eol + eol.join(lines) + rest


@dataclass(frozen=True)
class Mail:
    raw: bytes
    intent: str  # the label: an intent of daemon.domain.INTENTS
    source: str

    @property
    def complaint(self) -> bool:
        return self.intent in COMPLAINTS

    @property
    def group(self) -> str:
        return "complaint" if self.complaint else ("notice" if self.intent == "other" else "question")


def labelled(folder: Path) -> list[Mail]:
    """The labelled .eml files of a built set (DATA/<intent>/*.eml), or none."""
    out = []
    for intent in INTENTS:
        for p in sorted((folder / intent).glob("*.eml")) if (folder / intent).is_dir() else ():
            out.append(Mail(p.read_bytes(), intent, str(p.relative_to(ROOT))))
    return out


# Mails built with tests/mails.py, with their labels: the builders' marketplaces and encodings.
_BUILT = (
    ("missing_item", lambda i, m: amazon(f"全巻セットの{i % 12 + 1}巻が入っていませんでした。至急送ってください。", msgid=m)),
    ("damaged_defective", lambda i, m: web("mercari", f"届いた商品の電源が入りません。確認をお願いします。({i})", msgid=m)),
    ("not_received", lambda i, m: web("yahoo_auctions", f"落札から2週間経ちますがまだ届きません。({i})", msgid=m)),
    ("wrong_item", lambda i, m: web("rakuma", f"注文したのは黒ですが白が届きました。交換してください。({i})", msgid=m)),
    ("damaged_defective", lambda i, m: amazon(f"箱がつぶれていて、本の表紙が破れていました。({i})", msgid=m,
                                              charset="utf-8", codec="utf-8", cte="8bit")),
    ("inquiry", lambda i, m: amazon(f"在庫はありますか?まとめて3つ買いたいです。({i})", msgid=m)),
    ("payment_issue", lambda i, m: web("buyma", f"お支払いを来週まで待っていただけますか。({i})", msgid=m)),
    ("inquiry", lambda i, m: web("otamart", f"こちらの商品、同梱は可能でしょうか。({i})", msgid=m)),
)


def built(i: int, tag: str) -> Mail:
    intent, make = _BUILT[i % len(_BUILT)]
    return Mail(make(i, f"<built-{tag}-{i}@madoguchi.bench>"), intent, "tests/mails.py")


def ensure_built() -> None:
    """build/train and build/eval, built as the README says when missing (from data/)."""
    for folder, seed in ((TRAIN, "1"), (EVAL, "2")):
        if not any(folder.rglob("*.eml")) and (ROOT / "data" / folder.name).is_dir():
            subprocess.run([sys.executable, "-m", "classifier.corpus", f"data/{folder.name}", f"build/{folder.name}",
                            "--seed", seed], cwd=ROOT, check=True, capture_output=True, timeout=600)


def mixed_stream(n: int, seed: int, tag: str, complaint_share: float = 0.45,
                 notice_share: float = 0.25) -> list[Mail]:
    """n labelled mails: complaints, questions and notices in the given shares, drawn from
    build/eval (every intent) and, for one in four, from the tests/mails.py builders. Each mail
    gets a Message-ID of its own."""
    rng = random.Random(seed)
    pool = labelled(EVAL)
    groups: dict[str, list[Mail]] = {"complaint": [], "question": [], "notice": []}
    for m in pool:
        groups[m.group].append(m)
    out = []
    for i in range(n):
        r = rng.random()
        group = "complaint" if r < complaint_share else ("notice" if r < complaint_share + notice_share else "question")
        if group != "notice" and (not groups[group] or rng.random() < 0.25):
            b = built(rng.randrange(1000) * len(_BUILT) + _pick(rng, group), f"{tag}{i}")
            out.append(b)
            continue
        if not groups[group]:  # no build/eval: notices from the builders' question mails
            out.append(built(rng.randrange(1000) * len(_BUILT) + _pick(rng, "question"), f"{tag}{i}"))
            continue
        m = rng.choice(groups[group])
        out.append(Mail(with_message_id(m.raw, f"<mix-{tag}-{i}@madoguchi.bench>"), m.intent, m.source))
    return out


def _pick(rng: random.Random, group: str) -> int:
    idx = [i for i, (intent, _) in enumerate(_BUILT) if (intent in COMPLAINTS) == (group == "complaint")]
    return rng.choice(idx)


def filler_pool() -> tuple[list[bytes], str]:
    """Non-marketplace mail: the files of ../shared/corpus (read here, never copied), less
    byte-duplicates, mboxes and files that are no mail at all; generated plain mails when the
    corpus is absent. Returns the raw mails and where they came from."""
    index = SHARED_CORPUS / "INDEX.tsv"
    pool: list[bytes] = []
    if index.is_file():
        for line in index.read_text(encoding="utf-8").splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) < 7 or cols[6] or "mbox" in cols[4]:
                continue
            p = SHARED_CORPUS / cols[0]
            with contextlib.suppress(OSError):
                raw = p.read_bytes()
                head = raw[:4096].lstrip(b"\r\n\t ")
                if re.match(rb"[!-9;-~]{1,76}:", head):
                    pool.append(raw)
    if pool:
        return pool, f"{SHARED_CORPUS} ({len(pool)} files, read at run time)"
    return [_plain(i) for i in range(500)], "generated plain mails (no shared corpus)"


def _plain(i: int) -> bytes:
    rng = random.Random(i)
    words = ["meeting", "invoice", "newsletter", "report", "schedule", "お知らせ", "ご案内", "議事録", "請求書"]
    body = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(rng.randint(3, 60)))
    return (f"From: person{i}@example.org\nTo: shop@example.com\nSubject: {rng.choice(words)} {i}\n"
            f"Date: {format_datetime(datetime.now().astimezone())}\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{body}\n").encode()


def marketplace_pool() -> list[Mail]:
    """Marketplace notifications and buyer messages: build/train and build/eval (labelled)."""
    pool = labelled(TRAIN) + labelled(EVAL)
    return pool or [built(i, "pool") for i in range(len(_BUILT) * 50)]


# --- Maildir --------------------------------------------------------------------------------

class MaildirFiller:
    """Writes mails straight into a user's Maildir (tests/dovecot.py: mail/<user>/Maildir,
    owned by the Dovecot mail user), as `cur/<n>.bench:2,` for a later `doveadm force-resync`,
    or through tmp/ into new/ as a local delivery would (an IDLE client then hears of it)."""

    def __init__(self, loopback: Loopback, user: str) -> None:
        self.dir = loopback.maildir(user)
        self.uid, self.gid = loopback.dovecot.uid, loopback.dovecot.gid
        for sub in ("", "cur", "new", "tmp"):
            d = self.dir / sub
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, self.uid, self.gid)
            d.chmod(0o700)
        self.n = 0
        self.bytes = 0
        self.pending: list[str] = []

    def put(self, raw: bytes, *, mtime: float | None = None) -> None:
        """Into cur/, for a later `doveadm force-resync`."""
        self.n += 1
        self._write(self.dir / "cur" / f"{self.n}.bench:2,", raw, mtime)

    def stage(self, raw: bytes) -> None:
        """Into tmp/; `deliver()` then moves every staged mail into new/ at once."""
        self.n += 1
        name = f"{int(time.time())}.M{self.n}P{os.getpid()}.bench"
        self._write(self.dir / "tmp" / name, raw, None)
        self.pending.append(name)

    def deliver(self) -> None:
        for name in self.pending:
            os.rename(self.dir / "tmp" / name, self.dir / "new" / name)
        self.pending.clear()

    def _write(self, path: Path, raw: bytes, mtime: float | None) -> None:
        self.bytes += len(raw)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, raw)
            os.fchown(fd, self.uid, self.gid)
        finally:
            os.close(fd)
        if mtime is not None:
            os.utime(path, (mtime, mtime))


def filler_stream(pool: list[bytes], market: list[Mail], n: int, market_every: int, tag: str,
                  seed: int) -> Iterator[tuple[bytes, bool]]:
    """n mails: one in `market_every` from the marketplace pool, the rest non-marketplace,
    each with a Message-ID of its own. Yields (raw, is_marketplace)."""
    rng = random.Random(seed)
    for i in range(n):
        if market and i % market_every == market_every // 2:
            m = market[rng.randrange(len(market))]
            yield with_message_id(m.raw, f"<{tag}-m{i}@madoguchi.bench>"), True
        else:
            yield with_message_id(pool[rng.randrange(len(pool))], f"<{tag}-f{i}@madoguchi.bench>"), False


# --- the machine ----------------------------------------------------------------------------

def machine() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f"{kb / 1024 / 1024:.1f} GiB"

    def version(*cmd: str) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "not found"
        return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else "?"

    head = version("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD")
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.count("\n")
    dovecot = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin") or "dovecot"
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "dovecot": version(dovecot, "--version"),
        "imapfilter": version("imapfilter", "-V"),
        "code": f"commit {head}" + (f" with uncommitted changes in {dirty} files" if dirty else ""),
        "load average at the start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
