"""Each function's configuration as a pydantic model.

The CDK constructs build a function's environment with ``to_env()`` from the same model the
handler reads it back with ``from_env()``, so the two cannot drift (an infrastructure test checks
every function in the synthesized template against its model).
"""

from __future__ import annotations

import os
from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class FunctionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    service_name: str = Field(default="merchandiser", alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(default="Merchandiser", alias="POWERTOOLS_METRICS_NAMESPACE")
    log_level: str = Field(default="INFO", alias="POWERTOOLS_LOG_LEVEL")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        aliases = {field.alias for field in cls.model_fields.values() if field.alias}
        return cls.model_validate({key: value for key, value in env.items() if key in aliases})

    def to_env(self) -> dict[str, str]:
        return {key: str(value) for key, value in self.model_dump(by_alias=True).items()}


class ServingSettings(FunctionSettings):
    """Retrieval, ranking and re-ranking functions."""

    users_table: str = Field(alias="USERS_TABLE")
    items_table: str = Field(alias="ITEMS_TABLE")
    sessions_table: str = Field(alias="SESSIONS_TABLE")
    model_dir: str = Field(default="/opt/model", alias="MODEL_DIR")


class EventsApiSettings(FunctionSettings):
    """POST /events: validates browser events and puts them on the stream."""

    events_stream: str = Field(alias="EVENTS_STREAM")


class CatalogSettings(ServingSettings):
    """PUT /items/{item_id} and DELETE /users/{user_id}: the same tables as serving."""


class EventProcessorSettings(FunctionSettings):
    """Kinesis consumer that keeps sessions and user features fresh."""

    users_table: str = Field(alias="USERS_TABLE")
    sessions_table: str = Field(alias="SESSIONS_TABLE")
    # Records that can never succeed (malformed, unknown type) go here with their payload and reason.
    dead_letter_queue_url: str = Field(alias="DEAD_LETTER_QUEUE_URL")
    session_ttl_seconds: int = Field(default=7 * 24 * 3600, alias="SESSION_TTL_SECONDS", gt=0)


class TrainingTriggerSettings(FunctionSettings):
    """Scheduled: starts a SageMaker training job on the archived events."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET")
    training_role_arn: str = Field(alias="TRAINING_ROLE_ARN")
    # S3 URI of the packaged training code (training/ + merchandiser/), run in script mode.
    training_source_uri: str = Field(alias="TRAINING_SOURCE_URI")
    training_image_uri: str = Field(alias="TRAINING_IMAGE_URI")
    training_instance_type: str = Field(default="ml.m5.xlarge", alias="TRAINING_INSTANCE_TYPE")


class PublishSettings(FunctionSettings):
    """On a finished training job: quality gate, then publish artifacts and user features."""

    artifacts_bucket: str = Field(alias="ARTIFACTS_BUCKET")
    users_table: str = Field(alias="USERS_TABLE")
