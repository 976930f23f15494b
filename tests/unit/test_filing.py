"""How a batch's drafts reach Drafts: one look into Drafts and one APPEND per batch, nothing
filed twice, one alert per product, and one mail at a time when the server refuses the lot."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from classifier.predict import ModelClassifier
from daemon import app, config
from daemon.service import Service
from daemon.store import Store
from daemon.testing import FakeMailbox
from tests.mails import amazon, web


class Counting(FakeMailbox):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def find_drafts(self, key: str) -> list[int]:
        self.calls.append("find")
        return super().find_drafts(key)

    def drafts_by_key(self, keys: list[str]) -> dict[str, list[int]]:
        self.calls.append("by_key")
        return super().drafts_by_key(keys)

    def append_drafts(self, drafts: list[tuple[EmailMessage, bool]]) -> None:
        self.calls.append(f"append {len(drafts)}")
        super().append_drafts(drafts)

    def kinds(self) -> list[str]:
        return [str(message_from_bytes(raw)["X-Madoguchi-Draft"]) for raw, _ in self.drafts.values()]


@pytest.fixture(scope="module")
def model() -> ModelClassifier:
    return ModelClassifier.from_file()


def service(box: FakeMailbox, tmp_path: Path, model: ModelClassifier) -> Service:
    store = Store(tmp_path / "s.sqlite3")
    svc = Service(connect=lambda: box, store=store, context=lambda: app.context(config.defaults(), store, model))
    svc.run_once()  # the first start: mail from now on
    return svc


def test_a_batch_is_filed_with_one_look_into_drafts_and_one_append(tmp_path: Path, model: ModelClassifier) -> None:
    box = Counting()
    svc = service(box, tmp_path, model)
    box.deliver(web("mercari", "いつ発送されますか?", msgid="<q@x>"))
    box.deliver(amazon("7巻が入っていませんでした。", msgid="<c@x>"))
    box.deliver(amazon("3巻が入っていませんでした。", msgid="<d@x>", order="249-1111111-2222222"))
    filed = svc.run_once()
    assert filed.handled == 3
    assert box.calls == ["by_key", "append 5"]  # two Amazon replies and notes, one Mercari reply
    priorities = [message_from_bytes(raw)["X-Priority"] for raw, _ in box.drafts.values()]
    assert priorities == sorted(priorities)  # priority 1 first, in the order the server files them


def test_drafts_already_in_drafts_are_not_filed_again(tmp_path: Path, model: ModelClassifier) -> None:
    """As after a crash between APPEND and the store's commit: the mail is handled again."""
    box = Counting()
    svc = service(box, tmp_path, model)
    box.deliver(amazon("7巻が入っていませんでした。", msgid="<c@x>"))
    svc.run_once()
    assert sorted(box.kinds()) == ["note", "reply"]
    svc.store.db.execute("DELETE FROM handled")  # the commit that a crash would have lost
    assert svc.run_once().handled == 1
    assert sorted(box.kinds()) == ["note", "reply"]


def test_two_complaints_about_one_product_in_one_batch_leave_one_alert(tmp_path: Path,
                                                                       model: ModelClassifier) -> None:
    box = Counting()
    svc = service(box, tmp_path, model)
    box.deliver(web("yahoo_auctions", "届いたケトルの注ぎ口が割れていました。", msgid="<b1@x>"))
    box.deliver(web("yahoo_auctions", "電源を入れても動きません。初期不良だと思います。", msgid="<b2@x>"))
    svc.run_once()
    assert sorted(box.kinds()) == ["alert", "reply", "reply"]
    assert alert_subject(box).endswith("品質の苦情 2件")  # both complaints, though one batch
    box.deliver(web("yahoo_auctions", "ケトルの底から水が漏れてきます。不良品です。", msgid="<b3@x>"))
    svc.run_once()
    assert sorted(box.kinds()) == ["alert", "reply", "reply", "reply"]  # the alert replaced, not added
    assert alert_subject(box).endswith("品質の苦情 3件")


def alert_subject(box: FakeMailbox) -> str:
    return next(str(m["Subject"]) for m in (message_from_bytes(raw, policy=default) for raw, _ in box.drafts.values())
                if m["X-Madoguchi-Draft"] == "alert")


def test_a_batch_holds_at_most_batch_bytes_of_mail(tmp_path: Path, model: ModelClassifier) -> None:
    """A run of mails full of photos is read a few at a time, not 250 at once (the unit's
    MemoryMax is 512 MB); a mail bigger than the limit goes alone."""
    class Reading(Counting):
        def fetch(self, uids: list[int]):  # type: ignore[no-untyped-def]
            self.calls.append(f"fetch {len(uids)}")
            return super().fetch(uids)

    box = Reading()
    svc = service(box, tmp_path, model)
    svc.batch_bytes = 25_000
    photo = "写真を添付します。\n" + "A" * 10_000
    for i in range(5):
        box.deliver(web("mercari", photo, msgid=f"<p{i}@x>"))
    box.deliver(web("mercari", photo * 4, msgid="<big@x>"))
    box.deliver(web("mercari", "いつ発送されますか?", msgid="<q@x>"))
    box.calls.clear()
    assert svc.run_once().handled == 7
    assert [c for c in box.calls if c.startswith("fetch")] == ["fetch 2", "fetch 2", "fetch 1", "fetch 1", "fetch 1"]


def test_a_big_burst_parsed_on_every_core_gives_what_one_process_gives(tmp_path: Path,
                                                                       model: ModelClassifier) -> None:
    from tests.mails import mail

    def burst(box: FakeMailbox) -> None:
        for i in range(40):
            box.deliver(mail([("From", f"friend{i}@example.org"), ("Subject", f"近況 {i}"),
                              ("Message-ID", f"<f{i}@x>")], "お元気ですか。"))
            if i % 8 == 0:
                box.deliver(amazon(f"{i}巻が入っていませんでした。", msgid=f"<c{i}@x>"))
        box.deliver(b"\x00\x01 not a mail")

    results = []
    for parallel_from in (10_000, 10):  # in this process; then in worker processes
        box = Counting()
        svc = service(box, tmp_path / str(parallel_from), model)
        svc.batch, svc.parallel_from = 16, parallel_from
        burst(box)
        filed = svc.run_once()
        results.append((filed.handled, filed.failed, [h.message_id for h in filed.outcomes],
                        sorted((str(m["X-Madoguchi-Key"]), str(m["Subject"]), m.get_content())
                               for m in (message_from_bytes(raw, policy=default) for raw, _ in box.drafts.values()))))
    assert results[0] == results[1]
    assert results[0][:2] == (45, 1)


def test_parsing_stays_in_process_when_workers_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon import workers

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("no /dev/shm here")

    monkeypatch.setattr(workers, "ProcessPoolExecutor", refuse)
    with workers.parsers(2) as parse_all:
        parsed = parse_all([amazon("7巻が入っていませんでした。"), b""])
    assert parsed[0].order_id == "249-3029688-3087868"  # type: ignore[union-attr]
    assert "empty" in str(parsed[1])


def test_a_parsing_worker_outlives_ctrl_c_and_sigterm_until_the_daemon_ends_the_pool() -> None:
    import signal
    import subprocess
    import sys
    import time

    code = ("from daemon import workers; workers._start_worker(); print('ready', flush=True); "
            "import time; time.sleep(30)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert proc.poll() is None
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert b"Traceback" not in err


def test_a_connection_lost_while_filing_a_burst_records_nothing_and_stops_reading(
        tmp_path: Path, model: ModelClassifier) -> None:
    """The daemon then drops the connection and reconnects: no mail may be recorded as handled
    without its drafts, and the thread reading the next batch must be done, not still reading
    from a socket being closed."""
    import threading

    from daemon.errors import ConnectionLost

    class Dropping(Counting):
        def append_drafts(self, drafts: list[tuple[EmailMessage, bool]]) -> None:
            raise ConnectionLost("lost the connection to the IMAP server during APPEND to Drafts")

    box = Dropping()
    svc = service(box, tmp_path, model)
    svc.batch = 4
    for i in range(12):
        box.deliver(amazon(f"{i}巻が入っていませんでした。", msgid=f"<c{i}@x>"))
    with pytest.raises(ConnectionLost):
        svc.run_once()
    assert not [t for t in threading.enumerate() if t.name.startswith("madoguchi-read")]
    assert svc.store.counts()["handled"] == 0  # nothing recorded: all handled at the next start
