"""Item-to-item co-occurrence: "also viewed" (items in the same shopper's history) and "bought together"
(items in the same basket), each kept as the top neighbours of every item.

The similarity is cosine over groups (a group is a shopper or a basket): ``c_ij / sqrt(n_i n_j)`` with
``c_ij`` the summed weight of the groups holding both items. Only the ``top_n`` strongest neighbours of each
item are kept, so serving holds ``n_items * top_n`` floats whatever the traffic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

BLOCK_ITEMS = 1024  # item rows per block of X'X: bounds the memory of the product on large catalogs


@dataclass(frozen=True)
class Neighbours:
    """CSR rows: for item row i, ``indices[indptr[i]:indptr[i+1]]`` are its neighbours, strongest first."""

    indptr: np.ndarray
    indices: np.ndarray
    similarity: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.indptr) - 1

    def matrix(self) -> csr_matrix:
        return csr_matrix((self.similarity, self.indices, self.indptr), shape=(self.n_items, self.n_items))

    def of(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        start, end = int(self.indptr[row]), int(self.indptr[row + 1])
        return self.indices[start:end], self.similarity[start:end]

    def scores(self, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """float64 (n_items,): sum over the given item rows of weight x similarity to every item."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.zeros(self.n_items, dtype=np.float64)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        neighbours = np.concatenate([self.indices[a:b] for a, b in zip(starts, ends, strict=True)])
        contributions = np.concatenate(
            [
                weight * self.similarity[a:b].astype(np.float64)
                for a, b, weight in zip(starts, ends, np.asarray(weights, dtype=np.float64), strict=True)
            ]
        )
        return np.bincount(neighbours, weights=contributions, minlength=self.n_items)

    def sparse_scores(self, rows: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``scores`` on the items it gives a score only: (item rows ascending, int64; their float64 sums).
        Its cost follows the rows' neighbours, never the catalogue's size (serving, on every request)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        # the neighbours' positions in ``indices``, every row's slice one after the other, without a loop
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
        contributions = np.repeat(np.asarray(weights, dtype=np.float64), lengths) * self.similarity[offsets]
        return sum_by_row(self.indices[offsets], contributions)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}_indptr": self.indptr,
            f"{prefix}_indices": self.indices,
            f"{prefix}_similarity": self.similarity,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> Neighbours:
        return cls(
            indptr=np.asarray(arrays[f"{prefix}_indptr"], dtype=np.int64),
            indices=np.asarray(arrays[f"{prefix}_indices"], dtype=np.int32),
            similarity=np.asarray(arrays[f"{prefix}_similarity"], dtype=np.float32),
        )

    @classmethod
    def empty(cls, n_items: int) -> Neighbours:
        return cls(np.zeros(n_items + 1, np.int64), np.empty(0, np.int32), np.empty(0, np.float32))


def sum_by_row(rows: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique rows ascending, int64; the float64 sum of ``values`` of each)."""
    unique, inverse = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
    return unique, np.bincount(inverse, weights=np.asarray(values, dtype=np.float64), minlength=len(unique))


def fit_neighbours(
    groups: np.ndarray, rows: np.ndarray, weights: np.ndarray, n_items: int, top_n: int
) -> Neighbours:
    """Top-``top_n`` cosine neighbours of every item from (group, item row, weight) triples.

    ``groups`` are integer group ids; repeated (group, item) pairs are summed.
    """
    groups = np.asarray(groups, dtype=np.int64)
    if len(groups) == 0:
        return Neighbours.empty(n_items)
    n_groups = int(groups.max()) + 1
    membership = csr_matrix(
        (np.asarray(weights, dtype=np.float64), (groups, np.asarray(rows, dtype=np.int64))),
        shape=(n_groups, n_items),
    )
    membership.sum_duplicates()
    # a group touching one item says nothing about pairs: drop it before the product
    per_group = np.diff(membership.indptr)
    membership = membership[per_group > 1]
    norms = np.sqrt(np.asarray(membership.multiply(membership).sum(axis=0)).ravel())
    columns = membership.tocsc()
    transposed = membership.T.tocsr()

    indptr = np.zeros(n_items + 1, dtype=np.int64)
    indices_parts: list[np.ndarray] = []
    similarity_parts: list[np.ndarray] = []
    for start in range(0, n_items, BLOCK_ITEMS):
        stop = min(start + BLOCK_ITEMS, n_items)
        block = (transposed[start:stop] @ columns).tocsr()  # items [start, stop) x all items
        for local in range(stop - start):
            item = start + local
            begin, end = block.indptr[local], block.indptr[local + 1]
            others = block.indices[begin:end]
            counts = block.data[begin:end]
            keep = others != item
            others, counts = others[keep], counts[keep]
            if len(others) == 0:
                indptr[item + 1] = indptr[item]
                continue
            similarity = counts / (norms[item] * norms[others])
            # strongest first; equal similarity -> lower row first, so the same data gives the same file
            order = np.lexsort((others, -similarity))[:top_n]
            indices_parts.append(others[order].astype(np.int32))
            similarity_parts.append(similarity[order].astype(np.float32))
            indptr[item + 1] = indptr[item] + len(order)
    return Neighbours(
        indptr=indptr,
        indices=np.concatenate(indices_parts) if indices_parts else np.empty(0, np.int32),
        similarity=np.concatenate(similarity_parts) if similarity_parts else np.empty(0, np.float32),
    )
