"""Shared fixtures: fake AWS credentials for moto, and a clean Powertools environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_shop import train_tiny_model


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "MerchandiserTest",
        "POWERTOOLS_SERVICE_NAME": "merchandiser-test",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)  # the twin switches them off
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model dir trained on the tiny shop (tests/tiny_shop.py) by the real training job code."""
    return train_tiny_model(tmp_path_factory.mktemp("bundle"))
