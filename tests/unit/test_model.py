"""The serving model: a tiny model dir trained by the training modules, loaded as serving loads it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from merchandiser import ranking, retrieval
from merchandiser.retrieval import SOURCE_NAMES
from merchandiser.serving import Model
from merchandiser.shopper import user_state
from merchandiser.store import INDEX, ITEM_FACTORS, BundleError, read_manifest, write_manifest
from tests.tiny_shop import N_ITEMS, N_NEW_ITEMS, START, category_of


@pytest.fixture(scope="module")
def model(model_dir: Path) -> Model:
    return Model.load(model_dir)


def test_load_reads_the_bundle(model: Model, model_dir: Path) -> None:
    # Given a trained model dir / When loaded / Then version, catalog and ranker are there
    assert model.version == read_manifest(model_dir)["model_version"]
    assert len(model.items.catalog) == N_ITEMS + N_NEW_ITEMS
    assert model.ranker is not None
    assert model.items.gram.shape == (8, 8)


def test_user_state_folds_in_history_and_session(model: Model) -> None:
    # Given a history, a session (most recent first) with an unknown item, and purchases
    state = user_state(
        model.items, {"i00": 4.0, "i03": 2.0}, [("i06", 1.0), ("nope", 1.0), ("i00", 2.0)], ["i03", "zzz"]
    )
    # Then ids become rows, session weights add up, unknown ids are ignored
    assert state.history == {0: 6.0, 3: 2.0, 6: 1.0}
    assert state.recent == [6, 0]
    assert state.purchased == frozenset({3})
    assert state.vector is not None and state.vector.shape == (8,)
    # And nobody gets no vector
    assert user_state(model.items, {}, [], []).vector is None


def test_raw_weights_come_from_the_profile_and_the_session_as_the_stream_stored_them(model: Model) -> None:
    # Given a session whose events the stream stored at 1.0 and 5.0 (the tuned weights say 0.1 and 9.0)
    session, stored = [("i06", 0.1), ("i00", 9.0)], [1.0, 5.0]
    # When the profile has raw weights, Then the session's stored weights add to them
    state = user_state(model.items, {"i00": 4.0}, session, [], raw_history={"i00": 3.0}, session_raw=stored)
    assert state.raw_history == {0: 8.0, 6: 1.0} and state.history == {0: 13.0, 6: 0.1}
    # And a shopper known only by the session gets the session's stored weights
    assert user_state(model.items, {}, session, [], session_raw=stored).raw_history == {6: 1.0, 0: 5.0}
    # But a profile without raw weights (an older model's) leaves them out, so the history is read instead
    assert user_state(model.items, {"i00": 4.0}, session, [], session_raw=stored).raw_history == {}


def test_candidates_follow_the_user_taste_and_skip_purchases(model: Model) -> None:
    # Given a shoes shopper (items 0, 3, 6, ... are shoes) who bought item 0
    state = user_state(model.items, {"i00": 8.0, "i03": 4.0, "i06": 2.0}, [], ["i00"])
    # When 20 candidates are retrieved and scored
    candidates = retrieval.candidates(model.items, state, k=20)
    scores = ranking.score(model.ranker, model.items, state, candidates, START.timestamp() + 61 * 86_400)
    # Then they are unique, without the purchase, tagged, and the best scored are shoes
    assert len(candidates) == 20 and len(set(candidates.rows.tolist())) == 20
    assert 0 not in candidates.rows
    assert set(candidates.sources) <= set(SOURCE_NAMES) and "ann" in candidates.sources
    assert scores.shape == (20,) and np.isfinite(scores).all()
    best = candidates.rows[np.argsort(-scores)[:5]]
    assert sum(category_of(int(row)) == "shoes" for row in best) >= 4


def test_candidates_within_a_category(model: Model) -> None:
    state = user_state(model.items, {"i00": 8.0}, [], [])
    candidates = retrieval.candidates(model.items, state, k=10, category="hats")
    assert len(candidates) == 10
    assert {category_of(int(row)) for row in candidates.rows} == {"hats"}


def test_unknown_user_gets_trending_and_popular_candidates(model: Model) -> None:
    state = user_state(model.items, {}, [], [])
    candidates = retrieval.candidates(model.items, state, k=5)
    assert set(candidates.sources) <= {"trending", "popularity"} and len(candidates) == 5
    assert ranking.score(model.ranker, model.items, state, candidates, START.timestamp()).shape == (5,)


def test_popular_is_sorted_by_popularity(model: Model) -> None:
    popular = retrieval.popular(model.items, 5)
    assert np.all(np.diff(model.items.popularity[popular.rows]) <= 0)
    assert {category_of(int(row)) for row in retrieval.popular(model.items, 4, category="bags").rows} == {
        "bags"
    }


def test_similar_items_exclude_the_item_and_share_its_category(model: Model) -> None:
    similar = retrieval.similar(model.items, "i01", 5)
    assert 1 not in similar.rows and len(similar) == 5
    assert sum(category_of(int(row)) == "hats" for row in similar.rows) >= 4
    with pytest.raises(KeyError):
        retrieval.similar(model.items, "unknown", 5)


def test_without_a_ranker_the_als_score_orders_candidates(model: Model) -> None:
    # Given the same model without its ranker
    plain = Model(model.items)
    state = user_state(plain.items, {"i01": 8.0}, [], [])
    candidates = retrieval.candidates(plain.items, state, k=10)
    # When scored / Then the order is the inner product's
    scores = ranking.score(plain.ranker, plain.items, state, candidates, 0.0)
    dots = plain.items.item_factors[candidates.rows] @ state.vector
    assert np.argsort(-scores).tolist() == np.argsort(-dots).tolist()


def test_missing_file_raises_bundle_error(model_dir: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(model_dir, tmp_path / "model")
    (broken / INDEX).unlink()
    with pytest.raises(BundleError, match="missing"):
        Model.load(broken)
    with pytest.raises(BundleError):
        Model.load(tmp_path / "nowhere")


def test_changed_file_raises_bundle_error(model_dir: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(model_dir, tmp_path / "model")
    (broken / ITEM_FACTORS).write_bytes(b"not numpy")
    with pytest.raises(BundleError, match="hash"):
        Model.load(broken)


def test_corrupt_file_with_a_matching_manifest_raises_bundle_error(model_dir: Path, tmp_path: Path) -> None:
    # Given a corrupt file whose manifest hash was (wrongly) updated
    broken = shutil.copytree(model_dir, tmp_path / "model")
    (broken / ITEM_FACTORS).write_bytes(b"not numpy")
    write_manifest(broken, {k: v for k, v in read_manifest(broken).items() if k != "files"})
    # Then loading still fails cleanly
    with pytest.raises(BundleError, match="cannot load"):
        Model.load(broken)


def test_items_without_interactions_are_placed_by_content_and_retrievable(model: Model) -> None:
    # Given the three catalogue items nobody interacted with (i45 shoes, i46 hats, i47 bags)
    new_rows = [model.items.catalog.row_of[f"i{item}"] for item in range(N_ITEMS, N_ITEMS + N_NEW_ITEMS)]
    assert model.items.signals.placed[new_rows].all() and model.items.signals.placed.sum() == N_NEW_ITEMS
    # When a hats shopper asks for candidates
    state = user_state(model.items, {"i01": 8.0, "i04": 4.0, "i07": 2.0}, [], [])
    candidates = retrieval.candidates(model.items, state, k=30)
    # Then the new hat is among them, brought by the content source
    hat = model.items.catalog.row_of["i46"]
    assert hat in candidates.rows
    assert candidates.sources[candidates.rows.tolist().index(hat)] in ("content", "ann")
    assert not np.isnan(candidates.scores["content"][candidates.rows.tolist().index(hat)])


def test_new_shoppers_get_their_segment_popularity(model: Model) -> None:
    # Given two new shoppers, one from each country (south shoppers favour the other end of the catalogue)
    north = user_state(model.items, {}, [], [], attributes={"country": "north"})
    south = user_state(model.items, {}, [], [], attributes={"country": "south"})
    assert north.segments == ("country=north",) and north.vector is None
    # When their popularity candidates are compared
    top_north = retrieval.proposals(model.items, north, 5)["popularity"].rows.tolist()
    top_south = retrieval.proposals(model.items, south, 5)["popularity"].rows.tolist()
    # Then they differ, and each follows its segment's counts
    assert top_north != top_south
    assert top_south[0] == int(np.argmax(model.items.signals.segments["country=south"]))


def test_bought_together_and_recent_items(model: Model) -> None:
    # Given item i00's basket neighbours
    together = retrieval.bought_together(model.items, "i00", 5)
    neighbours, _ = model.items.signals.bought_together.of(0)
    # Then they come first, in order, without the item itself
    assert 0 not in together.rows and together.rows[: len(neighbours[:5])].tolist() == neighbours[:5].tolist()
    # And a shopper's most recent item feeds the "bought together" source
    state = user_state(model.items, {}, [("i00", 1.0)], [], session_times=[START.timestamp()])
    found = retrieval.proposals(model.items, state, 10)
    assert found["bought_together"].rows[0] == neighbours[0]
    assert state.category_seen == {"shoes": START.timestamp()}


def test_a_loaded_model_has_computed_what_the_first_page_would(model_dir: Path) -> None:
    from merchandiser.serving import load_model

    items = load_model(model_dir, mmap=True).model.items  # type: ignore[union-attr]
    # the cached arrays are there before any page asks (a container's init pays them, not its first page)
    assert {"tie_rank", "out_of_stock_mask", "in_stock_mask", "popularity_percentile"} <= set(vars(items))
    assert "placed_factors" in vars(items) and items.content_index is None
