"""parse() on every core during a big burst: a backfill, or the mail of days offline.

Parsing is most of a burst's time (the standard library's MIME parser, about 1 ms a mail) and
a pure function of the mail's bytes, so worker processes can do it while the daemon keeps the
model, the store and both IMAP connections to itself. The pool lives for one burst only: the
daemon between bursts is one process, as small as before. Where worker processes cannot be
started (a sandbox without /dev/shm, say), the burst is parsed in-process, as always.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from daemon import heap
from daemon.domain import Notification
from daemon.errors import MadoguchiError
from daemon.parse import ParseMany
from daemon.parse import parse_many as parse_here

log = logging.getLogger("madoguchi")

CHUNK = 16  # mails sent to a worker at a time: pickling per call costs about one small mail


def _start_worker() -> None:
    # Ctrl-C and systemd's SIGTERM reach the whole process group: the daemon stops after its
    # batch and then ends the pool, so a worker waits for that rather than dying mid-batch
    # (with a traceback on the terminal).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    heap.settle()  # a worker reads the burst's largest mails too: the daemon's malloc settings


def _parse_chunk(raws: list[bytes]) -> list[Notification | MadoguchiError]:
    return parse_here(raws)


def cores() -> int:
    """The cores this process may run on (a cgroup or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextmanager
def parsers(workers: int | None = None) -> Iterator[ParseMany]:
    """A parse-many function backed by `workers` processes (default: one per core; with one
    core, or if the processes cannot start, parsing stays in this process)."""
    workers = workers or cores()
    if workers < 2:
        yield parse_here
        return
    try:
        # forkserver: the workers are forked from a clean helper, not from this process and
        # its threads (metrics, IMAP), and import only what parsing needs.
        context = multiprocessing.get_context("forkserver")
        # The helper would import the daemon's __main__ (the CLI: numpy, the model's code,
        # Jinja) and every worker would carry it; they need only the parser.
        context.set_forkserver_preload(["daemon.parse", "daemon.heap"])
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker)
    except (OSError, ValueError, ImportError, NotImplementedError) as exc:  # e.g. no /dev/shm for locks
        log.warning("could not start %d parsing processes (%s): parsing in this process", workers, exc)
        yield parse_here
        return
    broken = False

    def parse_many(raws: Sequence[bytes]) -> list[Notification | MadoguchiError]:
        nonlocal broken
        if not broken:
            try:
                chunks = [list(raws[i : i + CHUNK]) for i in range(0, len(raws), CHUNK)]
                return [n for done in pool.map(_parse_chunk, chunks) for n in done]
            except Exception as exc:  # a worker killed (OOM?) or unable to start …
                # … or a bug in parse(): parsed here, it raises again where it always did
                broken = True
                log.warning("the parsing processes failed (%s: %s): parsing the rest in this process",
                            type(exc).__name__, exc)
        return parse_here(raws)

    try:
        yield parse_many
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
