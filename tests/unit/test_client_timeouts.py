"""The serving clients' timeouts (DynamoDB, the impression log's Kinesis): production's by default, an
emulator's when it says so."""

from __future__ import annotations

import pytest

from merchandiser.serving.runtime import kinesis_config
from merchandiser.store import DYNAMODB_CONFIG, dynamodb_config


def test_without_the_variable_a_page_waits_production_s_short_timeouts() -> None:
    # Given no DYNAMODB_TIMEOUT_S / Then 0.3 s to connect and to read, two attempts
    config = dynamodb_config({})
    assert (config.connect_timeout, config.read_timeout) == (0.3, 0.3)
    assert config.retries == DYNAMODB_CONFIG.retries == {"total_max_attempts": 2, "mode": "standard"}


def test_an_emulator_sets_its_own_timeout() -> None:
    # Given the twin's setting / Then both timeouts follow it
    config = dynamodb_config({"DYNAMODB_TIMEOUT_S": "5"})
    assert (config.connect_timeout, config.read_timeout) == (5.0, 5.0)


@pytest.mark.parametrize("raw", ["soon", "0", "-1", "11", "nan"])
def test_a_bad_timeout_is_refused_with_its_name(raw: str) -> None:
    # Given a value that is not a number of seconds in (0, 10] / Then a clear error naming the variable
    with pytest.raises(ValueError, match="DYNAMODB_TIMEOUT_S"):
        dynamodb_config({"DYNAMODB_TIMEOUT_S": raw})


def test_the_impression_log_waits_production_s_timeouts_or_the_emulator_s() -> None:
    # Given no KINESIS_TIMEOUT_S / Then 1 s to connect, 2 s to read; given the twin's 10 / Then 10 each
    assert (kinesis_config({}).connect_timeout, kinesis_config({}).read_timeout) == (1.0, 2.0)
    twin = kinesis_config({"KINESIS_TIMEOUT_S": "10"})
    assert (twin.connect_timeout, twin.read_timeout) == (10.0, 10.0)
    with pytest.raises(ValueError, match="KINESIS_TIMEOUT_S"):
        kinesis_config({"KINESIS_TIMEOUT_S": "31"})
