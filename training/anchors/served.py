"""A personal anchor a model serves (its fallback, ``merchandiser.reranking.fallback``): the item-item
weights of a tuned item-kNN or RP3beta on a window as the model's neighbour table, and that anchor's own
NDCG@10 on given shoppers (what the job's fallback compares the pipeline's page with).

Both fit the anchor as its search does (``families``), equal weights at the pruning border kept by the
window's tie order (latest event, then newest item: ``ranking.tie_ranks`` without popularity); the table
keeps at most ``TABLE_NEIGHBOURS`` weights per giving item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from merchandiser.catalog import Catalog, Neighbours
from training.anchors.families import ITEM_WEIGHTS, NEIGHBOUR_FAMILIES, Params, family
from training.anchors.neighbours import keep_largest, weights_table
from training.anchors.ranking import tie_ranks
from training.anchors.window import Window, window_of
from training.metrics import ndcg_at_k

K = 10
# The weights an item gives kept in a served table: as many as its co-view neighbours (``also_viewed``), so
# serving holds at most n_items x 100 of them whatever the tuned neighbours (item-kNN prunes per target, so
# one item may give to many; RP3beta's rows hold at most its neighbours already). The fallback scores the
# capped table on validation, so what it chose is what is served.
TABLE_NEIGHBOURS = 100


def served_window(events: pd.DataFrame, catalog: Catalog, now: float) -> Window:
    """The events before ``now`` (epoch s) as the anchors read them."""
    return window_of(events, catalog, now)


def anchor_table(window: Window, anchor: str, params: Params, per_item: int = TABLE_NEIGHBOURS) -> Neighbours:
    """The ``anchor``'s W on ``window``: row i the ``per_item`` largest weights item i gives the others."""
    if anchor not in NEIGHBOUR_FAMILIES:
        raise ValueError(f"{anchor!r} is not an item-item anchor: one of {', '.join(NEIGHBOUR_FAMILIES)}")
    ranks = _ranks(window)
    return weights_table(keep_largest(ITEM_WEIGHTS[anchor](window, params, ranks), per_item, ranks))


def anchor_ndcg(
    window: Window, anchor: str, params: Params, users: Sequence[str], relevant: Mapping[str, set[int]]
) -> float:
    """Mean NDCG@10 of the ``anchor``'s own top 10 (what it bought in the window never) over ``users``."""
    if not users:
        return 0.0
    lists = family(anchor).fit(window, params, _ranks(window)).recommend(list(users), K)
    return float(np.mean([ndcg_at_k(lists[user], relevant[user], K) for user in users]))


def _ranks(window: Window) -> np.ndarray:
    return tie_ranks(None, window.last_seen(), window.created_at)
