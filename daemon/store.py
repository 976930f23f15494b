"""The state store (SQLite, WAL): which mails were handled, which failed and why, order dates
seen in earlier notices, complaints per product for alerts, and each folder's watermark.

One transaction per mail: a mail is recorded only after its drafts are in Drafts, so a crash
in between leaves it unrecorded and the next pass finds the drafts already filed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

from daemon.render import Complaint

SCHEMA = """
CREATE TABLE IF NOT EXISTS handled (
    folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
    message_id TEXT NOT NULL, handled_at TEXT NOT NULL, marketplace TEXT, intent TEXT,
    priority INTEGER, drafts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (folder, uidvalidity, uid));
CREATE INDEX IF NOT EXISTS handled_message_id ON handled (message_id);
CREATE TABLE IF NOT EXISTS failures (
    folder TEXT NOT NULL, uidvalidity INTEGER NOT NULL, uid INTEGER NOT NULL,
    message_id TEXT, reason TEXT NOT NULL, detail TEXT, attempts INTEGER NOT NULL DEFAULT 1,
    first_failed TEXT NOT NULL, last_failed TEXT NOT NULL,
    PRIMARY KEY (folder, uidvalidity, uid));
CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, order_date TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS complaints (
    product TEXT NOT NULL, message_id TEXT NOT NULL, summary TEXT NOT NULL,
    PRIMARY KEY (product, message_id));
CREATE TABLE IF NOT EXISTS folders (
    folder TEXT PRIMARY KEY, uidvalidity INTEGER NOT NULL, watermark INTEGER NOT NULL,
    started TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Folder:
    name: str
    uidvalidity: int
    watermark: int  # first UID to handle (UIDNEXT at the first start)
    started: str


@dataclass(frozen=True)
class FailureRow:
    folder: str
    uidvalidity: int
    uid: int
    message_id: str | None
    reason: str
    attempts: int
    last_failed: str


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # one thread at a time uses the store, but not always the thread that opened it
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a recorded mail survives power loss
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; opened inside another, it is part of that one (one commit for many
        records: all of them are kept, or on an error or a crash none)."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # folders and watermarks
    def folder(self, name: str) -> Folder | None:
        row = self.db.execute("SELECT folder, uidvalidity, watermark, started FROM folders "
                              "WHERE folder = ?", (name,)).fetchone()
        return Folder(*row) if row else None

    def set_folder(self, f: Folder) -> None:
        self.db.execute("INSERT OR REPLACE INTO folders VALUES (?, ?, ?, ?)",
                        (f.name, f.uidvalidity, f.watermark, f.started))

    # handled mail
    def is_handled(self, folder: str, uidvalidity: int, uid: int) -> bool:
        return self.db.execute("SELECT 1 FROM handled WHERE folder=? AND uidvalidity=? AND uid=?",
                               (folder, uidvalidity, uid)).fetchone() is not None

    def handled_uids(self, folder: str, uidvalidity: int, uids: list[int]) -> set[int]:
        out: set[int] = set()
        for i in range(0, len(uids), 500):
            chunk = uids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out.update(r[0] for r in self.db.execute(
                f"SELECT uid FROM handled WHERE folder=? AND uidvalidity=? AND uid IN ({marks})",
                (folder, uidvalidity, *chunk)))
        return out

    def message_handled(self, message_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM handled WHERE message_id = ?",
                               (message_id,)).fetchone() is not None

    def record(self, folder: str, uidvalidity: int, uid: int, message_id: str, *,
               marketplace: str = "", intent: str = "", priority: int = 0, drafts: int = 0,
               order: tuple[str, date] | None = None,
               complaint: tuple[str, Complaint] | None = None) -> None:
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO handled VALUES (?,?,?,?,?,?,?,?,?)",
                       (folder, uidvalidity, uid, message_id, now, marketplace, intent, priority,
                        drafts))
            db.execute("DELETE FROM failures WHERE folder=? AND uidvalidity=? AND uid=?",
                       (folder, uidvalidity, uid))
            if order:
                db.execute("INSERT OR IGNORE INTO orders VALUES (?, ?)",
                           (order[0], order[1].isoformat()))
            if complaint:
                db.execute("INSERT OR IGNORE INTO complaints VALUES (?, ?, ?)",
                           (complaint[0], complaint[1].message_id,
                            json.dumps(asdict(complaint[1]), ensure_ascii=False)))

    def record_failure(self, folder: str, uidvalidity: int, uid: int, message_id: str | None,
                       reason: str, detail: str = "") -> None:
        now = datetime.now().astimezone().isoformat(timespec="seconds")
        self.db.execute(
            "INSERT INTO failures VALUES (?,?,?,?,?,?,1,?,?) ON CONFLICT (folder, uidvalidity, uid)"
            " DO UPDATE SET attempts = attempts + 1, reason = excluded.reason,"
            " detail = excluded.detail, last_failed = excluded.last_failed",
            (folder, uidvalidity, uid, message_id, reason, detail, now, now))

    def failures(self, limit: int = 20) -> list[FailureRow]:
        rows = self.db.execute("SELECT folder, uidvalidity, uid, message_id, reason, attempts, "
                               "last_failed FROM failures ORDER BY last_failed DESC LIMIT ?",
                               (limit,))
        return [FailureRow(*r) for r in rows]

    def failed_uids(self, folder: str, uidvalidity: int) -> list[int]:
        return [r[0] for r in self.db.execute(
            "SELECT uid FROM failures WHERE folder=? AND uidvalidity=? ORDER BY uid",
            (folder, uidvalidity))]

    # lookups for the pipeline
    def order_date(self, order_id: str) -> date | None:
        row = self.db.execute("SELECT order_date FROM orders WHERE order_id = ?",
                              (order_id,)).fetchone()
        return date.fromisoformat(row[0]) if row else None

    def complaints(self, product: str) -> tuple[Complaint, ...]:
        rows = self.db.execute("SELECT summary FROM complaints WHERE product = ? ORDER BY rowid",
                               (product,))
        return tuple(Complaint(**json.loads(r[0])) for r in rows)

    # status
    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def counts(self) -> dict[str, int]:
        handled = self.db.execute("SELECT count(*), coalesce(sum(drafts), 0) FROM handled").fetchone()
        failed = self.db.execute("SELECT count(*) FROM failures").fetchone()[0]
        return {"handled": handled[0], "drafts": handled[1], "failed": failed}
