"""A synthetic shop with a known structure, written in the training-channel contract.

Items belong to ~12 categories and carry latent vectors near their category's centre; users have
latent tastes (a mixture of 1-3 categories) that their country, age band and device hint at.
Each session picks a category from the user's mixture and browses items drawn with probability
softmax(taste · item + log popularity + a boost for new items) among items already created, then
goes down the funnel view → click → add_to_cart → purchase. A recommender that learns tastes,
popularity, segments and recency should beat one that does not.

Sampling uses sampling-importance-resampling so that ten million events stay cheap: candidates
are drawn from the popularity of the category's already-created items (a prefix of the items
sorted by creation time), then resampled by exp(affinity) with the Gumbel top-k trick.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

DAY = 86_400
DIM = 16
CANDIDATES = 32  # popularity-drawn candidates per session, resampled by taste
MAX_VIEWS = 12
NEW_ITEM_BOOST, NEW_ITEM_DAYS = 1.0, 14.0
# P(click | viewed) = sigmoid(intercept + slope * z), z the standardised affinity taste . item
CLICK_INTERCEPT, CLICK_SLOPE = -2.0, 0.7
PARAMETERS_FILE = "_synthetic_shop.json"  # "_": the channel readers skip it
ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
_CSV_OPTIONS = pa_csv.WriteOptions(quoting_style="needed")

# category | median price | product nouns | title words ("Wool Winter Coat" = word + word + noun)
_CATALOGUE_TEXT = """
outerwear   | 120 | Coat, Jacket, Parka, Raincoat                  | Wool, Winter, Quilted, Waterproof
knitwear    |  60 | Sweater, Cardigan, Jumper, Hoodie              | Cashmere, Merino, Cable, Chunky
footwear    |  85 | Boots, Sneakers, Loafers, Sandals              | Leather, Suede, Trail, Canvas
kitchen     |  35 | Pan, Kettle, Knife, Chopping Board             | Cast Iron, Steel, Copper, Bamboo
home        |  45 | Lamp, Vase, Cushion, Throw                     | Ceramic, Linen, Rattan, Velvet
beauty      |  25 | Serum, Moisturiser, Lipstick, Cleanser         | Vitamin C, Hydrating, Matte, Gentle
sports      |  30 | Yoga Mat, Dumbbell, Running Shorts, Bottle     | Pro, Grip, Breathable, Lightweight
electronics |  90 | Headphones, Speaker, Charger, Smartwatch       | Wireless, Bluetooth, Fast, Portable
toys        |  20 | Puzzle, Building Set, Plush Bear, Board Game   | Wooden, Magnetic, Family, Junior
books       |  15 | Novel, Cookbook, Atlas, Journal                | Illustrated, Pocket, Hardback, Travel
garden      |  28 | Planter, Hose, Pruner, Seed Kit                | Terracotta, Herb, Patio, Compact
accessories |  40 | Scarf, Wallet, Belt, Sunglasses                | Silk, Suede, Polarised, Woven
"""
CATEGORIES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    name.strip(): (
        float(price),
        tuple(n.strip() for n in nouns.split(",")),
        tuple(w.strip() for w in words.split(",")),
    )
    for name, price, nouns, words in (line.split("|") for line in _CATALOGUE_TEXT.strip().splitlines())
}
ADJECTIVES = ("Classic", "Essential", "Premium", "Everyday", "Vintage", "Modern", "Soft", "Urban", "Nordic")
BRANDS = (
    "Aldermoor", "Brightwell", "Caskade", "Dunmore", "Elmfield", "Fernhall", "Greyloft", "Hartwick",
    "Ivybridge", "Juniper & Co", "Kestrel", "Larchmont", "Meadowlark", "Northvale", "Oakhurst", "Pinecrest",
)  # fmt: skip
COUNTRIES = (("GB", 0.35), ("DE", 0.18), ("FR", 0.14), ("US", 0.12), ("ES", 0.08), ("IT", 0.07), ("NL", 0.06))
AGE_BANDS = (("18-24", 0.16), ("25-34", 0.30), ("35-44", 0.24), ("45-54", 0.17), ("55+", 0.13))
DEVICES = (("mobile", 0.62), ("desktop", 0.30), ("tablet", 0.08))
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 1, 2, 4, 6, 6, 6, 7, 8, 7, 6, 6, 7, 8, 10, 12, 13, 12, 8, 3], float)


@dataclass(frozen=True)
class _Items:
    category: np.ndarray  # int, per item
    vectors: np.ndarray  # float32 (n, DIM)
    popularity: np.ndarray  # float, sums to 1
    created: np.ndarray  # int64 epoch seconds
    price: np.ndarray
    by_category_then_created: np.ndarray  # item order used for prefix sampling
    category_start: np.ndarray  # first position of each category in that order


def generate(
    out_dir: Path,
    n_users: int = 2000,
    n_items: int = 800,
    n_days: int = 90,
    seed: int = 7,
    start: str = "2026-01-01",
    *,
    sessions_per_user_day: float = 0.08,
    chunk_sessions: int = 40_000,
) -> dict[str, Any]:
    """Write ``interactions.csv``, ``items.csv`` and ``users.csv`` into ``out_dir``; return a summary.

    The call's parameters go to ``_synthetic_shop.json`` beside them, so that ``latent_truth`` can
    redraw the shop's hidden tastes later (the shopper simulator's ground truth)."""
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    t0 = int(pd.Timestamp(start, tz="UTC").timestamp())
    items, item_table, tastes, mixtures, activity, user_table = _draw_shop(rng, n_users, n_items, n_days, t0)
    out_dir.mkdir(parents=True, exist_ok=True)
    item_table.to_csv(out_dir / "items.csv", index=False)
    user_table.to_csv(out_dir / "users.csv", index=False)
    parameters = {"n_users": n_users, "n_items": n_items, "n_days": n_days, "seed": seed, "start": start}
    (out_dir / PARAMETERS_FILE).write_text(json.dumps(parameters, indent=2))

    n_sessions = rng.poisson(activity * sessions_per_user_day * n_days)
    session_user = np.repeat(np.arange(n_users), n_sessions)
    weekday = (np.arange(n_days) + pd.Timestamp(start).weekday()) % 7
    day_weight = (1 + 0.3 * np.arange(n_days) / n_days) * np.where(weekday >= 5, 1.25, 1.0)
    day = rng.choice(n_days, size=len(session_user), p=day_weight / day_weight.sum())
    hour = rng.choice(24, size=len(session_user), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    begin = t0 + day * DAY + hour * 3600 + rng.integers(0, 3600, size=len(session_user))
    order = np.argsort(begin, kind="stable")
    session_user, begin = session_user[order], begin[order]

    scale = _affinity_scale(tastes, items.vectors)
    user_ids = pa.array(_ids("u", n_users))
    item_ids = pa.array(_ids("i", n_items))
    width = len(str(max(len(begin), 1)))
    counts = dict.fromkeys(("view", "click", "add_to_cart", "purchase"), 0)
    schema = pa.schema(
        [(name, pa.string()) for name in ("user_id", "item_id", "event_type", "timestamp", "session_id")]
    )
    schema = schema.append(pa.field("quantity", pa.int64())).append(pa.field("price", pa.float64()))
    spans: list[tuple[int, int]] = []
    with pa_csv.CSVWriter(out_dir / "interactions.csv", schema, write_options=_CSV_OPTIONS) as writer:
        for lo in range(0, len(begin), chunk_sessions):
            sessions = np.arange(lo, min(lo + chunk_sessions, len(begin)))
            kind, sess, item, when, quantity = _session_events(
                rng, items, tastes, mixtures, session_user[sessions], begin[sessions], scale
            )
            table = pa.table(
                {
                    "user_id": pc.take(user_ids, pa.array(session_user[sessions][sess])),
                    "item_id": pc.take(item_ids, pa.array(item)),
                    "event_type": pc.take(pa.array(list(counts)), pa.array(kind)),
                    "timestamp": pc.strftime(pa.array(when.astype("datetime64[s]")), format=ISO_SECONDS),
                    "session_id": pa.array([f"s{n:0{width}d}" for n in sessions]).take(pa.array(sess)),
                    "quantity": pa.array(quantity, mask=kind != 3),
                    "price": pa.array(items.price[item], mask=kind != 3),
                },
                schema=schema,
            )
            writer.write_table(table)
            for code, name in enumerate(counts):
                counts[name] += int((kind == code).sum())
            spans += [(when.min(), when.max())] if len(when) else []
    return {
        "rows": sum(counts.values()),
        "events": counts,
        "users": n_users,
        "active_users": int((n_sessions > 0).sum()),
        "items": n_items,
        "sessions": len(begin),
        "span": [_iso(min(s[0] for s in spans)), _iso(max(s[1] for s in spans))] if spans else None,
        "seed": seed,
        "out_dir": str(out_dir),
    }


@dataclass(frozen=True)
class LatentTruth:
    """What ``generate`` draws before any session: the shop's hidden truth, for shopper simulators."""

    user_ids: list[str]
    item_ids: list[str]
    tastes: np.ndarray  # float32 (users, DIM)
    item_vectors: np.ndarray  # float32 (items, DIM)
    categories: list[str]  # per item
    price: np.ndarray  # per item
    popularity: np.ndarray  # per item, sums to 1
    affinity_scale: tuple[float, float]  # mean and std that standardise taste . item in the click model


def latent_truth(
    n_users: int = 2000, n_items: int = 800, n_days: int = 90, seed: int = 7, start: str = "2026-01-01"
) -> LatentTruth:
    """The latent factors ``generate`` draws with the same arguments (the same generator, replayed)."""
    rng = np.random.default_rng(seed)
    t0 = int(pd.Timestamp(start, tz="UTC").timestamp())
    items, _, tastes, _, _, _ = _draw_shop(rng, n_users, n_items, n_days, t0)
    names = list(CATEGORIES)
    return LatentTruth(
        user_ids=_ids("u", n_users),
        item_ids=_ids("i", n_items),
        tastes=tastes,
        item_vectors=items.vectors,
        categories=[names[c] for c in items.category],
        price=items.price,
        popularity=items.popularity,
        affinity_scale=_affinity_scale(tastes, items.vectors),
    )


def _draw_shop(
    rng: np.random.Generator, n_users: int, n_items: int, n_days: int, t0: int
) -> tuple[_Items, pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    if n_items < len(CATEGORIES) or n_users < 1 or n_days < 1:
        raise ValueError(f"need n_items >= {len(CATEGORIES)}, n_users >= 1 and n_days >= 1")
    centres = rng.normal(size=(len(CATEGORIES), DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    items, item_table = _make_items(rng, centres, n_items, n_days, t0)
    share = np.bincount(items.category, minlength=len(CATEGORIES)) / n_items
    tastes, mixtures, activity, user_table = _make_users(rng, centres, share, n_users)
    return items, item_table, tastes, mixtures, activity, user_table


def _affinity_scale(tastes: np.ndarray, vectors: np.ndarray) -> tuple[float, float]:
    # Standardise affinities once so the funnel probabilities do not depend on the shop's size.
    sample = tastes[:500] @ vectors[:2000].T
    return float(sample.mean()), float(sample.std()) or 1.0


def _make_items(
    rng: np.random.Generator, centres: np.ndarray, n: int, n_days: int, t0: int
) -> tuple[_Items, pd.DataFrame]:
    names = list(CATEGORIES)
    share = rng.dirichlet(np.full(len(names), 4.0))
    category = np.concatenate([np.arange(len(names)), rng.choice(len(names), size=n - len(names), p=share)])
    vectors = (centres[category] + rng.normal(scale=0.6 / np.sqrt(DIM), size=(n, DIM))).astype(np.float32)
    popularity = (rng.permutation(n) + 1.0) ** -0.9
    popularity /= popularity.sum()
    # Two thirds of the catalogue exists before the window; the rest keeps arriving during it.
    old = rng.random(n) < 0.65
    old[: len(names)] = True  # every category has an item on day one
    created = np.where(
        old, t0 - rng.integers(1, 365 * DAY, size=n), t0 + rng.integers(0, n_days * DAY, size=n)
    )
    medians = np.array([CATEGORIES[name][0] for name in names])
    raw_price = medians[category] * np.exp(rng.normal(scale=0.45, size=n))
    price = np.maximum(np.round(raw_price), 2.0) - 0.01
    order = np.lexsort((created, category))
    starts = np.searchsorted(category[order], np.arange(len(names)))
    noun, word, adjective = rng.integers(0, 4, size=n), rng.integers(0, 4, size=n), rng.integers(0, 9, size=n)
    brand_pool = np.stack([rng.choice(len(BRANDS), size=5, replace=False) for _ in names])
    brand = brand_pool[category, np.minimum(rng.geometric(0.45, size=n) - 1, 4)]
    table = pd.DataFrame(
        {
            "item_id": _ids("i", n),
            "title": [
                f"{ADJECTIVES[a]} {CATEGORIES[names[c]][2][w]} {CATEGORIES[names[c]][1][k]}"
                for a, c, w, k in zip(adjective, category, word, noun, strict=True)
            ],
            "category": np.array(names)[category],
            "price": price,
            "brand": np.array(BRANDS)[brand],
            "created_at": [_iso(t) for t in created],
            "in_stock": rng.random(n) > 0.03,
        }
    )
    return _Items(category, vectors, popularity, created, price, order, starts), table


def _make_users(
    rng: np.random.Generator, centres: np.ndarray, category_share: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    n_cat = len(centres)
    # Big categories are liked by more people; segments shift that with their own preferences.
    attributes, effects = {}, np.tile(np.log(category_share), (n, 1))
    for column, levels, spread in (
        ("country", COUNTRIES, 0.8),
        ("age_band", AGE_BANDS, 1.0),
        ("device", DEVICES, 0.4),
    ):
        weights = np.array([w for _, w in levels])
        level = rng.choice(len(levels), size=n, p=weights / weights.sum())
        effects += rng.normal(scale=spread, size=(len(levels), n_cat))[level]
        attributes[column] = np.array([name for name, _ in levels])[level]
    # Each user likes 1-3 categories, picked by the Gumbel top-k of the segment's preferences.
    picked = np.argsort(-(effects + rng.gumbel(size=effects.shape)), axis=1)[:, :3]
    weights = rng.dirichlet(np.full(3, 1.5), size=n) * (
        np.arange(3) < rng.choice([1, 2, 3], n, p=[0.35, 0.4, 0.25])[:, None]
    )
    mixtures = np.zeros((n, n_cat))
    np.put_along_axis(mixtures, picked, weights / weights.sum(axis=1, keepdims=True), axis=1)
    tastes = 3.0 * (mixtures @ centres + rng.normal(scale=0.5 / np.sqrt(DIM), size=(n, DIM)))
    activity = rng.lognormal(sigma=1.0, size=n)
    table = pd.DataFrame({"user_id": _ids("u", n), **attributes})
    return tastes.astype(np.float32), mixtures, activity / activity.mean(), table


def _session_events(
    rng: np.random.Generator,
    items: _Items,
    tastes: np.ndarray,
    mixtures: np.ndarray,
    user: np.ndarray,
    begin: np.ndarray,
    scale: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Events of a chunk of sessions: (kind code, session position, item, epoch seconds, quantity)."""
    n = len(user)
    # A session looks at one category: mostly one the user likes, sometimes any (exploration).
    mix = np.where(rng.random((n, 1)) < 0.85, mixtures[user], 1.0 / mixtures.shape[1])
    cumulative = np.cumsum(mix, axis=1) / mix.sum(axis=1, keepdims=True)
    category = np.minimum((rng.random((n, 1)) > cumulative).sum(axis=1), mix.shape[1] - 1)
    # Items of a category created by the session's start are a prefix of the by-creation order.
    order, first = items.by_category_then_created, items.category_start[category]
    last = _prefix_end(items, category, begin)
    mass = np.concatenate([[0.0], np.cumsum(items.popularity[order])])
    draw = mass[first][:, None] + rng.random((n, CANDIDATES)) * (mass[last] - mass[first])[:, None]
    position = np.clip(np.searchsorted(mass, draw, side="right") - 1, first[:, None], last[:, None] - 1)
    candidate = order[position]
    affinity = np.einsum("scd,sd->sc", items.vectors[candidate], tastes[user])
    age_days = (begin[:, None] - items.created[candidate]) / DAY
    score = affinity + NEW_ITEM_BOOST * np.exp(-age_days / NEW_ITEM_DAYS)
    ranked = np.argsort(-(score + rng.gumbel(size=score.shape)), axis=1)[:, :MAX_VIEWS]
    length = np.minimum(rng.geometric(0.2, size=n), MAX_VIEWS)
    keep = np.arange(ranked.shape[1]) < length[:, None]
    sess = np.broadcast_to(np.arange(n)[:, None], ranked.shape)[keep]
    item = np.take_along_axis(candidate, ranked, axis=1)[keep]
    z = (np.take_along_axis(affinity, ranked, axis=1)[keep] - scale[0]) / scale[1]
    unique = ~pd.Series(sess.astype(np.int64) * len(items.price) + item).duplicated().to_numpy()
    sess, item, z = sess[unique], item[unique], z[unique]

    gap = 10 + rng.exponential(40.0, size=len(sess)).astype(np.int64)  # seconds spent on a viewed item
    elapsed = np.cumsum(gap) - gap  # views follow each other; sess is sorted, so restart it per session
    session_first = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1]])
    elapsed -= np.repeat(elapsed[session_first], np.diff(np.r_[session_first, len(sess)]))
    viewed = begin[sess] + elapsed
    clicked = rng.random(len(sess)) < _sigmoid(CLICK_INTERCEPT + CLICK_SLOPE * z)
    carted = clicked & (rng.random(len(sess)) < _sigmoid(-2.0 + 0.5 * z))
    bought = carted & (rng.random(len(sess)) < 0.5)
    checkout = np.zeros(n, dtype=np.int64)
    np.maximum.at(checkout, sess, viewed + gap)
    checkout += rng.integers(30, 180, size=n)
    parts = [
        (0, np.ones_like(clicked), viewed),
        (1, clicked, viewed + np.maximum(gap // 5, 1)),
        (2, carted, viewed + np.maximum(gap // 2, 2)),
        (3, bought, checkout[sess]),
    ]
    kind = np.concatenate([np.full(int(mask.sum()), code) for code, mask, _ in parts])
    when = np.concatenate([at[mask] for _, mask, at in parts])
    session_of = np.concatenate([sess[mask] for _, mask, _ in parts])
    item_of = np.concatenate([item[mask] for _, mask, _ in parts])
    quantity = np.where(kind == 3, rng.geometric(0.75, size=len(kind)), 0)
    by_time = np.argsort(when, kind="stable")
    return kind[by_time], session_of[by_time], item_of[by_time], when[by_time], quantity[by_time]


def _prefix_end(items: _Items, category: np.ndarray, begin: np.ndarray) -> np.ndarray:
    order = items.by_category_then_created
    # One sorted key (category, creation time) answers every session's "created by t" at once.
    base = items.created.min()
    span = np.int64(max(int(items.created.max() - base), int(begin.max() - base)) + 1)
    keys = items.category[order].astype(np.int64) * span + (items.created[order] - base)
    return np.searchsorted(keys, category.astype(np.int64) * span + (begin - base), side="right")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _ids(prefix: str, n: int) -> list[str]:
    width = max(5, len(str(n)))
    return [f"{prefix}{k:0{width}d}" for k in range(1, n + 1)]


def _iso(epoch_seconds: Any) -> str:
    return pd.Timestamp(int(epoch_seconds), unit="s", tz="UTC").strftime(ISO_SECONDS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic shop in the training-channel contract.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=800)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="2026-01-01")
    parser.add_argument("--sessions-per-user-day", type=float, default=0.08)
    args = parser.parse_args(argv)
    summary = generate(
        args.out, args.users, args.items, args.days, args.seed, args.start,
        sessions_per_user_day=args.sessions_per_user_day,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
