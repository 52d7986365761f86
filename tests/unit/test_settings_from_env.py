"""Settings read from the environment on every request: validated once per set of values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from merchandiser.settings import EventsApiSettings, ServingSettings

SHOP = {
    "USERS_TABLE": "users",
    "SESSIONS_TABLE": "sessions",
    "COUNTERS_TABLE": "counters",
    "ITEMS_TABLE": "items",
    "EXPERIMENTS_TABLE": "experiments",
    "EVENTS_STREAM": "events",
}


def test_the_same_variables_give_the_same_settings_and_others_new_ones() -> None:
    first = ServingSettings.from_env({**SHOP, "UNRELATED": "1"})
    # the variables the settings do not read change nothing
    assert ServingSettings.from_env({**SHOP, "UNRELATED": "2"}) is first
    changed = ServingSettings.from_env({**SHOP, "EXPERIMENTS_CACHE_SECONDS": "3"})
    assert changed is not first and changed.experiments_cache_seconds == 3.0
    assert first.experiments_cache_seconds == 10.0
    # another class over the same variables is its own settings
    assert isinstance(EventsApiSettings.from_env({**SHOP, "EVENTS_STREAM": "events"}), EventsApiSettings)


def test_invalid_variables_fail_every_time() -> None:
    bad = {**SHOP, "IMPRESSIONS_FLUSH_SECONDS": "99"}
    for _ in range(2):
        with pytest.raises(ValidationError):
            ServingSettings.from_env(bad)


def test_the_shared_settings_cannot_be_changed() -> None:
    settings = ServingSettings.from_env(SHOP)
    with pytest.raises(ValidationError):
        settings.events_stream = "other"  # type: ignore[misc]
