"""The loop: find new mail, run the pure pipeline, file drafts in priority order, record.

No logic of its own beyond ordering calls. One bad mail never stops the others: it is recorded
as a failure with its reason and retried at the next start or by `madoguchi retry`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime

from daemon import heap, systemd, workers
from daemon.catalogue import product_key
from daemon.domain import Draft, Outcome
from daemon.errors import ConnectionLost, LoginRefused, MadoguchiError, MailboxError
from daemon.mailbox import Mailbox
from daemon.metrics import Metrics
from daemon.parse import MAX_RAW, ParseMany, parse_many
from daemon.pipeline import Context, handle, handle_batch
from daemon.render import complaint_of
from daemon.store import Folder, Store

log = logging.getLogger("madoguchi")
BATCH = 250  # mails read and classified together; a bigger burst is ordered by a first pass
BATCH_BYTES = 64 * 1024 * 1024  # and at most this much of them: mails of photos stay far under MemoryMax
PARALLEL_FROM = 5_000  # mails in one pass from which they are parsed on every core (daemon/workers.py)


@dataclass(frozen=True)
class Handled:
    """One handled mail, as a pass reports it: small, so a 100,000-mail backfill does not
    hold every draft in memory."""

    uid: int
    message_id: str
    marketplace: str
    intent: str
    priority: int
    drafts: int


@dataclass
class Filed:
    """What one pass did: counts, and the most recent mails and failures."""

    handled: int = 0
    outcomes: deque[Handled] = field(default_factory=lambda: deque(maxlen=1000))
    failures: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=1000))
    failed: int = 0


@dataclass
class Service:
    connect: Callable[[], Mailbox]
    store: Store
    context: Callable[[], Context]  # rebuilt on SIGHUP: config, templates and model reloaded
    folder: str = "INBOX"
    since: date | None = None
    backoff_max: float = 300.0
    batch: int = BATCH
    batch_bytes: int = BATCH_BYTES
    parallel_from: int = PARALLEL_FROM
    clock: Callable[[], datetime] = lambda: datetime.now().astimezone()
    stop: threading.Event = field(default_factory=threading.Event)
    reload: threading.Event = field(default_factory=threading.Event)
    on_filed: Callable[[int, Outcome], None] = lambda uid, outcome: None
    metrics: Metrics | None = None
    mailbox: Mailbox | None = None
    _ctx: Context | None = None
    _woke: float | None = None

    # --- one pass -------------------------------------------------------------------------
    def run_once(self, retry_failures: bool = True) -> Filed:
        box = self._box()
        filed = Filed()
        uv = box.uidvalidity()
        folder = self._folder(box, uv)
        new = box.uids_from(folder.watermark)
        if self.since and self.store.meta(f"backfilled:{self.folder}:{uv}") is None:
            new = sorted(set(new) | set(box.uids_since(self.since)))
        done = self.store.handled_uids(self.folder, uv, new)
        failed = set(self.store.failed_uids(self.folder, uv))
        todo = [u for u in new if u not in done and (retry_failures or u not in failed)]
        many = len(todo) >= self.parallel_from
        with workers.parsers() if many else nullcontext(parse_many) as parse_all:
            if len(todo) > self.batch:
                # A burst bigger than one batch: a first pass records what needs no draft (most
                # of a backfill; order notices among it, so that returns are then judged with
                # their order dates) and ranks the rest, so that every priority-1 mail is filed
                # before the others. Their drafts are rendered again rather than held: a
                # backfill can be huge.
                ranked: dict[int, int] = {}
                with closing(self._batches(box, todo)) as batches:
                    for fetched in batches:
                        self._batch(box, uv, fetched, filed, parse_all, defer=ranked)
                todo = sorted(ranked, key=lambda u: (ranked[u], u))
            with closing(self._batches(box, todo)) as batches:
                for fetched in batches:
                    self._batch(box, uv, fetched, filed, parse_all)
        if self.since and not self.stop.is_set():
            self.store.set_meta(f"backfilled:{self.folder}:{uv}", self.clock().isoformat())
        self.store.set_meta("last_contact", self.clock().isoformat(timespec="seconds"))
        return filed

    def _batches(self, box: Mailbox, uids: list[int]) -> Iterator[list[tuple[int, bytes]]]:
        """The mails of `uids`, read a batch at a time, until `stop` is set. With more than one
        batch, the next is read (in a thread, on the watching connection, which nothing else
        uses meanwhile) while this one is handled: the server's work and the waits on the
        socket overlap the parsing. Close it (contextlib.closing) so that, when handling
        fails, the read under way has ended before the connection is dropped."""
        groups = self._groups(box, uids)
        if len(uids) <= self.batch:
            for group in groups:
                yield list(box.fetch(group))
            return

        def read() -> list[tuple[int, bytes]] | None:
            group = next(groups, None)
            return None if group is None else list(box.fetch(group))

        with ThreadPoolExecutor(1, thread_name_prefix="madoguchi-read") as reader:
            ahead = reader.submit(read)
            while (fetched := ahead.result()) is not None:
                ahead = reader.submit(read)
                yield fetched

    def _groups(self, box: Mailbox, uids: list[int]) -> Iterator[list[int]]:
        """`uids` in batches of at most `batch` mails and `batch_bytes` bytes (a mail bigger
        than that goes alone), until `stop` is set."""
        for i in range(0, len(uids), self.batch):
            chunk = uids[i : i + self.batch]
            sizes = box.sizes(chunk) if len(chunk) > 1 else {}
            groups: list[list[int]] = [[]]
            total = 0
            for uid in chunk:
                size = min(sizes.get(uid, 0), MAX_RAW)
                if groups[-1] and total + size > self.batch_bytes:
                    groups.append([])
                    total = 0
                groups[-1].append(uid)
                total += size
            for group in groups:
                if self.stop.is_set():
                    return
                yield group

    def _batch(self, box: Mailbox, uv: int, fetched: list[tuple[int, bytes]], filed: Filed,
               parse_all: ParseMany, defer: dict[int, int] | None = None) -> None:
        """Handle the (uid, raw mail) of `fetched`; with `defer`, file no drafts but note each
        drafted mail's priority there."""
        # A burst's pass can outlast systemd's watchdog (120 s in the unit; 50,000 mails take
        # about a minute on 2 cores, more on a slower machine): each batch shows it is alive.
        systemd.notify("WATCHDOG=1", f"STATUS=working through new mail: {filed.handled} handled, "
                       f"{filed.failed} failed in this pass so far")
        ctx = self._context()
        ready: list[tuple[int, Outcome, float]] = []
        started = self._woke or time.monotonic()
        try:
            results: list[Outcome | MadoguchiError | None] = list(
                handle_batch([raw for _, raw in fetched], ctx, self.clock(), drafts=defer is None,
                             parse_all=parse_all))
        except Exception:  # a bug somewhere in the batch: find the mail, one at a time
            log.exception("batch failed; handling its mails one by one")
            results = [None] * len(fetched)
        for (uid, raw), result in zip(fetched, results, strict=True):
            try:
                outcome = result if result is not None else handle(raw, ctx, self.clock())
                if isinstance(outcome, MadoguchiError):
                    raise outcome
                ready.append((uid, outcome, started))
            except MadoguchiError as exc:
                self._failed(uid, raw, str(exc), "", filed)
            except Exception as exc:  # a bug must not stop the other mails; kept with its trace
                self._failed(uid, raw, f"unexpected error: {type(exc).__name__}: {exc}",
                             traceback.format_exc(), filed)
        if defer is not None:
            defer.update((uid, o.decision.priority) for uid, o, _ in ready if o.decision.wants_reply)
            ready = [r for r in ready if not r[1].decision.wants_reply]
        # A mail without drafts has nothing to file twice: one commit records them all (a
        # commit per mail costs a disk flush each, the bulk of a backfill on a slow disk).
        with self.store.transaction():
            for uid, outcome, started in ready:
                if not outcome.drafts:
                    self._done(uv, uid, outcome, started, filed)
        drafted = sorted((r for r in ready if r[1].drafts), key=lambda x: x[1].decision.priority)
        if not drafted or self.stop.is_set():
            return
        try:
            self._file_together(box, [d for _, o, _ in drafted for d in o.drafts])
        except ConnectionLost:
            raise
        except Exception as exc:  # e.g. one draft over quota: find which, one mail at a time
            log.warning("filing %d drafts at once failed (%s): filing them one mail at a time",
                        sum(len(o.drafts) for _, o, _ in drafted), exc)
            self._file_one_by_one(box, uv, drafted, filed)
            return
        with self.store.transaction():
            for uid, outcome, started in drafted:
                self._done(uv, uid, outcome, started, filed)

    def _file_together(self, box: Mailbox, drafts: list[Draft]) -> None:
        """A batch's drafts, in priority order, with one look into Drafts and one APPEND
        (MULTIAPPEND where the server has it: all or none). A draft already there (filed before
        a crash, or twice in the batch) is not filed again; an alert replaces its older self,
        and of one product's alerts in a batch the last is kept."""
        existing = box.drafts_by_key(sorted({d.key for d in drafts}))
        last_alert = {d.key: i for i, d in enumerate(drafts) if d.role == "alert"}
        seen: set[str] = set()
        new: list[Draft] = []
        for i, d in enumerate(drafts):
            if d.role == "alert":
                if last_alert[d.key] == i:
                    new.append(d)
            elif d.key not in existing and d.key not in seen:
                seen.add(d.key)
                new.append(d)
        box.append_drafts([(d.message, d.flagged) for d in new])
        box.delete_drafts(sorted(u for d in new if d.role == "alert" for u in existing.get(d.key, ())))

    def _file_one_by_one(self, box: Mailbox, uv: int, drafted: list[tuple[int, Outcome, float]],
                         filed: Filed) -> None:
        for uid, outcome, started in drafted:
            if self.stop.is_set():
                return  # the rest stays unrecorded and is handled at the next start
            try:
                for draft in outcome.drafts:
                    self._file(box, draft)
            except ConnectionLost:
                raise
            except MailboxError as exc:  # APPEND refused (quota, size …): this mail only
                self._failed(uid, b"", str(exc), "", filed)
                continue
            except Exception as exc:  # a bug while filing must not stop the others; kept with its trace
                self._failed(uid, b"", f"unexpected error while filing: {type(exc).__name__}: {exc}",
                             traceback.format_exc(), filed)
                continue
            self._done(uv, uid, outcome, started, filed)

    def _done(self, uv: int, uid: int, outcome: Outcome, started: float, filed: Filed) -> None:
        self._record(uv, uid, outcome)
        n, d = outcome.notification, outcome.decision
        if self.metrics:
            self.metrics.handled.labels(d.intent).inc()
            for _ in outcome.drafts:
                self.metrics.drafts.labels(str(d.priority)).inc()
            self.metrics.latency.observe(time.monotonic() - started)
        filed.handled += 1
        filed.outcomes.append(Handled(uid, n.message_id, n.marketplace, d.intent, d.priority, len(outcome.drafts)))
        self.on_filed(uid, outcome)
        log.info("uid=%s message-id=%s marketplace=%s intent=%s priority=%s drafts=%d "
                 "duration=%.3fs", uid, n.message_id, n.marketplace, d.intent, d.priority,
                 len(outcome.drafts), time.monotonic() - started)

    def _file(self, box: Mailbox, draft: Draft) -> None:
        existing = box.find_drafts(draft.key)
        if draft.role != "alert":
            if not existing:
                box.append_draft(draft.message, flagged=draft.flagged)
            return
        # An alert is replaced by its update: append first so there is never none.
        box.append_draft(draft.message, flagged=True)
        box.delete_drafts(existing)

    def _record(self, uv: int, uid: int, outcome: Outcome) -> None:
        n, d = outcome.notification, outcome.decision
        order = None
        if n.kind in ("order", "sold") and n.order_id and (n.order_date or n.date):
            order = (n.order_id, n.order_date or n.date.date())  # type: ignore[union-attr]
        complaint = None
        if d.alert:
            complaint = (product_key(n.item_id, n.item_name, n.order_id), complaint_of(d, n))
        self.store.record(self.folder, uv, uid, n.message_id, marketplace=n.marketplace,
                          intent=d.intent, priority=d.priority, drafts=len(outcome.drafts),
                          order=order, complaint=complaint)

    def _failed(self, uid: int, raw: bytes, reason: str, detail: str, filed: Filed) -> None:
        from daemon.parse import message_id_of

        head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        self.store.record_failure(self.folder, self.mailbox_uv, uid, message_id_of(head) or None,
                                  reason, detail)
        if self.metrics:
            self.metrics.failures.inc()
        filed.failures.append((uid, reason))
        filed.failed += 1
        log.error("uid=%s could not be handled: %s", uid, reason)

    @property
    def mailbox_uv(self) -> int:
        return self._box().uidvalidity()

    def _folder(self, box: Mailbox, uv: int) -> Folder:
        folder = self.store.folder(self.folder)
        now = self.clock()
        if folder is None:
            folder = Folder(self.folder, uv, box.uidnext(), now.isoformat())
            self.store.set_folder(folder)
            log.info("first start on %s: mail arriving from now on is handled%s", self.folder,
                     f" (and since {self.since})" if self.since else "")
        elif folder.uidvalidity != uv:
            folder = self._uidvalidity_changed(box, folder, uv)
        return folder

    def _uidvalidity_changed(self, box: Mailbox, old: Folder, uv: int) -> Folder:
        """Every UID changed meaning. Mail already handled is recognised by its Message-ID and
        recorded under the new UIDs without new drafts; mail that arrived since the first start
        and was never handled is handled now."""
        log.warning("UIDVALIDITY of %s changed (%s → %s): matching mail by Message-ID",
                    self.folder, old.uidvalidity, uv)
        started = datetime.fromisoformat(old.started)
        candidates = box.uids_since(started.date())
        dates = box.internal_dates(candidates)
        # imapclient gives naive local times, and INTERNALDATE has whole seconds: a mail of the
        # same second as the first start counts as after it (one already handled is known by
        # its Message-ID below), rather than being missed.
        since = started.astimezone().replace(tzinfo=None, microsecond=0)
        candidates = [u for u in candidates
                      if u in dates and dates[u].astimezone().replace(tzinfo=None) >= since]
        ids = box.message_ids(candidates)
        unhandled = [u for u in candidates if not (ids.get(u) and self.store.message_handled(ids[u]))]
        for u in candidates:
            if u not in unhandled:
                self.store.record(self.folder, uv, u, ids[u], intent="(seen before UIDVALIDITY change)")
        watermark = min(unhandled) if unhandled else box.uidnext()
        folder = Folder(self.folder, uv, watermark, old.started)
        self.store.set_folder(folder)
        return folder

    # --- the daemon -------------------------------------------------------------------------
    def run(self, idle_seconds: float = 540) -> None:
        """Watch and draft until `stop` is set. Connection trouble → reconnect with capped
        exponential backoff and jitter; a refused login waits the cap before trying again."""
        attempt = 0
        systemd.notify("READY=1", "STATUS=starting")
        first = True
        while not self.stop.is_set():
            try:
                if self.reload.is_set():
                    self.reload.clear()
                    self._ctx = None
                    log.info("reloaded configuration, templates and model")
                filed = self.run_once(retry_failures=first)
                first = False
                if filed.handled or filed.failed:
                    heap.give_back()
                attempt = 0
                counts = self.store.counts()
                systemd.notify("WATCHDOG=1", f"STATUS=watching; {counts['handled']} handled, "
                               f"{counts['failed']} failed" + (f"; {filed.handled} new" if filed.handled else ""))
                # Mail that arrived during a busy pass is seen by the next pass, not by IDLE:
                # wait only once a pass finds nothing new.
                if not self.stop.is_set() and not filed.handled and not filed.failed:
                    self._woke = None
                    self._box().wait(idle_seconds, self.stop)
                    self._woke = time.monotonic()  # the server's notice of new mail
            except (ConnectionLost, LoginRefused) as exc:
                self._drop()
                attempt += 1
                first = True  # what failed while the server went away is tried again
                if self.metrics:
                    self.metrics.reconnects.inc()
                delay = self.backoff_max if isinstance(exc, LoginRefused) else \
                    min(self.backoff_max, 2 ** min(attempt, 16) * 0.5) * random.uniform(0.5, 1.0)
                log.warning("%s; trying again in %.1f s", exc, delay)
                systemd.notify("WATCHDOG=1", f"STATUS=reconnecting in {delay:.0f} s: {exc}")
                self._sleep(delay)
        systemd.notify("STOPPING=1")
        self._drop(logout=True)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        interval = systemd.watchdog_interval() or 5.0
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.stop.wait(min(interval, deadline - time.monotonic()))
            systemd.notify("WATCHDOG=1")

    def _box(self) -> Mailbox:
        if self.mailbox is None:
            self.mailbox = self.connect()
        return self.mailbox

    def _context(self) -> Context:
        if self._ctx is None:
            self._ctx = self.context()
        return self._ctx

    def _drop(self, logout: bool = False) -> None:
        box, self.mailbox = self.mailbox, None
        if box is not None:
            box.close()
