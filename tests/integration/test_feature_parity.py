"""Training and serving build a shopper's features with the same code: this proves they agree.

Training side: the job's own histories (``user_item_weights`` → ``user_histories`` → ``UserHistory.state``).
Serving side: the profiles the job wrote, loaded into DynamoDB (moto) as publish loads them, read back by
the feature store and turned into a state by the recommender, exactly as a request does.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from merchandiser import retrieval
from merchandiser.publishing import user_profiles
from merchandiser.ranking import FEATURE_NAMES, ranking_features
from merchandiser.retrieval import shopper_scores
from merchandiser.serving import Model, Recommender
from merchandiser.store import FeatureStore
from tests.integration.conftest import Aws
from tests.tiny_shop import TINY_HP, pairs_shop, shop, train_tiny_model
from training.anchors import served_window
from training.anchors.families import family
from training.anchors.ranking import tie_ranks
from training.fit import Hyperparameters, epoch_seconds, user_histories, user_item_weights, user_segments
from training.job import run
from training.tuning import stages

ANCHOR_HP = replace(TINY_HP, tuning_trials=3, tuning_seconds=100_000.0, anchor_trials=2)


@pytest.fixture(scope="module")
def tuned_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny shop's model with its values tuned (event weights, half-life, shares...), not the defaults."""
    hp = replace(TINY_HP, tuning_trials=6, tuning_seconds=100_000.0)
    return train_tiny_model(tmp_path_factory.mktemp("tuned"), hp)


@pytest.mark.parametrize("tuned", [False, True], ids=["defaults", "tuned"])
def test_training_and_serving_features_agree(
    aws: Aws, model_dir: Path, tuned: bool, request: pytest.FixtureRequest
) -> None:
    # Given the served model and the profiles its training job wrote, loaded as publish loads them
    if tuned:
        model_dir = request.getfixturevalue("tuned_model_dir")
    model = Model.load(model_dir)
    store = FeatureStore(aws.dynamodb, aws.users_table, aws.sessions_table, aws.items_table)
    store.put_profiles(user_profiles(model_dir), model_version=model.version)
    recommender = Recommender(model=model, store=store)
    # And the training job's own histories at the end of the data, with the values it chose
    channels = shop()
    end = epoch_seconds(channels.interactions["timestamp"].max())
    chosen = Hyperparameters(**model.items.manifest["hyperparameters"])
    # (the tuned model's event weights are not the defaults: the check covers tuned values)
    assert (chosen.event_weights() != Hyperparameters().event_weights()) is tuned
    pairs = user_item_weights(
        channels.interactions, model.items.catalog, end, chosen.half_life_days, chosen.event_weights()
    )
    histories = user_histories(pairs, model.items.catalog, user_segments(channels.users))
    now = end + 3600.0
    for user_id in ("u000", "u001", "u077", "u149"):
        # When both sides build the shopper's state, candidates and features
        trained = histories[user_id].state(model.items)
        served = recommender.user_state(store.shopper(user_id))
        candidates = retrieval.candidates(model.items, trained, k=40)
        assert retrieval.candidates(model.items, served, k=40).rows.tolist() == candidates.rows.tolist()
        # Then every feature agrees (profiles store weights to 6 decimals, times to 1 ms)
        offline = ranking_features(trained, candidates, model.items, now)
        online = ranking_features(served, candidates, model.items, now)
        assert offline.shape == (40, len(FEATURE_NAMES))
        np.testing.assert_allclose(online, offline, rtol=1e-4, atol=1e-4, equal_nan=True)
        assert np.array_equal(np.isnan(online), np.isnan(offline))


def test_a_served_personal_anchor_scores_the_stored_shopper_as_the_anchor_itself(
    aws: Aws, tmp_path: Path
) -> None:
    # Given a model that serves a personal anchor (its page made to lose on validation), its profiles loaded
    # as publish loads them
    page_stage = stages.page_stage
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            stages, "page_stage", lambda search, pages, value: (page_stage(search, pages, value)[0], 0.0)
        )
        evaluation = run(pairs_shop(), ANCHOR_HP, tmp_path / "model", tmp_path / "output")
    served = evaluation["fallback_to_anchor"]
    assert served["engaged"] is True and served["kind"] == "personal", served
    model = Model.load(tmp_path / "model")
    store = FeatureStore(aws.dynamodb, aws.users_table, aws.sessions_table, aws.items_table)
    store.put_profiles(user_profiles(tmp_path / "model"), model_version=model.version)
    recommender = Recommender(model=model, store=store)
    # And the anchor itself, fitted with its settings on all the data, as the job fitted the served table
    interactions = pairs_shop().interactions
    end = epoch_seconds(interactions["timestamp"].max()) + 1.0
    window = served_window(interactions, model.items.catalog, end)
    anchor = family(served["anchor"]).fit(
        window, served["params"], tie_ranks(None, window.last_seen(), window.created_at)
    )
    assert anchor.scorer is not None
    for user_id in ("u000", "u001", "u077", "u149"):
        # When serving reads the shopper from the store and scores them with the model's anchor table
        scores = shopper_scores(model.items, recommender.user_state(store.shopper(user_id)))
        # Then every item scores as the anchor scores it (profiles store weights to 6 decimals)
        own = anchor.scorer(np.array([window.row_of()[user_id]], dtype=np.int64))[0]
        np.testing.assert_allclose(scores, own, rtol=1e-5, atol=1e-6)
