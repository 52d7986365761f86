"""The impressions channel: the archive's page records flattened to shown items, labelled by the events
that carry their page's recommendation id and position; an erased shopper's pages left out."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from training.fit import Hyperparameters
from training.impressions import attribute_events, no_position_evidence, read_impressions
from training.position_bias import MIN_POSITIONS


def page(recommendation_id: str, user_id: str | None, items: list[str], swap: int | None = None) -> dict:
    """An impression record as serving writes it; ``swap``: the items at ``swap`` and ``swap + 1`` traded."""
    moved = {} if swap is None else {swap: swap + 1, swap + 1: swap}
    shown = [
        {"item_id": item, "position": n, "source": "ann", "swapped": n in moved}
        | ({"ranked_position": moved[n]} if n in moved else {})
        for n, item in enumerate(items)
    ]
    return {
        "record_type": "impression", "recommendation_id": recommendation_id, "user_id": user_id,
        "surface": "home", "experiment": "", "variant": "production", "model_version": "m1",
        "timestamp": "2026-11-30T10:00:00.000Z", "items": shown,
    }  # fmt: skip


def write_archive(folder: Path, records: list[dict], garbage: str = "") -> None:
    day = folder / "year=2026" / "month=11" / "day=30"
    day.mkdir(parents=True)
    text = "\n".join(json.dumps(record) for record in records) + "\n" + garbage
    with gzip.open(day / "part-0.jsonl.gz", "wt") as handle:
        handle.write(text)


def test_pages_become_shown_items_with_their_swaps(tmp_path: Path) -> None:
    # Given two pages in the archive (one with a swap at 1), an event line and a broken line beside them
    records = [
        page("r1", "u1", ["a", "b", "c"]),
        page("r2", None, ["c", "b", "a"], swap=1),
        {"event_type": "x"},
    ]
    write_archive(tmp_path / "impressions", records, garbage="{not json\n")
    # When the channel is read
    shown = read_impressions(tmp_path / "impressions")
    # Then one row per shown item; an anonymous page is its own query; the swap's items are flagged
    assert len(shown) == 6 and set(shown["page"]) == {"r1", "r2"}
    assert set(shown.loc[shown["page"] == "r2", "query"]) == {"r2|home"}
    second = shown[shown["page"] == "r2"].sort_values("position")
    assert second["swapped"].tolist() == [False, True, True]
    assert second["ranked_position"].tolist() == [0, 2, 1]


def test_an_erased_shoppers_pages_are_left_out(tmp_path: Path) -> None:
    write_archive(tmp_path / "impressions", [page("r1", "u1", ["a"]), page("r2", "u2", ["b"])])
    tombstones = tmp_path / "events" / "_tombstones"
    tombstones.mkdir(parents=True)
    (tombstones / "u1.json").write_text(json.dumps({"user_id": "u1", "erased_at": "2026-12-01T00:00:00Z"}))
    shown = read_impressions(tmp_path / "impressions", tmp_path / "events")
    assert shown["user_id"].tolist() == ["u2"]


def test_events_label_the_items_of_their_page_and_position(tmp_path: Path) -> None:
    write_archive(tmp_path / "impressions", [page("r1", "u1", ["a", "b", "c"]), page("r2", "u1", ["a", "b"])])
    shown = read_impressions(tmp_path / "impressions")
    events = pd.DataFrame(
        {
            "user_id": ["u1"] * 4,
            "item_id": ["b", "b", "c", "a"],
            "event_type": ["click", "add_to_cart", "view", "click"],
            "recommendation_id": ["r1", "r1", "r1", "r9"],  # r9: a page the archive does not have
            "position": ["1", "1", "2", "0"],
        }
    )
    labelled = attribute_events(shown, events).set_index(["page", "position"])
    # Then the best event per shown item: the cart on r1's b; a view is no click; nothing else clicked
    assert labelled.loc[("r1", 1), "label"] == 2 and bool(labelled.loc[("r1", 1), "clicked"])
    assert labelled["label"].sum() == 2
    # and events without page or position (a dataset, not the twin) label nothing
    assert not attribute_events(shown, events.drop(columns="position"))["clicked"].any()


def test_without_impressions_the_evaluation_says_so() -> None:
    evidence = no_position_evidence()
    assert evidence["position_propensities"] == [1.0] * MIN_POSITIONS
    assert evidence["counterfactual"]["impressions"] == 0
    assert evidence["position_bias"]["click_ranker"] == {"trained": False, "reason": "no impressions"}


def test_an_unknown_page_debiasing_is_refused() -> None:
    with pytest.raises(ValueError, match="page_debiasing"):
        Hyperparameters(page_debiasing="clairvoyant")
