"""The seller's listings (a CSV they export) and which of them a quality complaint may affect.

Columns (header row required; extra columns are ignored):
    marketplace  amazon, mercari, yahoo_auctions, rakuma, buyma, otamart, or any label
    listing_id   the marketplace's id (ASIN, m123…, auction id …)
    title        the listing title
    url          link to the listing (or its edit page)
    sku          the seller's own product code (optional)
    asin         Amazon ASIN of the product (optional)
    supplier     where it was bought (optional)
    lot          lot / batch / 仕入れ日 (optional)

Reading the file is the edge (`load`); ranking is pure (`related`).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import CatalogueError

REQUIRED = ("marketplace", "listing_id", "title", "url")


@dataclass(frozen=True)
class Listing:
    marketplace: str
    listing_id: str
    title: str
    url: str
    sku: str = ""
    asin: str = ""
    supplier: str = ""
    lot: str = ""


@dataclass(frozen=True)
class Match:
    listing: Listing
    score: float
    why: str


def load(path: Path) -> tuple[Listing, ...]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_bytes().decode("cp932", errors="replace")  # Excel's CSV in Japan
    except OSError as exc:
        raise CatalogueError(f"{path}: the listings catalogue cannot be read ({exc.strerror})") from None
    return parse_csv(text, str(path))


def parse_csv(text: str, where: str = "<catalogue>") -> tuple[Listing, ...]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CatalogueError(f"{where}: the listings catalogue lacks the column(s) {', '.join(missing)}")
    out = []
    for row in reader:
        r = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if not r.get("listing_id") and not r.get("title"):
            continue
        out.append(Listing(**{f: r.get(f, "") for f in Listing.__dataclass_fields__}))
    return tuple(out)


def _grams(text: str) -> set[str]:
    t = re.sub(r"[\s【】\[\]()（）「」/・\-_,.、。!！?？]+", "", unicodedata.normalize("NFKC", text).lower())
    return {t[i : i + 2] for i in range(len(t) - 1)}


def similarity(a: str, b: str) -> float:
    ga, gb = _grams(a), _grams(b)
    if not ga or not gb:
        return 0.0
    return len(ga & gb) / len(ga | gb)


def related(listings: tuple[Listing, ...], *, item_name: str | None, item_id: str | None,
            limit: int = 20) -> tuple[Match, ...]:
    """Listings probably affected by a quality problem with this item, most likely first:
    the same product (listing id / ASIN / SKU), then the same supplier and lot, then similar
    titles."""
    source = next((x for x in listings if item_id and item_id in (x.listing_id, x.asin, x.sku)),
                  None)
    if source is None and item_name:
        best = max(listings, key=lambda x: similarity(x.title, item_name), default=None)
        if best is not None and similarity(best.title, item_name) >= 0.5:
            source = best
    matches: list[Match] = []
    for x in listings:
        if source is not None and x == source:
            matches.append(Match(x, 1.0, "the listing complained about"))
            continue
        if source is not None and ((source.asin and x.asin == source.asin)
                                   or (source.sku and x.sku == source.sku)):
            matches.append(Match(x, 0.95, "same product (ASIN/SKU)"))
            continue
        if source is not None and source.supplier and x.supplier == source.supplier and (
                not source.lot or x.lot == source.lot):
            matches.append(Match(x, 0.8, "same supplier" + (" and lot" if source.lot else "")))
            continue
        sim = similarity(x.title, source.title if source else (item_name or ""))
        if sim >= 0.3:
            matches.append(Match(x, round(0.7 * sim, 2), f"similar title ({sim:.0%})"))
    matches.sort(key=lambda m: -m.score)
    return tuple(matches[:limit])


def product_key(item_id: str | None, item_name: str | None, order_id: str | None) -> str:
    """One alert per product: the id when there is one, else the normalised title."""
    if item_id:
        return item_id
    if item_name:
        return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", item_name)).strip()[:80]
    return order_id or "unknown-product"
