"""sd_notify, the systemd units, a corrupt model, metrics: the service's edges without a server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import systemd

ROOT = Path(__file__).resolve().parents[2]


def test_sd_notify_is_a_no_op_outside_systemd() -> None:
    assert systemd.notify("READY=1") is False


def test_sd_notify_sends_to_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert systemd.notify("READY=1", "STATUS=watching")
        assert sock.recv(100) == b"READY=1\nSTATUS=watching"
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert systemd.notify("WATCHDOG=1") is False  # never raises


@pytest.mark.parametrize("unit", ["madoguchi.service", "madoguchi@.service"])
def test_units_declare_notify_watchdog_credentials_and_hardening(unit: str) -> None:
    text = (ROOT / "config" / unit).read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=", "LoadCredential=password:",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "RestrictAddressFamilies=",
                 "SystemCallFilter=@system-service"):
        assert line in text, line
    if unit.startswith("madoguchi@"):
        assert "%i" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_exposure_is_low() -> None:
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(ROOT / "config/madoguchi.service")],
                         capture_output=True, text=True, timeout=60)
    level = float(out.stdout.split("Overall exposure level for madoguchi.service:")[1].split()[0])
    assert level <= 2.0, out.stdout[-300:]


def test_a_corrupt_model_is_a_clear_error_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[model]\npath = "{bad}"\n')
    out = subprocess.run([sys.executable, "-m", "daemon", "classify", "-c", str(cfg),
                          str(ROOT / "daemon/samples/3-mercari-question.eml")], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 3 and "corrupt" in out.stderr and "Traceback" not in out.stderr


def test_metrics_count_what_the_service_does(tmp_path: Path) -> None:
    from prometheus_client import generate_latest

    from classifier.predict import ModelClassifier
    from daemon import app, config
    from daemon.metrics import Metrics
    from daemon.service import Service
    from daemon.store import Store
    from daemon.testing import FakeMailbox
    from tests.mails import amazon

    box, store, metrics = FakeMailbox(), Store(tmp_path / "s.sqlite3"), Metrics.create()
    model = ModelClassifier.from_file()
    svc = Service(connect=lambda: box, store=store, metrics=metrics,
                  context=lambda: app.context(config.defaults(), store, model))
    svc.run_once()
    box.deliver(amazon("7巻が入っていませんでした", msgid="<m@x>"))
    svc.run_once()
    text = generate_latest(metrics.registry).decode()
    assert 'madoguchi_drafts_filed_total{priority="1"} 2.0' in text  # the reply and its note
    assert "madoguchi_arrival_to_draft_seconds_count 1.0" in text


def test_sigterm_finishes_and_exits_zero(tmp_path: Path) -> None:
    """SIGTERM while watching: the loop stops, STOPPING is sent, exit status 0."""
    import threading

    from classifier.predict import ModelClassifier
    from daemon import app, config
    from daemon.service import Service
    from daemon.store import Store
    from daemon.testing import FakeMailbox

    store = Store(tmp_path / "s.sqlite3")
    model = ModelClassifier.from_file()
    svc = Service(connect=FakeMailbox, store=store, context=lambda: app.context(config.defaults(), store, model))
    t = threading.Thread(target=svc.run, kwargs={"idle_seconds": 30})
    t.start()
    svc.reload.set()  # what SIGHUP does: the context is rebuilt on the next pass
    svc.stop.set()  # what SIGTERM does
    t.join(10)
    assert not t.is_alive() and svc.mailbox is None


def test_a_long_pass_tells_the_watchdog_it_is_alive_after_each_batch(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd kills a service whose watchdog goes unfed for WatchdogSec (120 s in our unit),
    and a backfill of tens of thousands of mails is one pass longer than that."""
    from classifier.predict import ModelClassifier
    from daemon import app, config
    from daemon.service import Service
    from daemon.store import Store
    from daemon.testing import FakeMailbox
    from tests.mails import mail

    box, store = FakeMailbox(), Store(tmp_path / "s.sqlite3")
    svc = Service(connect=lambda: box, store=store, batch=3,
                  context=lambda: app.context(config.defaults(), store, ModelClassifier.from_file()))
    svc.run_once()
    for i in range(7):
        box.deliver(mail([("From", f"friend{i}@example.org"), ("Subject", f"近況 {i}"),
                          ("Message-ID", f"<f{i}@x>")], "お元気ですか。"))
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert svc.run_once().handled == 7
        sent = []
        with contextlib.suppress(BlockingIOError):
            while True:
                sent.append(sock.recv(500).decode())
    assert len([m for m in sent if "WATCHDOG=1" in m]) == 3  # batches of 3, 3 and 1
    assert "STATUS=working through new mail: 3 handled, 0 failed" in sent[1]
