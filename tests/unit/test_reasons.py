"""The page's "because you viewed X" / "bought with X" reasons: the link tables read once per page give the
same reasons as the plain reference, one neighbour lookup per served item and recent item."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from merchandiser.catalog import ItemModel
from merchandiser.reranking import reasons_from_recent
from merchandiser.reranking.explain import REASON_NEIGHBOURS, RECENT_FOR_REASONS, RULE_PLACED
from merchandiser.reranking.rules import Scored
from merchandiser.serving import Model
from merchandiser.shopper import UserState


def reference(model: ItemModel, state: UserState, page: Sequence[Scored]) -> dict[str, str]:
    """For each served item, every recent item's closest neighbours, baskets first (the former loop)."""
    recent = state.recent[:RECENT_FOR_REASONS]
    reasons = {}
    for item in page:
        row = model.catalog.row_of.get(item.item_id)
        if row is None or item.source in RULE_PLACED:
            continue
        best = None
        for neighbours, verb in ((model.signals.bought_together, "bought with"),
                                 (model.signals.also_viewed, "because you viewed")):  # fmt: skip
            for source_row in recent:
                rows, similarity = neighbours.of(source_row)
                hits = np.flatnonzero(rows[:REASON_NEIGHBOURS] == row)
                if len(hits) and (best is None or float(similarity[hits[0]]) > best[0]):
                    best = (float(similarity[hits[0]]), source_row, verb)
            if best is not None:
                break
        if best is not None:
            reasons[item.item_id] = f"{best[2]} {model.catalog.titles[best[1]]}"
    return reasons


def test_reasons_match_the_reference_for_many_shoppers(model_dir: Path) -> None:
    # Given the tiny shop's model and shoppers whose latest items have co-occurrence neighbours
    items = Model.load(model_dir).items
    rng = np.random.default_rng(7)
    explained = 0
    for _ in range(200):
        recent = [
            int(row) for row in rng.choice(len(items.catalog), size=int(rng.integers(1, 12)), replace=False)
        ]
        state = UserState(vector=None, history={}, recent=recent, purchased=frozenset())
        # a page of the recent items' neighbours, other items and one rule-placed item
        candidates = {int(r) for s in recent[:3] for r in items.signals.also_viewed.of(s)[0][:5]}
        candidates |= {int(r) for r in rng.choice(len(items.catalog), size=10, replace=False)}
        page = [Scored(str(items.catalog.item_ids[r]), 1.0, "ann") for r in sorted(candidates)]
        page.append(Scored(str(items.catalog.item_ids[recent[0]]), 1.0, "promoted"))
        # When both explain the page, Then they agree on every item
        expected = reference(items, state, page)
        assert reasons_from_recent(items, state, page) == expected
        explained += len(expected)
    assert explained > 100  # the comparison covered real links, not empty pages
