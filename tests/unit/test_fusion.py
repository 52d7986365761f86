"""The evaluation's unlearned union (reciprocal rank fusion) against its definition, term by term."""

from __future__ import annotations

import numpy as np

from merchandiser.retrieval import Proposal
from training.evaluation import RRF_K, fuse


def fused_by_definition(
    proposals: dict[str, Proposal], exclude: frozenset[int], k: int, tie: np.ndarray
) -> list[int]:
    fused: dict[int, float] = {}
    for proposal in proposals.values():
        for rank, row in enumerate(proposal.rows.tolist()):
            if row not in exclude:
                fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(fused, key=lambda row: (-fused[row], int(tie[row])))[:k]


def test_the_fusion_is_the_sum_of_reciprocal_ranks_best_first_ties_by_the_tie_order() -> None:
    rng = np.random.default_rng(5)
    for trial in range(100):
        # Given sources that propose overlapping rows (some of them excluded), and a tie order
        sizes = rng.integers(0, 120, int(rng.integers(0, 6)))
        proposals = {
            f"s{source}": Proposal(rng.permutation(300)[:size].astype(np.int64), np.zeros(size))
            for source, size in enumerate(sizes.tolist())
        }
        exclude = frozenset(rng.integers(0, 300, int(rng.integers(0, 10))).tolist())
        tie = rng.permutation(300)
        k = int(rng.integers(1, 80))
        # Then the fused list is the definition's, in the same order
        assert fuse(proposals, exclude, k, tie) == fused_by_definition(proposals, exclude, k, tie), trial
