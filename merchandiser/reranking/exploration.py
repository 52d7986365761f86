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
import operator
from collections.abc import Callable
from typing import cast

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
    ``n`` rows taken at random without replacement. Which rows were shown is worked out once per pool and
    posteriors (``memo``), not on every page."""
    shown, alpha, beta, unseen = memo(
        model, "_thompson_split", (rows, model.exploration), lambda: _shown_and_unseen(model, rows)
    )
    rng = request_rng(seed)
    shown_draws = rng.beta(alpha, beta)
    taken = min(n, len(unseen))
    spacings = np.log(rng.random(taken)) / np.arange(len(unseen), len(unseen) - taken, -1)
    unseen_draws = np.exp(np.cumsum(spacings))
    unseen_rows = unseen[rng.choice(len(unseen), taken, replace=False)] if taken else unseen[:0]
    head_rows = np.concatenate([shown, unseen_rows])
    head_draws = np.concatenate([shown_draws, unseen_draws])
    best = np.argsort(-head_draws, kind="stable")[:n]
    return head_rows[best], head_draws[best]


def _shown_and_unseen(
    model: ItemModel, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rows already shown, with their posteriors' parameters, and the rows never shown."""
    rows = np.asarray(rows, dtype=np.int64)
    alpha, beta = model.exploration.alpha[rows], model.exploration.beta[rows]
    fresh = (alpha == 1.0) & (beta == 1.0)
    split = (rows[~fresh], alpha[~fresh], beta[~fresh], rows[fresh])
    for part in split:
        part.flags.writeable = False  # shared by the pages that follow
    return split


def new_item_rows(model: ItemModel, now: float, max_age_days: float) -> np.ndarray:
    """The exploration pool: rows without interaction signal (zero popularity) created (or taken in by the
    catalogue overlay) within ``max_age_days``, neither graduated nor faded; ascending."""
    pool = memo(
        model,
        "_new_item_pool",
        (model.exploration, model.catalog, model.popularity),
        lambda: NewItemPool(model),
    )
    return pool.young(now - max_age_days * SECONDS_PER_DAY)


class NewItemPool:
    """The rows that may explore, before their age is known: without interaction signal, neither graduated
    nor faded, of a known creation time (ascending), computed once per model and posteriors. A page then
    needs only the ones young enough, which change when an item crosses the age limit, seldom: a binary
    search over the sorted creation times tells, without scanning the catalogue on every page."""

    def __init__(self, model: ItemModel) -> None:
        created = np.asarray(model.catalog.created_at, dtype=np.float64)
        with np.errstate(invalid="ignore"):  # an unknown creation time (NaN) is never new
            candidate = (np.asarray(model.popularity) == 0) & ~model.exploration.judged & ~np.isnan(created)
        self.rows = np.flatnonzero(candidate).astype(np.int64)
        self.created = created[self.rows]
        self.sorted_created = np.sort(self.created)
        self._young: tuple[int, np.ndarray] | None = None

    def young(self, cutoff: float) -> np.ndarray:
        """The rows created at ``cutoff`` or later. The sets for two cutoffs are nested, so equal counts mean
        the same rows: the array of the previous call is returned again (the same object, which lets the
        pages' later steps keep what they derived from it)."""
        count = len(self.sorted_created) - int(np.searchsorted(self.sorted_created, cutoff, side="left"))
        held = self._young
        if held is None or held[0] != count:
            young = self.rows[self.created >= cutoff]
            young.flags.writeable = False  # shared by the pages that follow
            held = self._young = (count, young)
        return held[1]


def memo[T](owner: object, name: str, key: tuple[object, ...], compute: Callable[[], T]) -> T:
    """``compute()``, kept on ``owner`` under ``name`` until an object of ``key`` is replaced (compared by
    identity: a new posteriors refresh, a new pool array). One value per name; a shallow copy of ``owner``
    (``catalog.with_exploration``) shares it until its key no longer matches."""
    held = owner.__dict__.get(name)
    if held is not None and len(held[0]) == len(key) and all(map(operator.is_, held[0], key)):
        return cast(T, held[1])
    value = compute()
    owner.__dict__[name] = (key, value)
    return value
