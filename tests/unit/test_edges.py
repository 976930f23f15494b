"""Config, store, logs, the service over FakeMailbox, the import rule, the CLI contract."""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from daemon import config
from daemon.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_key_and_wrong_type_name_the_key_and_the_file(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[imap]\nhots = "x"\n')
    with pytest.raises(ConfigError, match=r"c\.toml: \[imap\] hots: unknown setting"):
        config.load(f)
    f.write_text('[imap]\nport = "abc"\n')
    with pytest.raises(ConfigError, match=r"c\.toml: \[imap\] port: expected int, got 'abc'"):
        config.load(f)
    f.write_text('[imap]\npassword = "hunter2"\n')
    with pytest.raises(ConfigError) as info:
        config.load(f)
    assert "hunter2" not in str(info.value)


def test_tls_can_be_off_only_for_localhost(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="security"):
        config.from_mapping({"imap": {"host": "imap.example.com", "security": "none"}}, tmp_path)
    config.from_mapping({"imap": {"host": "127.0.0.1", "security": "none"}}, tmp_path)


def test_passwords_by_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    s = config.from_mapping({"imap": {"password_file": "pw"}}, tmp_path / "c.toml")
    assert config.password(s) == "s3cret"
    monkeypatch.setenv("MADOGUCHI_PW", "envpw")
    assert config.password(config.from_mapping({"imap": {"password_env": "MADOGUCHI_PW"}}, None)) == "envpw"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    (tmp_path / "password").write_text("credpw")
    assert config.password(config.defaults()) == "credpw"


def test_example_config_is_generated_from_the_declarations() -> None:
    assert (ROOT / "config" / "example.toml").read_text(encoding="utf-8") == config.example_toml()
    config.load(ROOT / "config" / "example.toml")


PURE = ["daemon/parse.py", "daemon/decode.py", "daemon/decide.py", "daemon/render.py",
        "daemon/pipeline.py", "daemon/domain.py", "daemon/dates.py", "classifier/features.py",
        "classifier/evaluate.py", "classifier/text.py", "classifier/linear.py",
        *[str(p.relative_to(ROOT)) for p in (ROOT / "daemon/marketplaces").glob("*.py")]]
FORBIDDEN = {"imapclient", "socket", "ssl", "sqlite3", "subprocess", "daemon.mailbox", "daemon.store"}


@pytest.mark.parametrize("module", PURE)
def test_the_middle_imports_no_io(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(n.split(".")[0] in FORBIDDEN or n in FORBIDDEN for n in names), (module, names)
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else (f.attr if isinstance(f, ast.Attribute) else "")
            assert name not in ("open", "now", "time", "today"), (module, name)


def test_daemon_package_is_ours_not_python_daemon() -> None:
    import daemon

    assert Path(daemon.__file__).resolve().parent == ROOT / "daemon"


def test_redactor_removes_passwords_and_tokens() -> None:
    from daemon.logs import Redactor

    r = Redactor(("hunter2",))
    text = r.redact('LOGIN shop "hunter2" AUTHENTICATE XOAUTH2 dXNlcj1h password=abc token: xyz hunter2')
    assert "hunter2" not in text and "dXNlcj1h" not in text and "abc" not in text and "xyz" not in text
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "pw is %s", ("hunter2",), None)
    r.filter(record)
    assert "hunter2" not in record.getMessage()


def test_service_files_once_in_priority_order_and_records_failures(tmp_path: Path) -> None:
    from classifier.predict import ModelClassifier
    from daemon import app
    from daemon.service import Service
    from daemon.store import Store
    from daemon.testing import FakeMailbox
    from tests.mails import amazon, web

    box, store = FakeMailbox(), Store(tmp_path / "s.sqlite3")
    s = config.defaults()
    model = ModelClassifier.from_file()
    svc = Service(connect=lambda: box, store=store, context=lambda: app.context(s, store, model))
    svc.run_once()  # first start: nothing yet
    box.deliver(web("mercari", "いつ発送されますか?", msgid="<q@x>"))
    box.deliver(b"\x00\x01 not a mail")
    box.deliver(amazon("7巻が入っていませんでした。至急送ってください。", msgid="<c@x>"))
    filed = svc.run_once()
    assert filed.outcomes[0].message_id == "<c@x>"  # priority 1 first
    assert len(filed.failures) == 1 and "not an e-mail" in filed.failures[0][1]
    drafts = len(box.drafts)
    svc.run_once(retry_failures=False)
    assert len(box.drafts) == drafts  # nothing twice
    assert store.counts()["failed"] == 1 and store.failures()[0].reason


def test_a_burst_records_notices_first_without_the_model_and_files_priority_one_first(tmp_path: Path) -> None:
    from classifier.predict import ModelClassifier
    from daemon import app
    from daemon.service import Service
    from daemon.store import Store
    from daemon.testing import FakeMailbox
    from tests.mails import amazon, mail, web

    class Counting(ModelClassifier):
        asked = 0

        def predict(self, notifications):  # type: ignore[no-untyped-def]
            Counting.asked += len(notifications)
            return super().predict(notifications)

    box, store = FakeMailbox(), Store(tmp_path / "s.sqlite3")
    real = ModelClassifier.from_file()
    model = Counting(real.model, real.metadata)
    svc = Service(connect=lambda: box, store=store, batch=4,
                  context=lambda: app.context(config.defaults(), store, model))
    svc.run_once()
    filed_order: list[str] = []
    svc.on_filed = lambda uid, o: filed_order.append(o.notification.message_id)
    news = [mail([("From", "news@shop-news.example"), ("List-Unsubscribe", "<mailto:u@shop-news.example>"),
                  ("Subject", f"今週のセール {i}"), ("Message-ID", f"<n{i}@x>")], "返品・返金はこちら") for i in range(6)]
    for raw in [web("mercari", "いつ発送されますか?", msgid="<q@x>"), *news[:3],
                amazon("7巻が入っていませんでした。", msgid="<c@x>"), *news[3:]]:
        box.deliver(raw)
    filed = svc.run_once()
    assert filed.handled == 8 and len(box.drafts) == 3  # a reply (inquiry); a reply and a note (complaint)
    assert Counting.asked == 4  # each of the two buyers' messages twice (ranked, then drafted); no newsletter
    assert filed_order[:6] == [f"<n{i}@x>" for i in range(6)]  # recorded in the first pass
    assert filed_order[6:] == ["<c@x>", "<q@x>"]  # then priority 1 before priority 3
    assert svc.run_once().handled == 0


def test_after_a_uidvalidity_change_mail_of_the_first_starts_second_is_still_handled(tmp_path: Path) -> None:
    """INTERNALDATE has whole seconds: a mail that came in the same second as the first start
    (its date truncated to before it) was left unhandled once UIDVALIDITY changed."""
    from datetime import datetime

    from classifier.predict import ModelClassifier
    from daemon import app
    from daemon.service import Service
    from daemon.store import Store
    from daemon.testing import FakeMailbox
    from tests.mails import web

    started = datetime(2026, 11, 23, 9, 0, 0, 700_000).astimezone()

    class Box(FakeMailbox):
        def internal_dates(self, uids: list[int]) -> dict[int, datetime]:
            return {u: started.replace(microsecond=0, tzinfo=None) for u in uids if u in self.inbox}

    box, store = Box(), Store(tmp_path / "s.sqlite3")
    model = ModelClassifier.from_file()
    svc = Service(connect=lambda: box, store=store, clock=lambda: started,
                  context=lambda: app.context(config.defaults(), store, model))
    svc.run_once()  # the first start, at 09:00:00.7
    box.uv = 2  # UIDVALIDITY changes before the next pass; the mail came at 09:00:00
    box.deliver(web("mercari", "届いていません", msgid="<same-second@x>"))
    filed = svc.run_once()
    assert [h.message_id for h in filed.outcomes] == ["<same-second@x>"]
    assert len(box.drafts) == 1


COMMANDS = ["demo", "run", "once", "classify", "draft", "train", "evaluate", "check-config",
            "status", "retry", "auth"]


def test_every_command_has_help_and_is_in_the_readme() -> None:
    from daemon.cli import COMMANDS as registered

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert sorted(registered) == sorted(COMMANDS)
    for name, (help_text, _) in registered.items():
        assert help_text and f"madoguchi {name}" in readme, name


def test_classify_json_contract(tmp_path: Path) -> None:
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"")
    samples = sorted((ROOT / "daemon" / "samples").glob("*.eml"))
    out = subprocess.run([sys.executable, "-m", "daemon", "classify", "--json", *map(str, samples),
                          str(bad), str(tmp_path / "missing.eml")], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert len(lines) == len(samples) + 2 and out.returncode == 1
    assert "Traceback" not in out.stderr
    keys = {"file", "marketplace", "kind", "intent", "complaint", "late_return", "priority", "alert",
            "order_id", "confidence", "reasons"}
    for row in lines[:-2]:
        assert keys <= set(row)
    assert lines[-2]["error"] and lines[-1]["error"]
    by_name = {Path(r["file"]).name: r for r in lines[:-2]}
    assert by_name["2-amazon-late-return.eml"]["intent"] == "late_return"
    assert by_name["5-amazon-sold-notice.eml"]["intent"] == "other"
    assert by_name["1-amazon-missing-volume.eml"]["complaint"] is True
