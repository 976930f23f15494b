"""Labelled mail: a folder per intent (DATA/<intent>/*.eml, like scikit-learn's load_files), an
mbox per intent (DATA/<intent>.mbox), or IMAP folders Madoguchi/Training/<intent> read through
a function passed in. Everything is parsed by the daemon's own parser, as the daemon would."""

from __future__ import annotations

import mailbox as mboxlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from daemon.domain import INTENTS, Notification
from daemon.errors import DataError, ParseError
from daemon.parse import parse


@dataclass(frozen=True)
class Example:
    source: str
    intent: str
    notification: Notification


def raw_mails(data: Path) -> Iterator[tuple[str, str, bytes]]:
    """(source, intent, raw bytes) from a folder-per-intent or mbox-per-intent layout."""
    if not data.is_dir():
        raise DataError(f"{data}: not a folder of labelled mail")
    found = False
    for intent in INTENTS:
        folder = data / intent
        if folder.is_dir():
            found = True
            for p in sorted(folder.rglob("*.eml")):
                yield str(p), intent, p.read_bytes()
        box = data / f"{intent}.mbox"
        if box.is_file():
            found = True
            for i, msg in enumerate(mboxlib.mbox(str(box), create=False)):
                yield f"{box}#{i}", intent, msg.as_bytes()
    if not found:
        raise DataError(f"{data}: no folder or mbox named after an intent "
                              f"({', '.join(INTENTS[:3])}, …)")


def imap_mails(list_folders: Callable[[], list[str]],
               fetch_folder: Callable[[str], Iterable[bytes]]) -> Iterator[tuple[str, str, bytes]]:
    for name in list_folders():
        # the server's hierarchy delimiter: "/" on most, "." on Dovecot's maildir default
        parts = re.split(r"[/.]", name)
        if len(parts) != 3 or parts[:2] != ["Madoguchi", "Training"] or parts[2] not in INTENTS:
            continue
        intent = parts[2]
        for i, raw in enumerate(fetch_folder(name)):
            yield f"imap:{name}#{i}", intent, raw


def examples(mails: Iterable[tuple[str, str, bytes]],
             skipped: list[tuple[str, str]] | None = None) -> list[Example]:
    out = []
    for source, intent, raw in mails:
        try:
            out.append(Example(source, intent, parse(raw)))
        except ParseError as exc:
            if skipped is not None:
                skipped.append((source, str(exc)))
    return out


