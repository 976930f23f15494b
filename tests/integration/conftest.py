"""Fixtures for tests against a real Dovecot (Debian's dovecot-imapd) on 127.0.0.1."""

from __future__ import annotations

import itertools
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `pytest` run without the project root on sys.path
    sys.path.insert(0, str(_ROOT))

from tests.dovecot import Account, Dovecot, find_binary, server_folder  # noqa: E402

_user_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot(request: pytest.FixtureRequest) -> Iterator[Dovecot]:
    """One Dovecot for the whole session; its files are kept when a test failed."""
    if find_binary() is None:
        pytest.fail(
            "the `dovecot` binary is missing: the integration tests need a real Dovecot "
            "(apt-get install dovecot-imapd)",
            pytrace=False,
        )
    with server_folder("dovecot", keep=lambda: request.session.testsfailed > 0) as root:
        server = Dovecot(root / "dovecot")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def account(dovecot: Dovecot, request: pytest.FixtureRequest) -> Account:
    """A fresh user with an empty INBOX, named after the test for reading Dovecot's log."""
    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return dovecot.add_user(f"u{next(_user_numbers)}-{test}", secrets.token_urlsafe(12))
