"""Profile histories decayed to each shopper's latest event: stable across trainings, scaled when read."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from merchandiser.store import decay_factor, history_at_model, profile_digest
from tests.tiny_shop import TINY_HP, shop
from training.bundle import user_feature_records
from training.fit import UserHistory, build_catalog, epoch_seconds, user_histories, user_item_weights

HALF_LIFE = TINY_HP.half_life_days
DAY = 86_400.0


def trained(interactions: pd.DataFrame) -> tuple[float, dict[str, UserHistory], dict[str, dict[str, Any]]]:
    """What the training job does with its events (``training.job``): histories decayed to the last event
    (T), written as profile records decayed to each shopper's latest event."""
    catalog = build_catalog(shop().items)
    end = float(epoch_seconds(interactions["timestamp"].max()))
    pairs = user_item_weights(interactions, catalog, end, HALF_LIFE, TINY_HP.event_weights())
    histories = user_histories(pairs, catalog)
    records = user_feature_records(
        histories, None, catalog.item_ids, histories_at=end, half_life_days=HALF_LIFE
    )
    return end, histories, {record["user_id"]: record for record in records}


def served(record: dict[str, Any], histories_at: float) -> dict[str, float]:
    return history_at_model(record["history"], record["history_at"], record["half_life_days"], histories_at)


def test_a_second_training_rewrites_only_the_profile_of_the_shopper_with_a_new_event() -> None:
    # Given a training on the shop, and one two days later whose only new event is u007's
    first = shop().interactions
    later = first["timestamp"].max() + pd.Timedelta(days=2)
    extra = pd.DataFrame(
        [("u007", "i04", "click", later, "u007-extra")],
        columns=["user_id", "item_id", "event_type", "timestamp", "session_id"],
    )
    second = pd.concat([first, extra], ignore_index=True)
    end_1, histories_1, records_1 = trained(first)
    end_2, histories_2, records_2 = trained(second)
    assert end_2 == end_1 + 2 * DAY

    # Then every other shopper's record is the same, to its digest; u007's is not
    assert set(records_1) == set(records_2) and len(records_1) > 100
    changed = {
        user for user in records_1 if profile_digest(records_1[user]) != profile_digest(records_2[user])
    }
    assert changed == {"u007"}
    assert records_2["u007"]["history_at"] == pytest.approx(end_2, abs=1e-3)
    # (the training's own weights, decayed to its end, did change for everyone)
    assert histories_1["u000"].weights != histories_2["u000"].weights

    # And serving's weights at each model's end are the training's own (profiles store 6 decimals)
    ids = shop().items.sort_values("item_id")["item_id"].tolist()
    for end, histories, records in ((end_1, histories_1, records_1), (end_2, histories_2, records_2)):
        for user, record in records.items():
            trained_weights = {ids[row]: weight for row, weight in histories[user].weights.items()}
            decoded = served(record, end)
            assert set(decoded) == set(trained_weights)
            for item, weight in decoded.items():
                assert weight == pytest.approx(trained_weights[item], rel=1e-6, abs=1e-6)


def test_the_history_is_stored_decayed_to_the_shoppers_latest_event() -> None:
    # Given a shopper whose one view was 30 days (one half-life) before the training's end
    end = 1_800_000_000.0
    seen = end - HALF_LIFE * DAY
    history = UserHistory(weights={0: 0.5}, purchased=frozenset(), latest=seen)
    (record,) = user_feature_records(
        {"u1": history}, None, pd.Series(["i0"]).to_numpy(), histories_at=end, half_life_days=HALF_LIFE
    )
    # Then the stored weight is the weight at that view (twice the one at the end), stamped with its time
    assert record["history"] == {"i0": 1.0}
    assert record["history_at"] == seen and record["half_life_days"] == HALF_LIFE
    # And read for a model trained at the end, it is the training's weight again; a later model decays it on
    assert served(record, end) == pytest.approx({"i0": 0.5})
    assert served(record, end + HALF_LIFE * DAY) == pytest.approx({"i0": 0.25})


def test_without_a_training_end_the_history_is_written_as_given_and_unstamped() -> None:
    history = UserHistory(weights={0: 0.5}, purchased=frozenset(), latest=1.0)
    (record,) = user_feature_records({"u1": history}, None, pd.Series(["i0"]).to_numpy())
    assert record["history"] == {"i0": 0.5} and "history_at" not in record and "half_life_days" not in record


def test_a_history_without_its_latest_event_is_stamped_at_the_training_end() -> None:
    history = UserHistory(weights={0: 0.5}, purchased=frozenset())  # built by hand, as benchmarks do
    (record,) = user_feature_records(
        {"u1": history}, None, pd.Series(["i0"]).to_numpy(), histories_at=100.0, half_life_days=HALF_LIFE
    )
    assert record["history"] == {"i0": 0.5} and record["history_at"] == 100.0


@pytest.mark.parametrize(
    ("history_at", "half_life_days", "histories_at"),
    [
        (None, None, 1_800_000_000.0),  # a profile written before history_at: weights at its model's end
        (None, 30.0, 1_800_000_000.0),
        (1_700_000_000.0, None, 1_800_000_000.0),
        (1_700_000_000.0, 0.0, 1_800_000_000.0),  # no half-life to decay with
        (1_700_000_000.0, 30.0, None),  # a model whose manifest predates histories_at
    ],
)
def test_a_profile_or_model_without_the_stamps_is_used_as_stored(
    history_at: float | None, half_life_days: float | None, histories_at: float | None
) -> None:
    assert history_at_model({"i1": 0.75}, history_at, half_life_days, histories_at) == {"i1": 0.75}


def test_a_profile_newer_than_the_served_model_is_not_grown() -> None:
    # published before its model is served: events after the model's end count fully (recency_decay's rule)
    assert history_at_model({"i1": 0.75}, 2_000.0, 30.0, 1_000.0) == {"i1": 0.75}
    assert decay_factor(1_000.0, 2_000.0, 30.0) == 1.0
    assert decay_factor(2 * 30 * DAY, 0.0, 30.0) == pytest.approx(0.25)
