"""The daemon against a real Dovecot on 127.0.0.1: exactly once, crashes, UIDVALIDITY,
restarts, TLS, the seller's flags untouched."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from tests.dovecot import Account, Dovecot
from tests.mails import amazon, web

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp: Path, acct: Account, *, tls: bool = False) -> Path:
    (tmp / "pw").write_text(acct.password + "\n")
    host = "localhost" if tls else acct.host
    security = 'security = "tls"\n' + f'ca_file = "{acct.ca_file}"\n' if tls else 'security = "none"\n'
    port = acct.tls_port if tls else acct.port
    cfg = tmp / "madoguchi.toml"
    cfg.write_text(f'[imap]\nhost = "{host}"\nport = {port}\nusername = "{acct.username}"\n'
                   f'password_file = "pw"\n{security}\n[state]\npath = "state.sqlite3"\n'
                   '[seller]\nshop_name = "まどぐち書店"\nperson_name = "山田"\n'
                   'from_address = "shop@example.com"\n')
    return cfg


def madoguchi(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def drafts(acct: Account) -> list[dict[bytes, object]]:
    with IMAPClient(acct.host, port=acct.port, ssl=False) as c:
        c.login(acct.username, acct.password)
        c.select_folder("Drafts", readonly=True)
        uids = c.search(["ALL"])
        fetched = c.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER]"]) if uids else {}
        return [fetched[u] for u in uids]


def replies(acct: Account) -> list[dict[bytes, object]]:
    return [d for d in drafts(acct) if b"X-Madoguchi-Draft: reply" in d[b"BODY[HEADER]"]]


def inbox_flags(acct: Account) -> list[tuple[bytes, ...]]:
    with IMAPClient(acct.host, port=acct.port, ssl=False) as c:
        c.login(acct.username, acct.password)
        c.select_folder("INBOX", readonly=True)
        return [v[b"FLAGS"] for v in c.fetch(c.search(["ALL"]), ["FLAGS"]).values()]


COMPLAINT = "全巻セットのはずですが、7巻が入っていませんでした。至急送ってください。"


def test_a_new_mail_gives_exactly_one_draft_with_the_right_headers(
        dovecot: Dovecot, account: Account, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, account)
    assert madoguchi("once", "-c", str(cfg)).returncode == 0  # first start: watermark
    dovecot.deliver(account.username, amazon(COMPLAINT, msgid="<one@example.test>"))
    run = madoguchi("once", "-c", str(cfg))
    assert run.returncode == 0, run.stderr
    found = replies(account)
    assert len(found) == 1
    assert len(drafts(account)) == 2  # the reply to the relay, and the note to the seller
    head = found[0][b"BODY[HEADER]"].decode()
    assert "X-Madoguchi-Source: <one@example.test>" in head
    assert "In-Reply-To: <one@example.test>" in head
    assert "To: q8v2kd7mx1ty4pa@marketplace.amazon.co.jp" in head
    assert b"\\Draft" in found[0][b"FLAGS"] and b"\\Flagged" in found[0][b"FLAGS"]
    assert inbox_flags(account) == [(b"\\Recent",)] or all(b"\\Seen" not in f for f in inbox_flags(account))
    assert madoguchi("once", "-c", str(cfg)).returncode == 0  # twice: still one
    assert len(replies(account)) == 1 and len(drafts(account)) == 2


def test_backfill_since_and_old_mail_ignored_by_default(dovecot: Dovecot, account: Account,
                                                         tmp_path: Path) -> None:
    dovecot.deliver(account.username, amazon(COMPLAINT, msgid="<old@example.test>"))
    cfg = write_config(tmp_path, account)
    assert madoguchi("once", "-c", str(cfg)).returncode == 0
    assert drafts(account) == []
    assert madoguchi("once", "-c", str(cfg), "--since", "2000-01-01").returncode == 0
    assert len(replies(account)) == 1


KILL_AFTER_APPEND = """
import os, signal, sys
from daemon import cli
from daemon.store import Store
def record(self, *a, **k):
    os.kill(os.getpid(), signal.SIGKILL)   # the drafts are in Drafts; the store never commits
Store.record = record
sys.exit(cli.main(sys.argv[1:]))
"""


def test_killed_between_append_and_commit_still_one_draft(dovecot: Dovecot, account: Account,
                                                           tmp_path: Path) -> None:
    cfg = write_config(tmp_path, account)
    assert madoguchi("once", "-c", str(cfg)).returncode == 0
    dovecot.deliver(account.username, amazon(COMPLAINT, msgid="<crash@example.test>"))
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_APPEND, "once", "-c", str(cfg)],
                            cwd=ROOT, capture_output=True, timeout=120)
    assert killed.returncode == -9
    assert len(replies(account)) == 1
    assert madoguchi("once", "-c", str(cfg)).returncode == 0
    assert len(replies(account)) == 1 and len(drafts(account)) == 2
    status = madoguchi("status", "-c", str(cfg))
    assert "handled: 2" in status.stdout or "handled: 1" in status.stdout


def test_uidvalidity_change_redrafts_nothing(dovecot: Dovecot, account: Account,
                                             tmp_path: Path) -> None:
    cfg = write_config(tmp_path, account)
    assert madoguchi("once", "-c", str(cfg)).returncode == 0
    for i in range(3):
        dovecot.deliver(account.username, web("mercari", f"電源が入りません {i}", msgid=f"<uv{i}@x>"))
    assert madoguchi("once", "-c", str(cfg)).returncode == 0
    before = len(drafts(account))
    assert before >= 3
    dovecot.reset_uidvalidity(account.username)
    dovecot.deliver(account.username, web("mercari", "届いていません", msgid="<after@x>"))
    run = madoguchi("once", "-c", str(cfg))
    assert run.returncode == 0, run.stderr
    after = drafts(account)
    assert len(after) == before + 1  # only the new mail


def test_running_daemon_survives_a_server_restart(dovecot: Dovecot, account: Account,
                                                  tmp_path: Path) -> None:
    from daemon import app, config

    cfg = write_config(tmp_path, account)
    s = config.load(cfg)
    svc = app.service(s)
    svc.backoff_max = 2.0
    thread = threading.Thread(target=svc.run, kwargs={"idle_seconds": 30}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while svc.store.folder("INBOX") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        dovecot.deliver(account.username, web("mercari", "色が違います", msgid="<r1@x>"))
        _wait_for(lambda: len(drafts(account)) >= 1)
        dovecot.restart()
        dovecot.deliver(account.username, web("mercari", "まだ届きません", msgid="<r2@x>"))
        _wait_for(lambda: any(b"<r2@x>" in d[b"BODY[HEADER]"] for d in drafts(account)), 30)
    finally:
        svc.stop.set()
        thread.join(15)
    assert not thread.is_alive()
    keys = [d[b"BODY[HEADER]"] for d in drafts(account) if b"X-Madoguchi-Draft: reply" in d[b"BODY[HEADER]"]]
    assert len(keys) == 2


def _wait_for(condition, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_tls_is_verified(dovecot: Dovecot, account: Account, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, account, tls=True)
    ok = madoguchi("check-config", "-c", str(cfg))
    assert ok.returncode == 0, ok.stderr
    text = cfg.read_text().replace(f'ca_file = "{account.ca_file}"\n', "")
    cfg.write_text(text)
    refused = madoguchi("check-config", "-c", str(cfg))
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert account.password not in refused.stderr + refused.stdout


def test_wrong_password_is_a_clear_error(dovecot: Dovecot, account: Account, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, account)
    (tmp_path / "pw").write_text("wrong-password\n")
    out = madoguchi("check-config", "-c", str(cfg))
    assert out.returncode == 5 and "refused the login" in out.stderr
    assert "wrong-password" not in out.stderr and "Traceback" not in out.stderr


def test_train_from_imap_folders(dovecot: Dovecot, account: Account, tmp_path: Path) -> None:
    with IMAPClient(account.host, port=account.port, ssl=False) as c:
        c.login(account.username, account.password)
        texts = {"not_received": ["まだ届きません", "荷物が届かない", "発送されていますか、届きません",
                                  "追跡が止まったまま届きません"],
                 "inquiry": ["在庫はありますか", "値下げ可能ですか", "サイズを教えてください", "色違いはありますか"]}
        sep = c.list_folders()[0][1].decode()
        for intent, items in texts.items():
            folder = sep.join(("Madoguchi", "Training", intent))
            c.create_folder(folder)
            for i, t in enumerate(items):
                c.append(folder, web("mercari", t, msgid=f"<{intent}{i}@x>"))
    cfg = write_config(tmp_path, account)
    out = madoguchi("train", "--imap", "-c", str(cfg), "-o", str(tmp_path / "m.npz"), timeout=300)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "m.npz").stat().st_size > 0


def test_demo_from_the_installed_entry_point() -> None:
    exe = Path(sys.executable).with_name("madoguchi")
    if not exe.exists():
        pytest.fail("madoguchi is not installed in this environment (pip install -e .)")
    started = time.monotonic()
    out = subprocess.run([str(exe), "demo"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "NO_PROXY": "*"})
    assert out.returncode == 0, out.stderr
    assert "5 of 5 mails handled" in out.stdout
    assert "late_return" in out.stdout and "【優先1】" in out.stdout
    assert time.monotonic() - started < 30


def test_sighup_reloads_and_sigterm_exits_zero_and_no_secret_anywhere(
        dovecot: Dovecot, account: Account, tmp_path: Path) -> None:
    import signal

    cfg = write_config(tmp_path, account)
    outputs = [madoguchi("-v", "once", "-c", str(cfg)), madoguchi("-v", "check-config", "-c", str(cfg))]
    log = tmp_path / "run.log"
    with log.open("wb") as err:
        p = subprocess.Popen([sys.executable, "-m", "daemon", "-v", "run", "-c", str(cfg)], cwd=ROOT,
                             stdout=err, stderr=subprocess.STDOUT)
        try:
            time.sleep(3)
            p.send_signal(signal.SIGHUP)
            dovecot.deliver(account.username, web("mercari", "色が違います", msgid="<hup@x>"))
            _wait_for(lambda: any(b"<hup@x>" in d[b"BODY[HEADER]"] for d in drafts(account)), 30)
        finally:
            p.send_signal(signal.SIGTERM)
            code = p.wait(30)
    assert code == 0
    text = log.read_text()
    assert "reloaded configuration" in text
    outputs.append(madoguchi("status", "-c", str(cfg)))
    everything = text + "".join(o.stdout + o.stderr for o in outputs)
    assert "LOGIN" in everything  # the debug log of the IMAP commands did cover the login
    assert account.password not in everything
    assert account.password.encode() not in (tmp_path / "state.sqlite3").read_bytes()


def test_drafts_deleted_under_a_running_daemon_is_recreated(dovecot: Dovecot, account: Account,
                                                             tmp_path: Path) -> None:
    from daemon import app, config

    cfg = write_config(tmp_path, account)
    svc = app.service(config.load(cfg))
    svc.backoff_max = 2.0
    thread = threading.Thread(target=svc.run, kwargs={"idle_seconds": 30}, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: svc.store.folder("INBOX") is not None)
        with IMAPClient(account.host, port=account.port, ssl=False) as c:
            c.login(account.username, account.password)
            c.delete_folder("Drafts")
        dovecot.deliver(account.username, web("mercari", "届いていません", msgid="<gone@x>"))
        _wait_for(lambda: any(b"<gone@x>" in d[b"BODY[HEADER]"] for d in _drafts_if_any(account)), 30)
    finally:
        svc.stop.set()
        thread.join(15)
    assert svc.store.failures() == []


def _drafts_if_any(acct: Account) -> list[dict[bytes, object]]:
    """Drafts while the folder is being deleted and created again: a SELECT that Dovecot
    refuses in between ("Mailbox was deleted under us") means "not yet", and the caller polls."""
    try:
        return drafts(acct)
    except IMAPClientError:
        return []


def test_a_silent_network_drop_is_noticed_and_survived(dovecot: Dovecot, account: Account,
                                                       tmp_path: Path) -> None:
    """The connection goes dead without a FIN: the IDLE renewal times out, the daemon
    reconnects and drafts the mail that arrived meanwhile."""
    from dataclasses import replace

    from daemon import app, config
    from tests.blackhole import BlackholeProxy

    proxy = BlackholeProxy(account.port)
    cfg = write_config(tmp_path, replace(account, port=proxy.port))
    text = cfg.read_text().replace("[state]", "timeout_seconds = 3\n[state]")
    cfg.write_text(text)
    svc = app.service(config.load(cfg))
    svc.backoff_max = 2.0
    thread = threading.Thread(target=svc.run, kwargs={"idle_seconds": 5}, daemon=True)
    thread.start()
    try:
        _wait_for(lambda: svc.store.folder("INBOX") is not None)
        time.sleep(1)
        proxy.drop_silently()
        dovecot.deliver(account.username, web("mercari", "まだ届きません", msgid="<silent@x>"))
        _wait_for(lambda: any(b"<silent@x>" in d[b"BODY[HEADER]"] for d in drafts(account)), 40)
    finally:
        svc.stop.set()
        thread.join(20)
        proxy.close()
    assert not thread.is_alive()
