"""Issue 7's fault runs in a short form (the full sizes: benchmarks/faults.py)."""

from __future__ import annotations

from pathlib import Path

from benchmarks import faults
from tests.dovecot import Dovecot


def test_sigkills_at_random_moments_lose_and_double_nothing(dovecot: Dovecot, tmp_path: Path) -> None:
    r = faults.kills(dovecot, tmp_path, n_mails=60, n_kills=6)
    assert (r["duplicates"], r["missing"]) == (0, 0), r


def test_dovecot_restarts_under_a_running_daemon(dovecot: Dovecot, tmp_path: Path) -> None:
    r = faults.restarts(dovecot, tmp_path, n_restarts=3, per_round=3, backoff=3)
    assert (r["duplicates"], r["missing"], r["exit_code"]) == (0, 0, 0), r
    assert r["back_max_s"] < 3 + 10  # the backoff cap plus the ~0.5 s IDLE delay and start-up


def test_a_burst_is_drafted_once_priority_one_first(dovecot: Dovecot, tmp_path: Path) -> None:
    r = faults.burst(dovecot, tmp_path, n_mails=240, batch=50)  # 240 > 50: the ordering pass runs
    assert (r["duplicates"], r["missing"]) == (0, 0), r
    assert r["priority1"] > 0 and r["priority1_after_others"] == 0, r
