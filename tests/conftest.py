from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("MADOGUCHI_") or key in ("NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY",
                                                    "STATE_DIRECTORY", "WATCHDOG_USEC"):
            monkeypatch.delenv(key)
