"""Keeping the daemon's heap small where the C library is glibc (elsewhere this does nothing).

Reading a large mail briefly needs tens of MB. Python frees it, but glibc's malloc keeps freed
blocks for reuse and raises its mmap threshold after each large free, so later large buffers
come from the heap and fragment it: RSS creeps up with the largest mails ever read. settle()
fixes the thresholds at start (large buffers are mapped and unmapped whole, two arenas at
most); give_back() returns free heap pages after a pass (malloc_trim).
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)  # the C library the interpreter runs on
        libc.malloc_trim  # noqa: B018 - glibc only
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def settle() -> bool:
    """Fix malloc's thresholds for a long-running process; False where that is not glibc."""
    if _LIBC is None:
        return False
    _LIBC.mallopt(_M_MMAP_THRESHOLD, 256 * 1024)
    _LIBC.mallopt(_M_TRIM_THRESHOLD, 1024 * 1024)
    _LIBC.mallopt(_M_ARENA_MAX, 2)
    return True


def give_back() -> bool:
    """Return freed heap memory to the system; False where the C library cannot."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True
