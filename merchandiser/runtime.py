"""What a serving container builds once and reuses: the loaded model and the DynamoDB resource.

Built on first use (not at import) so importing a handler never touches files or AWS.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import boto3

from merchandiser.model import Model
from merchandiser.recommend import Recommender
from merchandiser.settings import ServingSettings
from merchandiser.store import FeatureStore


@cache
def dynamodb_resource():  # type: ignore[no-untyped-def]
    return boto3.resource("dynamodb")


@cache
def model(model_dir: str) -> Model:
    return Model.load(Path(model_dir))


def recommender(settings: ServingSettings) -> Recommender:
    store = FeatureStore(
        dynamodb_resource(), settings.users_table, settings.sessions_table, settings.items_table
    )
    return Recommender(model=model(settings.model_dir), store=store)
