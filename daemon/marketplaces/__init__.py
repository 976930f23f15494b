"""One module per marketplace; the registry is tried in order and the first owner wins.

Each module has `owns(sender, reply_to) -> bool`, judged on the real sender address (never the
subject), and `read(MailView) -> Facts`.
"""

from __future__ import annotations

from types import ModuleType

from daemon.marketplaces import amazon, buyma, mercari, otamart, rakuma, rakuten, yahoo
from daemon.marketplaces.common import Facts, MailView

REGISTRY: tuple[ModuleType, ...] = (amazon, mercari, yahoo, rakuma, buyma, otamart, rakuten)


def owner(sender: str, reply_to: str) -> ModuleType | None:
    for module in REGISTRY:
        if module.owns(sender, reply_to):
            return module
    return None


__all__ = ["REGISTRY", "Facts", "MailView", "owner"]
