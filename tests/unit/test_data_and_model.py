"""The labelled data keeps its rules; the model file refuses what it must."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier.dedupe import near_duplicates, overlap
from daemon.domain import INTENTS
from daemon.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]


def load(part: str) -> list[dict[str, object]]:
    return [json.loads(line) for p in sorted((ROOT / "data" / part).rglob("*.jsonl"))
            for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_labelled_data_sizes_labels_and_the_window_rule() -> None:
    train, evaluation = load("train"), load("eval")
    assert len(train) >= 3000 and len(evaluation) >= 600
    for item in train + evaluation:
        assert item["intent"] in INTENTS, item["id"]
        if item["intent"] == "late_return":
            assert int(item["days_since_order"]) > 30, item["id"]
        if item["intent"] == "return_request":
            assert int(item["days_since_order"]) <= 30, item["id"]
    assert len({i["id"] for i in train + evaluation}) == len(train) + len(evaluation)


def test_the_evaluation_set_is_kept_apart_from_training() -> None:
    train = [str(i["text"]) for i in load("train")]
    evaluation = [str(i["text"]) for i in load("eval")]
    assert overlap(train, evaluation) == 0
    assert len(near_duplicates(train)) <= 5  # the builder drops these


def test_near_duplicates_are_found() -> None:
    texts = ["商品が届きません。確認してください", "商品が届きません。確認してください!", "色が違います"]
    assert near_duplicates(texts) == {1}


def test_a_model_file_of_another_format_is_refused_naming_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from classifier import persist
    from classifier.predict import DEFAULT_MODEL

    model, meta = persist.load(DEFAULT_MODEL)
    persist.save(model, meta, tmp_path / "m.npz")
    assert persist.load(tmp_path / "m.npz")[0].labels == model.labels
    monkeypatch.setattr(persist, "FORMAT", "madoguchi-linear-0")
    with pytest.raises(ModelError, match=r"format 'madoguchi-linear-1', but this madoguchi reads 'madoguchi-linear-0'"):
        persist.load(tmp_path / "m.npz")


def test_a_model_file_that_would_run_code_or_is_damaged_is_refused(tmp_path: Path) -> None:
    import numpy as np

    from classifier import persist

    evil = tmp_path / "evil.npz"
    with evil.open("wb") as f:  # an object array is stored as a pickle
        np.savez(f, header=np.array([{"model": print}], dtype=object))
    with pytest.raises(ModelError, match="corrupt or not a madoguchi model"):
        persist.load(evil)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(Path(evil).read_bytes()[:40])
    with pytest.raises(ModelError, match="corrupt"):
        persist.load(damaged)


def test_an_append_refused_by_the_server_is_recorded_and_the_next_mail_goes_on(tmp_path: Path) -> None:
    from classifier.predict import ModelClassifier
    from daemon import app, config
    from daemon.errors import MailboxError
    from daemon.service import Service
    from daemon.store import Store
    from daemon.testing import FakeMailbox
    from tests.mails import amazon

    class FullMailbox(FakeMailbox):
        def append_draft(self, message, *, flagged):  # type: ignore[no-untyped-def]
            if "quota" in message.get_content():
                raise MailboxError("the IMAP server refused APPEND to Drafts: [OVERQUOTA] Quota exceeded")
            super().append_draft(message, flagged=flagged)

    box, store = FullMailbox(), Store(tmp_path / "s.sqlite3")
    model = ModelClassifier.from_file()
    svc = Service(connect=lambda: box, store=store, context=lambda: app.context(config.defaults(), store, model))
    svc.run_once()
    box.deliver(amazon("7巻が入っていませんでした(quota)", msgid="<full@x>"))
    box.deliver(amazon("3巻が入っていませんでした", msgid="<ok@x>"))
    filed = svc.run_once()
    assert [h.message_id for h in filed.outcomes] == ["<ok@x>"]
    assert "Quota exceeded" in store.failures()[0].reason
