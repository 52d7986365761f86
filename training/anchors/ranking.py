"""Every tuned anchor's top k: best score first, ties broken by a meaningful order, never by item id.

Equal scores are common: a new shopper's row of an item-item model is all zeros, popularity over a short
window is zero for most of the catalogue, counts tie. Ties go to the item with the higher recent
popularity, then to the one touched most recently, then to the newer item; only items alike in all of
these fall back to a seeded shuffle, so neither the item id nor the catalogue's insertion order ever
decides a place.

``top_k`` is the vectorized path (one partition and one cumulative sum per batch, a sort of only the k
kept per row); ``top_k_reference`` is the plain Python definition it must equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from training.anchors.window import Window

SHUFFLE_SEED = 7
BATCH_USERS = 256  # users scored at once: (256, items) float64 stays small on a 50k catalogue

# Scores of every catalogue row for a batch of window matrix rows: float (len(rows), n_items).
Scorer = Callable[[np.ndarray], np.ndarray]


def tie_ranks(
    recent_popularity: np.ndarray | None,
    last_seen: np.ndarray,
    created_at: np.ndarray,
    seed: int = SHUFFLE_SEED,
) -> np.ndarray:
    """int64 (items,): each item's place among equal scores (0 goes first): higher recent popularity,
    then later last event, then later creation (unknown counts as oldest), then a seeded shuffle."""
    n_items = len(last_seen)
    shuffle = np.random.default_rng(seed).permutation(n_items)
    created = np.nan_to_num(np.asarray(created_at, dtype=np.float64), nan=-np.inf)
    keys = [shuffle, -created, -np.asarray(last_seen, dtype=np.float64)]
    if recent_popularity is not None:
        keys.append(-np.asarray(recent_popularity, dtype=np.float64))
    order = np.lexsort(keys)  # the last key is the primary one
    ranks = np.empty(n_items, dtype=np.int64)
    ranks[order] = np.arange(n_items)
    return ranks


def top_k(scores: np.ndarray, excluded: csr_matrix | None, ranks: np.ndarray, k: int) -> list[np.ndarray]:
    """Per row of ``scores``, the best ``k`` columns (excluded and non-finite ones never), ties by ``ranks``.

    Columns are laid out in tie order first, so among the scores equal to a row's k-th best, the first
    ones in that layout are the ones to keep: a cumulative count picks them without sorting the row.
    """
    by_rank = np.argsort(ranks, kind="stable")
    laid = np.array(np.asarray(scores, dtype=np.float64)[:, by_rank])
    if excluded is not None:
        lines, columns = excluded.nonzero()
        laid[lines, np.argsort(by_rank)[columns]] = -np.inf
    laid[~np.isfinite(laid)] = -np.inf
    n_rows, n_columns = laid.shape
    k = min(k, n_columns)
    if k <= 0 or n_rows == 0:
        return [np.empty(0, dtype=np.int64) for _ in range(n_rows)]
    kth = -np.partition(-laid, k - 1, axis=1)[:, k - 1 : k]
    above = laid > kth
    tied = laid == kth
    room = k - above.sum(axis=1, keepdims=True)
    kept = (above | (tied & (np.cumsum(tied, axis=1) <= room))) & np.isfinite(laid)
    lines, positions = np.nonzero(kept)  # row-major: positions ascend within a line, i.e. tie order
    order = np.lexsort((positions, -laid[lines, positions], lines))
    lines, positions = lines[order], positions[order]
    cuts = np.searchsorted(lines, np.arange(1, n_rows))
    return [by_rank[part] for part in np.split(positions, cuts)]


def top_k_reference(
    scores: np.ndarray, excluded: csr_matrix | None, ranks: np.ndarray, k: int
) -> list[np.ndarray]:
    """``top_k`` by definition: sort each row's allowed finite columns by (-score, rank)."""
    dense_excluded = np.zeros(scores.shape, dtype=bool) if excluded is None else excluded.toarray()
    result = []
    for line, banned in zip(np.asarray(scores, dtype=np.float64), dense_excluded, strict=True):
        allowed = [c for c in range(len(line)) if not banned[c] and np.isfinite(line[c])]
        best = sorted(allowed, key=lambda column: (-line[column], ranks[column]))[:k]
        result.append(np.array(best, dtype=np.int64))
    return result


@dataclass(frozen=True)
class Recommender:
    """A fitted anchor: personal ``scorer`` over the window's matrix rows, or one ``static`` score vector.

    Users without events in the window get a row of zeros from a personal anchor, hence the tie order:
    recent popularity. What a user bought in the window is never recommended.
    """

    window: Window
    ranks: np.ndarray
    scorer: Scorer | None = None
    static: np.ndarray | None = None

    def recommend(self, users: Sequence[str], k: int) -> dict[str, list[int]]:
        row_of = self.window.row_of()
        purchased = self.window.purchased()
        known = [user for user in users if user in row_of]
        result: dict[str, list[int]] = {}
        if self.scorer is None:
            static = np.zeros(self.window.n_items) if self.static is None else self.static
            order = np.lexsort((self.ranks, -static))
            most_bought = int(purchased.getnnz(axis=1).max(initial=0))
            head = order[: k + most_bought]
            for user in known:
                bought = purchased.indices[
                    purchased.indptr[row_of[user]] : purchased.indptr[row_of[user] + 1]
                ]
                result[user] = head[~np.isin(head, bought)][:k].tolist()
            cold = order[:k].tolist()
        else:
            for start in range(0, len(known), BATCH_USERS):
                chunk = known[start : start + BATCH_USERS]
                rows = np.array([row_of[user] for user in chunk], dtype=np.int64)
                best = top_k(self.scorer(rows), purchased[rows], self.ranks, k)
                result.update((user, line.tolist()) for user, line in zip(chunk, best, strict=True))
            cold = top_k(np.zeros((1, self.window.n_items)), None, self.ranks, k)[0].tolist()
        return {user: result.get(user, cold) for user in users}
