"""Which new items the exploration slots show: Thompson sampling over each item's Beta posterior.

Each request draws a click rate for every item of the pool from Beta(1 + clicks, 1 + impressions -
clicks) (the counts of ``ItemModel.exploration``, kept by the event processor) and the slots take the
highest draws. An item never shown draws from Beta(1, 1), uniform: new items get their first impressions
at once; one that earns clicks draws high more often; one shown often without clicks draws low and makes
room. The generator is seeded from the request's own seed (the recommendation id in serving), so a
page can be replayed from its id; sha256 and not ``hash()`` because Python salts string hashes per process.

``uniform`` is the choice before Thompson sampling (a pseudo-random order from the seed, every item alike),
kept for comparison: an experiment variant can pin it with ``rules: {"explore_policy": "uniform"}``.
"""

from __future__ import annotations

import hashlib

import numpy as np

from merchandiser.catalog import SECONDS_PER_DAY, ItemModel

THOMPSON = "thompson"
UNIFORM = "uniform"
EXPLORE_POLICIES = (THOMPSON, UNIFORM)


def request_rng(seed: str) -> np.random.Generator:
    """A generator fixed by ``seed``: the same seed draws the same numbers in every process."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))


def thompson_draws(model: ItemModel, rows: np.ndarray, seed: str) -> np.ndarray:
    """One click rate per row drawn from its posterior, in ``rows`` order."""
    exploration = model.exploration
    rows = np.asarray(rows, dtype=np.int64)
    return request_rng(seed).beta(exploration.alpha[rows], exploration.beta[rows])


def thompson_head(model: ItemModel, rows: np.ndarray, seed: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` rows of ``rows`` with the highest Thompson draws, best first, and their draws: the same law
    as ``thompson_draws`` over every row, at a cost that follows the rows already shown and ``n``, never the
    pool's size (a large catalogue's pool holds hundreds of thousands of new items).

    The rows never shown all draw from Beta(1, 1), the uniform law: of ``m`` such draws only the ``n``
    largest can reach the head, and they are drawn directly, as descending order statistics (the largest of
    ``m`` uniforms is ``W ** (1 / m)``, the next that times ``W' ** (1 / (m - 1))``, ...), each held by one of
    ``n`` rows taken at random without replacement."""
    exploration = model.exploration
    rows = np.asarray(rows, dtype=np.int64)
    rng = request_rng(seed)
    alpha, beta = exploration.alpha[rows], exploration.beta[rows]
    fresh = (alpha == 1.0) & (beta == 1.0)
    shown = rows[~fresh]
    shown_draws = rng.beta(alpha[~fresh], beta[~fresh])
    unseen = rows[fresh]
    taken = min(n, len(unseen))
    spacings = np.log(rng.random(taken)) / np.arange(len(unseen), len(unseen) - taken, -1)
    unseen_draws = np.exp(np.cumsum(spacings))
    unseen_rows = unseen[rng.choice(len(unseen), taken, replace=False)] if taken else unseen[:0]
    head_rows = np.concatenate([shown, unseen_rows])
    head_draws = np.concatenate([shown_draws, unseen_draws])
    best = np.argsort(-head_draws, kind="stable")[:n]
    return head_rows[best], head_draws[best]


def new_item_rows(model: ItemModel, now: float, max_age_days: float) -> np.ndarray:
    """The exploration pool: rows without interaction signal (zero popularity) created (or taken in by the
    catalogue overlay) within ``max_age_days``, neither graduated nor faded."""
    created = np.asarray(model.catalog.created_at, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # an unknown creation time (NaN) is not new
        young = created >= now - max_age_days * SECONDS_PER_DAY
    pool = young & (np.asarray(model.popularity) == 0) & ~model.exploration.judged
    return np.flatnonzero(pool).astype(np.int64)
