"""Convert the UCI Online Retail transaction log into the training-channel contract.

UCI Online Retail (Daqing Chen, CC BY 4.0), doi:10.1057/dbm.2012.17

Real invoice lines (Dec 2010 - Dec 2011) of a UK gift-ware shop. Kept: lines with a CustomerID,
an invoice that is neither a cancellation (``C...``) nor an adjustment (``A...``), Quantity > 0,
UnitPrice > 0 and a product StockCode (a run of digits with an optional letter suffix, so POST,
DOT, M, D, C2, S, B, BANK CHARGES, AMAZONFEE, CRUK, PADS, DCGS..., gift vouchers are dropped).
Every kept line is a ``purchase``; the invoice is its session; repeated lines of one item on one
invoice are summed. Items get the product type named in their description as category
(see :func:`category_of`).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "datasets" / "uci-online-retail" / "online_retail.csv.gz"
PRODUCT_CODE = r"^\d+[A-Z]*$"
ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"

# Product types, singular: the category of an item is the last of these in its description.
_PRODUCT_TYPES_TEXT = """
    apron backpack badge bag ball balloon bangle bank basket beaker bell bin board book bottle bowl box
    bracelet brooch brush bucket bunting cabinet caddy cake-stand cakestand calendar can candle candleholder
    candlestick card case chair chalkboard charm chest clip clock coaster comb container cover crayon cup
    cupboard curtain cushion cutlery cutter decoration dish doily doll doorknob doormat doorstop drawer
    earring envelope fan flag flannel fork frame garland glass glove hairband handbag hanger hat headphone
    holder hook incense jar jigsaw journal jug keyring kit knob label lamp lampshade lantern letter light
    magnet mat mirror mobile mould mug napkin necklace notebook organiser ornament pad pan paperweight
    parasol patch peg pen pencil pendant photo placemat planter plate pot puppet purse puzzle rack ribbon
    ring rucksack ruler saucer scale scarf screen sign sketchbook soap spade sponge spoon stand sticker
    stool string t-light table tag tape teapot thermometer tile timer tin tissue toy towel tray tube
    tumbler umbrella vase wallet warmer washbag wrap wreath
"""
PRODUCT_TYPES = frozenset(_PRODUCT_TYPES_TEXT.split())
# Words that describe rather than name a product; skipped when no product type is found.
_MODIFIERS_TEXT = """
    a and assorted asstd big black blue brown cm colour cream design for giant gold green grey ivory jumbo
    large medium mini multicolour of on orange pack pastel pink polkadot purple red retro retrospot set silver
    small spaceboy spotty tall the vintage white with yellow
"""
MODIFIERS = frozenset(_MODIFIERS_TEXT.split())
ALIASES = {"doiley": "doily", "cake-stand": "cakestand", "candleholder": "holder"}
_WORD = re.compile(r"[A-Z]+(?:-[A-Z]+)*")


def category_of(description: str) -> str:
    """The product type in a description, lower case and singular.

    Rule: the last word of the description that is a known product type ("WHITE HANGING HEART
    T-LIGHT HOLDER" → "holder", "JUMBO BAG RED RETROSPOT" → "bag"); when none is, the last word
    that is not a colour, size or pattern ("RED HANGING HEART" → "heart"); else "other".
    """
    words = [singular(word.lower()) for word in _WORD.findall(str(description).upper())]
    for word in reversed(words):
        if word in PRODUCT_TYPES:
            return ALIASES.get(word, word)
    fallback = [word for word in words if word not in MODIFIERS and len(word) > 2]
    return ALIASES.get(fallback[-1], fallback[-1]) if fallback else "other"


def singular(word: str) -> str:
    """A small English singular: doilies → doily, boxes → box, candles → candle, glass → glass."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us")) and len(word) > 3:
        return word[:-1]
    return word


def convert(source: Path, out_dir: Path) -> dict[str, Any]:
    """Write ``interactions.csv``, ``items.csv`` and ``users.csv`` into ``out_dir``; return a summary."""
    raw = pd.read_csv(
        source,
        dtype={"InvoiceNo": str, "StockCode": str},
        keep_default_na=False,
        na_values={"CustomerID": [""], "Description": [""]},
    )
    invoice = raw["InvoiceNo"].str.strip()
    code = raw["StockCode"].str.strip().str.upper()
    filters = {  # applied in this order; each counts the lines it removes
        "no_customer": raw["CustomerID"].isna(),
        "cancellation_or_adjustment": invoice.str.startswith(("C", "A")),
        "non_positive_quantity": raw["Quantity"] <= 0,
        "non_positive_price": raw["UnitPrice"] <= 0,
        "non_product_code": ~code.str.match(PRODUCT_CODE),
    }
    dropped, removed = {}, pd.Series(False, index=raw.index)
    for reason, failing in filters.items():
        dropped[reason] = int((failing & ~removed).sum())
        removed |= failing
    kept = raw[~removed]
    lines = pd.DataFrame(
        {
            "user_id": kept["CustomerID"].astype("int64").astype(str),
            "item_id": code[~removed],
            "timestamp": pd.to_datetime(kept["InvoiceDate"], format="%Y-%m-%d %H:%M:%S"),
            "session_id": invoice[~removed],
            "quantity": kept["Quantity"].astype("int64"),
            "paid": kept["Quantity"] * kept["UnitPrice"],
            "unit_price": kept["UnitPrice"],
            "title": kept["Description"].str.strip(),
            "country": kept["Country"].str.strip(),
        }
    )

    # One purchase per item and invoice; its price is what a unit cost on average over the lines.
    purchases = lines.groupby(["session_id", "item_id"], sort=False, as_index=False).agg(
        user_id=("user_id", "first"),
        timestamp=("timestamp", "min"),
        quantity=("quantity", "sum"),
        paid=("paid", "sum"),
    )
    purchases["price"] = (purchases["paid"] / purchases["quantity"]).round(4)
    purchases = purchases.sort_values("timestamp", kind="stable")
    interactions = pd.DataFrame(
        {
            "user_id": purchases["user_id"],
            "item_id": purchases["item_id"],
            "event_type": "purchase",
            "timestamp": purchases["timestamp"].dt.strftime(ISO_SECONDS),
            "session_id": purchases["session_id"],
            "quantity": purchases["quantity"],
            "price": purchases["price"],
        }
    )

    by_item = lines.groupby("item_id", sort=True)
    items = pd.DataFrame(
        {
            "title": _most_frequent(lines, "item_id", "title"),
            "price": by_item["unit_price"].median(),
            "created_at": by_item["timestamp"].min().dt.strftime(ISO_SECONDS),
        }
    )
    items["title"] = items["title"].fillna("")
    items["category"] = items["title"].map(category_of)
    items["brand"] = ""
    items["in_stock"] = True
    items = items.rename_axis("item_id").reset_index()
    items = items[["item_id", "title", "category", "price", "brand", "created_at", "in_stock"]]
    users = _most_frequent(lines, "user_id", "country").rename_axis("user_id").reset_index()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    interactions.to_csv(out_dir / "interactions.csv", index=False)
    items.to_csv(out_dir / "items.csv", index=False)
    users.to_csv(out_dir / "users.csv", index=False)
    return {
        "source_lines": len(raw),
        "dropped": dropped,
        "lines_kept": len(lines),
        "rows": len(interactions),
        "users": len(users),
        "items": len(items),
        "categories": int(items["category"].nunique()),
        "span": [interactions["timestamp"].iloc[0], interactions["timestamp"].iloc[-1]]
        if len(lines)
        else None,
        "out_dir": str(out_dir),
    }


def _most_frequent(lines: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Per ``key``, its most frequent non-missing ``column`` value (ties: alphabetically first)."""
    counts = lines.groupby([key, column]).size().rename("n").reset_index()
    ranked = counts.sort_values([key, "n", column], ascending=[True, False, True], kind="stable")
    return ranked.drop_duplicates(key).set_index(key)[column]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Convert UCI Online Retail to the training-channel contract."
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(convert(args.source, args.out), indent=2))


if __name__ == "__main__":
    main()
