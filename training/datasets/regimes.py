"""Shops of three regimes that a recommender must handle, in the training-channel contract.

    python -m training.datasets.regimes --regime sparse_views --out DIR [--scale 1.0] [--seed 7]

Each writes ``interactions.csv``, ``items.csv`` and ``users.csv`` as ``synthetic_shop`` does, so the job
reads them unchanged; the default sizes train in well under a minute on 2 cores, ``--scale`` multiplies
the shoppers (and, above 1, the catalogue of ``sparse_views``, which stays large below).

- ``dense_repeat``: a grocery-like shop. 1,000 shoppers x 400 items over 90 days; each shopper has a
  set of staples (8-25 items near their taste) and shops once or twice a week, a basket of ~8 lines of
  which 80% are staples; now and then an item tried becomes a staple. Purchases dominate, most are
  repeats, the user x item matrix is dense.
- ``sparse_views``: a large catalogue browsed briefly. 20,000 items in 240 product types, 1,500 shoppers
  each active over 1-4 days of a 14-day log with about 100 events, nearly all views: a shopper looks for
  one or two product types, views popular items of them, views again what they liked, and rarely buys
  (1-2% of events), mostly an item viewed more than once.
- ``new_releases``: popularity that moves. 500 items at the start and 10 new releases a day over 60 days;
  an item's appeal peaks at 31 times its floor at release and decays with a 5-day time constant, so new
  releases take over the best-seller list every few days. 1,200 shoppers view and buy what is hot near
  their taste.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.datasets.synthetic_shop import ADJECTIVES, BRANDS, CATEGORIES, ISO_SECONDS

DAY = 86_400
DIM = 8
KINDS = ("view", "click", "add_to_cart", "purchase")
START = "2026-01-01"
EventRows = tuple[list[np.ndarray], ...]  # users, items, kind codes, epoch seconds, sessions


def generate(regime: str, out_dir: Path, scale: float = 1.0, seed: int = 7) -> dict[str, Any]:
    """Write the regime's three files into ``out_dir``; return a summary of what was written."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}: one of {', '.join(REGIMES)}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    rng = np.random.default_rng(seed)
    t0 = int(pd.Timestamp(START, tz="UTC").timestamp())
    events, items, n_users = REGIMES[regime](rng, scale, t0)
    return _write(Path(out_dir), regime, events, items, n_users, rng, seed)


def _catalogue(rng: np.random.Generator, n_items: int, n_types: int, created: np.ndarray) -> pd.DataFrame:
    """Items with a product type (``category``: a shop category + a noun), vectors, prices, brands."""
    names = list(CATEGORIES)
    type_category = np.arange(n_types) % len(names)
    kind = np.sort(rng.integers(0, n_types, size=n_items))
    category = type_category[kind]
    medians = np.array([CATEGORIES[name][0] for name in names])
    price = np.maximum(np.round(medians[category] * np.exp(rng.normal(scale=0.4, size=n_items))), 2.0) - 0.01
    titles = [
        f"{ADJECTIVES[a]} {CATEGORIES[names[c]][2][w]} {CATEGORIES[names[c]][1][t % 4]}"
        for a, c, w, t in zip(
            rng.integers(0, len(ADJECTIVES), n_items),
            category,
            rng.integers(0, 4, n_items),
            kind,
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            "item_id": _ids("i", n_items),
            "title": titles,
            "category": [f"{names[c]}-{t // len(names)}" for c, t in zip(category, kind, strict=True)],
            "price": price,
            "brand": np.array(BRANDS)[rng.integers(0, len(BRANDS), n_items)],
            "created_at": [_iso(t) for t in created],
            "in_stock": True,
            "_type": kind,
        }
    )


def _dense_repeat(rng: np.random.Generator, scale: float, t0: int) -> tuple[EventRows, pd.DataFrame, int]:
    n_users, n_items, n_days = round(1000 * scale), 400, 90
    items = _catalogue(rng, n_items, 24, t0 - rng.integers(30, 400, n_items) * DAY)
    vectors, tastes = rng.normal(size=(n_items, DIM)), rng.normal(size=(n_users, DIM))
    popularity = np.log((rng.permutation(n_items) + 1.0) ** -0.7)
    out: EventRows = ([], [], [], [], [])
    session = 0
    for user in range(n_users):
        appeal = tastes[user] @ vectors.T / np.sqrt(DIM) + popularity
        n_trips = rng.poisson(rng.lognormal(np.log(1.3 / 7), 0.4) * n_days)
        if n_trips == 0:
            continue
        begins = np.sort(rng.uniform(0, n_days * DAY, n_trips)).astype(np.int64) + t0
        sizes = 4 + rng.poisson(4, n_trips)
        # tries: each trip's best items by appeal + noise; the first try of 15% of trips becomes a staple
        tries = np.argsort(-(appeal + 2 * rng.gumbel(size=(n_trips, n_items))), axis=1)[:, :12]
        adopted = rng.random(n_trips) < 0.15
        initial = np.argsort(-(appeal + rng.gumbel(size=n_items)))[: rng.integers(8, 26)]
        pool = np.r_[initial, tries[adopted, 0]]
        pool_size = len(initial) + np.r_[0, np.cumsum(adopted)[:-1]]  # habits count from the next trip
        trip = np.repeat(np.arange(n_trips), sizes)
        line = np.arange(len(trip)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        staple = rng.random(len(trip)) < 0.8
        from_pool = pool[(rng.random(len(trip)) * pool_size[trip]).astype(np.int64)]
        from_tries = tries[trip, np.minimum(line, tries.shape[1] - 1)]
        picked = np.where(staple, from_pool, from_tries)
        keep = np.unique(trip * n_items + picked, return_index=True)[1]  # a basket holds an item once
        trip, picked, line = trip[keep], picked[keep], line[keep]
        when = begins[trip] + 40 * line
        looked = rng.random(len(trip)) < 0.3  # some lines are looked at before they are bought
        _add(out, user, picked[looked], 0, when[looked], session + trip[looked])
        _add(out, user, picked, 3, begins[trip] + 40 * sizes[trip] + 30, session + trip)
        session += n_trips
    return out, items, n_users


def _sparse_views(rng: np.random.Generator, scale: float, t0: int) -> tuple[EventRows, pd.DataFrame, int]:
    n_users, n_items, n_types, n_days = round(1500 * scale), round(20_000 * max(scale, 1.0)), 240, 14
    items = _catalogue(rng, n_items, n_types, t0 - rng.integers(1, 300, n_items) * DAY)
    kind = items["_type"].to_numpy()
    starts = np.searchsorted(kind, np.arange(n_types + 1))
    # a type's items have Zipf-like popularity; inverse-CDF sampling within the type's slice of the mass
    weight = np.concatenate([_zipf(rng, int(size)) for size in np.diff(starts)])
    mass = np.r_[0.0, np.cumsum(weight)]
    out: EventRows = ([], [], [], [], [])
    session = 0
    for user in range(n_users):
        wanted = rng.choice(n_types, size=rng.integers(1, 3), replace=False)
        n_views = max(10, int(rng.lognormal(np.log(95), 0.35)))
        pick = wanted[rng.integers(0, len(wanted), n_views)]
        draw = mass[starts[pick]] + rng.random(n_views) * (mass[starts[pick + 1]] - mass[starts[pick]])
        fresh = np.clip(np.searchsorted(mass, draw, side="right") - 1, starts[pick], starts[pick + 1] - 1)
        # 35% of views go back to an earlier view (the latest most likely): follow the pointers to a fresh one
        source = np.arange(n_views) - rng.geometric(0.3, n_views)
        source = np.where((rng.random(n_views) < 0.35) & (source >= 0), source, np.arange(n_views))
        for _ in range(int(np.ceil(np.log2(n_views))) + 1):
            source = source[source]
        viewed = fresh[source]
        n_sessions = int(rng.integers(3, 9))
        cuts = np.sort(rng.choice(np.arange(1, n_views), n_sessions - 1, replace=False))
        in_session = np.repeat(np.arange(n_sessions), np.diff(np.r_[0, cuts, n_views]))
        first_day, days = rng.uniform(0, n_days - 1), rng.uniform(1, 4)
        begins = np.sort(first_day * DAY + rng.uniform(0, days * DAY, n_sessions)).astype(np.int64) + t0
        gaps = rng.integers(15, 90, n_views)
        elapsed = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[np.r_[0, cuts] - 1] * (np.r_[0, cuts] > 0),
                                              np.diff(np.r_[0, cuts, n_views]))  # fmt: skip
        when = begins[in_session] + elapsed
        _add(out, user, viewed, 0, when, session + in_session)
        clicked = rng.random(n_views) < 0.085
        _add(out, user, viewed[clicked], 1, when[clicked] + 5, session + in_session[clicked])
        # the more often an item was viewed so far, the likelier it goes to the cart
        times_viewed = ((viewed[:, None] == viewed[None, :]) & np.tri(n_views, dtype=bool)).sum(axis=1)
        carted = rng.random(n_views) < 0.004 * times_viewed
        _add(out, user, viewed[carted], 2, when[carted] + 8, session + in_session[carted])
        bought = carted & (rng.random(n_views) < 0.7)
        _add(out, user, viewed[bought], 3, when[bought] + 60, session + in_session[bought])
        session += n_sessions
    return out, items, n_users


def _new_releases(rng: np.random.Generator, scale: float, t0: int) -> tuple[EventRows, pd.DataFrame, int]:
    n_users, n_old, per_day, n_days = round(1200 * scale), 500, 10, 60
    n_items = n_old + per_day * n_days
    released = np.r_[
        t0 - rng.integers(20, 400, n_old) * DAY,
        t0 + np.arange(per_day * n_days) // per_day * DAY + rng.integers(0, DAY // 2, per_day * n_days),
    ]
    items = _catalogue(rng, n_items, 36, released)
    base = rng.lognormal(0.0, 1.0, n_items)
    vectors, tastes = rng.normal(size=(n_items, DIM)), rng.normal(size=(n_users, DIM))
    affinity = 0.8 * tastes @ vectors.T / np.sqrt(DIM)
    rate = rng.lognormal(np.log(0.12), 0.6, n_users)  # sessions per day
    out: EventRows = ([], [], [], [], [])
    session = 0
    for day in range(n_days):
        noon = t0 + day * DAY + DAY // 2  # a day's shoppers see what was released by its middle
        age = np.maximum(noon - released, 0) / DAY
        hot = np.where(released <= noon, base * (0.1 + 3.0 * np.exp(-age / 5.0)), 0.0)
        active = np.flatnonzero(rng.random(n_users) < rate)
        appeal = np.log(hot + 1e-12)[None, :] + affinity[active] + rng.gumbel(size=(len(active), n_items))
        looked = np.argsort(-appeal, axis=1)[:, :8]
        keep = np.arange(8)[None, :] < rng.integers(2, 9, len(active))[:, None]
        users = np.broadcast_to(active[:, None], looked.shape)[keep]
        sessions = session + np.broadcast_to(np.arange(len(active))[:, None], looked.shape)[keep]
        begin = noon + rng.integers(0, DAY // 2 - 3600, len(active))
        when = (begin[:, None] + 60 * np.arange(8)[None, :])[keep]
        items_looked = looked[keep]
        bought = rng.random(len(users)) < 0.2
        for code, mask, at in ((0, np.ones_like(bought), when), (3, bought, when + 30)):
            for column, values in zip(out, (users[mask], items_looked[mask], np.full(int(mask.sum()), code),
                                            at[mask], sessions[mask]), strict=True):  # fmt: skip
                column.append(np.asarray(values, dtype=np.int64))
        session += len(active)
    return out, items, n_users


REGIMES: dict[str, Callable[[np.random.Generator, float, int], tuple[EventRows, pd.DataFrame, int]]] = {
    "dense_repeat": _dense_repeat,
    "sparse_views": _sparse_views,
    "new_releases": _new_releases,
}


def _add(out: EventRows, user: int, items: np.ndarray, kind: int, when: np.ndarray, session: Any) -> None:
    """One user's events of one kind; ``session`` per event or one for all."""
    if len(items):
        n = len(items)
        for column, values in zip(out, (np.full(n, user), items, np.full(n, kind), when,
                                        np.broadcast_to(session, n)), strict=True):  # fmt: skip
            column.append(np.asarray(values, dtype=np.int64))


def _write(
    out_dir: Path,
    regime: str,
    events: EventRows,
    items: pd.DataFrame,
    n_users: int,
    rng: np.random.Generator,
    seed: int,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    user, item, kind, when, session = (np.concatenate(column) for column in events)
    order = np.lexsort((kind, when))
    user, item, kind, when, session = user[order], item[order], kind[order], when[order], session[order]
    bought = kind == 3
    prices = items["price"].to_numpy()
    frame = pd.DataFrame(
        {
            "user_id": np.array(_ids("u", n_users))[user],
            "item_id": items["item_id"].to_numpy()[item],
            "event_type": np.array(KINDS)[kind],
            "timestamp": pd.to_datetime(when, unit="s", utc=True).strftime(ISO_SECONDS),
            "session_id": [f"s{number}" for number in session],
            "quantity": pd.Series(np.ones(len(kind), dtype=np.int64), dtype="Int64").where(bought),
            "price": pd.Series(prices[item]).where(bought),
        }
    )
    frame.to_csv(out_dir / "interactions.csv", index=False)
    items.drop(columns="_type").to_csv(out_dir / "items.csv", index=False)
    countries = np.array(["GB", "DE", "FR", "US"])[rng.integers(0, 4, n_users)]
    pd.DataFrame({"user_id": _ids("u", n_users), "country": countries}).to_csv(
        out_dir / "users.csv", index=False
    )
    return {
        "regime": regime,
        "rows": len(frame),
        "events": {name: int((kind == code).sum()) for code, name in enumerate(KINDS)},
        "users": len(np.unique(user)),
        "items": len(items),
        "span": [_iso(when.min()), _iso(when.max())],
        "seed": seed,
        "out_dir": str(out_dir),
    }


def _zipf(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.permutation(n) + 1.0) ** -1.1


def _ids(prefix: str, n: int) -> list[str]:
    width = max(5, len(str(n)))
    return [f"{prefix}{k:0{width}d}" for k in range(1, n + 1)]


def _iso(epoch_seconds: Any) -> str:
    return pd.Timestamp(int(epoch_seconds), unit="s", tz="UTC").strftime(ISO_SECONDS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a regime's shop in the training-channel contract.")
    parser.add_argument("--regime", choices=sorted(REGIMES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiplies the shoppers (and above 1 the items of sparse_views)",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(json.dumps(generate(args.regime, args.out, args.scale, args.seed), indent=2))


if __name__ == "__main__":
    main()
