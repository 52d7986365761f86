"""One contract over every registered candidate source, on a tiny shop whose answers are known by hand
(as implicit's ``RecommenderBaseTestMixin`` runs one contract over every model)."""

from __future__ import annotations

import numpy as np
import pytest

from merchandiser.catalog import (
    Catalog,
    ExplorationPolicy,
    ItemModel,
    Neighbours,
    Signals,
    exploration_of,
    with_exploration,
)
from merchandiser.retrieval import SOURCE_NAMES, SOURCES, Ask, Source, build_index
from merchandiser.shopper import UserState
from merchandiser.store import Posterior

N_ITEMS = 10
PURCHASED = frozenset({0})
K = 3


def neighbours(pairs: dict[int, list[tuple[int, float]]]) -> Neighbours:
    """Hand-written neighbour lists (strongest first) as the CSR rows the model stores."""
    indptr, indices, similarity = [0], [], []
    for row in range(N_ITEMS):
        for neighbour, weight in pairs.get(row, []):
            indices.append(neighbour)
            similarity.append(weight)
        indptr.append(len(indices))
    return Neighbours(np.array(indptr), np.array(indices, np.int32), np.array(similarity, np.float32))


def tiny_shop() -> ItemModel:
    """Items 0-4 are shoes, 5-9 hats; item 9 is new (placed by its attributes); x-axis taste = shoes."""
    categories = np.array(["shoes"] * 5 + ["hats"] * 5)
    catalog = Catalog(
        item_ids=np.array([f"i{row}" for row in range(N_ITEMS)]),
        titles=np.array([f"Item {row}" for row in range(N_ITEMS)]),
        categories=categories,
        brands=np.array(["b"] * N_ITEMS),
        prices=np.full(N_ITEMS, 10.0),
        created_at=np.zeros(N_ITEMS),
        in_stock=np.ones(N_ITEMS, bool),
    )
    # shoes lean to the x axis, more so the lower the row; hats to the y axis
    factors = np.array(
        [[1.0 - 0.1 * row, 0.1] for row in range(5)] + [[0.1, 1.0 - 0.1 * (row - 5)] for row in range(5, 10)],
        dtype=np.float32,
    )
    popularity = np.array([9, 8, 7, 6, 5, 10, 4, 3, 2, 0], dtype=np.float32)
    placed = np.zeros(N_ITEMS, bool)
    placed[9] = True
    signals = Signals(
        trending=np.array([0, 0, 0, 5, 0, 0, 6, 0, 1, 0], dtype=np.float32),
        also_viewed=neighbours({0: [(2, 0.9), (0, 0.5), (7, 0.1)], 1: [(3, 0.8)]}),
        bought_together=neighbours({1: [(4, 0.7), (0, 0.6), (8, 0.2)]}),
        placed=placed,
        segments={"country=north": np.array([0, 0, 0, 0, 0, 0, 0, 0, 3, 0], dtype=np.float32)},
        recent_popularity=np.array([0, 0, 4, 0, 0, 0, 0, 2, 0, 0], dtype=np.float32),
        # a served personal anchor's weights: what each item gives the others
        item_anchor=neighbours({0: [(3, 0.7), (5, 0.2)], 1: [(2, 0.4), (5, 0.1)], 6: [(7, 0.9)]}),
    )
    manifest = {"model_version": "tiny", "als": {"regularization": 0.05, "alpha": 1.0}}
    model = ItemModel(manifest, catalog, factors, popularity, build_index(factors, seed=1), signals)
    # exploration graduated items 0 (bought by the shopper), 9 and 7, in that order of click rate; 3 faded
    posteriors = {
        "i0": Posterior(100, 30),
        "i9": Posterior(100, 20),
        "i7": Posterior(60, 6),
        "i3": Posterior(500, 1),
    }
    return with_exploration(model, exploration_of(catalog, posteriors, ExplorationPolicy(0.05, 50, 500)))


def shopper() -> UserState:
    """A shoes shopper who bought item 0 and last looked at item 1."""
    return UserState(
        vector=np.array([1.0, 0.0], dtype=np.float32),
        history={0: 3.0, 1: 1.0},
        recent=[1],
        purchased=PURCHASED,
        segments=("country=north",),
    )


# The best row each source proposes to ``shopper`` on ``tiny_shop`` at k=3, worked out by hand.
KNOWN_FIRST = {
    "ann": 1,  # the highest x of the shoes, item 0 bought
    "also_viewed": 2,  # 0's strongest neighbour (0.9 x 3/4 of the history weight)
    "bought_together": 4,  # the recent item 1's basket neighbour
    "recent_views": 1,  # the latest item itself (1.0), before its co-viewed item 3 (0.8)
    "content": 9,  # the only item placed by its attributes
    "graduated": 9,  # the best click rate among the graduates, item 0 bought
    "trending": 6,
    "recent_popularity": 2,
    "popularity": 8,  # the shopper's segment, north, has bought only item 8
    "item_anchor": 3,  # 0.7 from item 0 of the history, before 2 (0.4 from 1) and 5 (0.2 + 0.1)
}


@pytest.fixture(scope="module")
def items() -> ItemModel:
    return tiny_shop()


def test_the_registry_names_each_source_once_with_a_share_and_a_reason() -> None:
    assert len(set(SOURCE_NAMES)) == len(SOURCES)
    assert all(0 <= source.share <= 1 and source.reason for source in SOURCES)
    # every source has places by default but the served anchor's, which its training job gives places
    # when it serves it (it proposes nothing otherwise); that one is no ranker feature either
    assert {source.name for source in SOURCES if source.share == 0} == {"item_anchor"}
    assert [source.name for source in SOURCES if not source.ranked] == ["item_anchor"]
    assert sum(source.share for source in SOURCES) == pytest.approx(1.0)


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_NAMES)
def test_a_source_proposes_at_most_k_unique_known_items_never_the_excluded(
    source: Source, items: ItemModel
) -> None:
    # Given a shopper who bought item 0 / When the source proposes k items
    proposal = source.propose(items, shopper(), Ask.of(items, K))
    # Then it proposes something, at most k unique rows of the catalogue, best first, without item 0
    assert proposal is not None and 0 < len(proposal.rows) <= K
    rows = proposal.rows.tolist()
    assert len(set(rows)) == len(rows) and all(0 <= row < N_ITEMS for row in rows)
    assert not PURCHASED & set(rows)
    assert np.all(np.diff(proposal.scores) <= 0)


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_NAMES)
def test_a_source_is_deterministic(source: Source) -> None:
    # Given two models built from the same data and seed / Then the same proposals, row for row
    first = source.propose(tiny_shop(), shopper(), Ask.of(tiny_shop(), K))
    second = source.propose(tiny_shop(), shopper(), Ask.of(tiny_shop(), K))
    assert first is not None and second is not None
    assert first.rows.tolist() == second.rows.tolist()
    np.testing.assert_array_equal(first.scores, second.scores)


@pytest.mark.parametrize("source", SOURCES, ids=SOURCE_NAMES)
def test_a_source_asked_for_a_category_stays_in_it(source: Source, items: ItemModel) -> None:
    proposal = source.propose(items, shopper(), Ask.of(items, K, category="hats"))
    if proposal is not None:
        assert set(items.catalog.categories[proposal.rows].tolist()) <= {"hats"}


@pytest.mark.parametrize("name", sorted(KNOWN_FIRST))
def test_each_source_puts_its_known_best_first(name: str, items: ItemModel) -> None:
    source = SOURCES[SOURCE_NAMES.index(name)]
    proposal = source.propose(items, shopper(), Ask.of(items, K))
    assert proposal is not None and int(proposal.rows[0]) == KNOWN_FIRST[name]


def test_a_shopper_with_nothing_known_gets_only_the_impersonal_sources(items: ItemModel) -> None:
    nobody = UserState(vector=None, history={}, recent=[], purchased=frozenset())
    proposing = {s.name for s in SOURCES if s.propose(items, nobody, Ask.of(items, K)) is not None}
    assert proposing == {s.name for s in SOURCES if not s.personal}
