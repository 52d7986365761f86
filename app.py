#!/usr/bin/env python3
"""The Merchandiser CDK app: six environment-agnostic stacks, checked by cdk-nag at synth.

No AWS call and no account/region lookup happen at synth time. Context values (cdk.json or
``-c key=value``): ``merchandiser:layersDir`` (default ``build/layers``, built by ``make layers``),
``merchandiser:trainingSchedule``, ``merchandiser:trainingImageUri``, ``merchandiser:catalogItems`` (the
catalogue size the serving functions' memory, /tmp and SnapStart follow), ``merchandiser:snapStart``
(``auto``, the default: SnapStart where the on-demand cold start needs it,
``stacks.constants.serving_uses_snapstart``; ``on`` or ``off``), ``merchandiser:cdkNag``
(default true: cdk-nag AwsSolutions checks fail the synth on any unacknowledged finding),
``merchandiser:console`` (default true: the staff console's stack),
``merchandiser:consoleDomainPrefix`` (the Cognito sign-in domain, default merchandiser-staff-<account>),
``merchandiser:streamMode`` (``provisioned``, the default, or ``on-demand``) and
``merchandiser:peakStreamRecordsPerSecond`` (the peak the provisioned stream's shards are sized for,
default 500: one shard; ``stacks.constants.stream_shards``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks import constants as c
from stacks.console_stack import ConsoleStack
from stacks.data_stack import DataStack
from stacks.functions import check_layers_dir
from stacks.monitoring_stack import MonitoringStack
from stacks.serving_stack import ServingStack
from stacks.streaming_stack import StreamingStack
from stacks.training_stack import TrainingStack

REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_CONTEXT: dict[str, Any] = {"@aws-cdk/core:defaultCrossStackReferences": "strong"}


def build_app(
    outdir: str | None = None,
    layers_dir: Path | None = None,
    context: dict[str, Any] | None = None,
) -> cdk.App:
    """Composes the stacks (five, and the console's unless told not to). ``layers_dir`` wins over the
    ``merchandiser:layersDir`` context."""
    # Cross-stack references stay "strong" (exports protect their producers): the current
    # behaviour, set explicitly so the CDK stops warning about the default.
    app = cdk.App(outdir=outdir, context={**DEFAULT_CONTEXT, **(context or {})})
    if layers_dir is None:
        layers_dir = Path(str(app.node.try_get_context(c.CONTEXT_LAYERS_DIR) or c.DEFAULT_LAYERS_DIR))
    if not layers_dir.is_absolute():
        layers_dir = REPO_ROOT / layers_dir
    check_layers_dir(layers_dir)  # fail before building anything, with the command to run
    schedule = str(app.node.try_get_context(c.CONTEXT_TRAINING_SCHEDULE) or c.DEFAULT_TRAINING_SCHEDULE)
    image_uri = str(app.node.try_get_context(c.CONTEXT_TRAINING_IMAGE_URI) or c.DEFAULT_TRAINING_IMAGE_URI)
    catalog_items = int(app.node.try_get_context(c.CONTEXT_CATALOG_ITEMS) or c.DEFAULT_CATALOG_ITEMS)

    data = DataStack(app, c.STACK_NAMES.data)
    streaming = StreamingStack(
        app,
        c.STACK_NAMES.streaming,
        users_table=data.users_table,
        sessions_table=data.sessions_table,
        counters_table=data.counters_table,
        artifacts_bucket=data.artifacts_bucket,
        layers_dir=layers_dir,
        stream_mode=str(app.node.try_get_context(c.CONTEXT_STREAM_MODE) or c.DEFAULT_STREAM_MODE),
        peak_stream_records=float(
            app.node.try_get_context(c.CONTEXT_PEAK_STREAM_RECORDS)
            or c.DEFAULT_PEAK_STREAM_RECORDS_PER_SECOND
        ),
    )
    serving = ServingStack(
        app,
        c.STACK_NAMES.serving,
        users_table=data.users_table,
        items_table=data.items_table,
        sessions_table=data.sessions_table,
        counters_table=data.counters_table,
        experiments_table=data.experiments_table,
        events_stream=streaming.stream,
        artifacts_bucket=data.artifacts_bucket,
        layers_dir=layers_dir,
        catalog_items=catalog_items,
        snap_start=str(app.node.try_get_context(c.CONTEXT_SNAPSTART) or c.DEFAULT_SNAPSTART),
    )
    training = TrainingStack(
        app,
        c.STACK_NAMES.training,
        artifacts_bucket=data.artifacts_bucket,
        users_table=data.users_table,
        items_table=data.items_table,
        experiments_table=data.experiments_table,
        layers_dir=layers_dir,
        schedule_expression=schedule,
        training_image_uri=image_uri,
        swap_targets=serving.swap_targets,
        emr_python_env_uri=str(app.node.try_get_context(c.CONTEXT_EMR_PYTHON_ENV) or ""),
    )
    MonitoringStack(
        app,
        c.STACK_NAMES.monitoring,
        api=serving.api,
        functions={
            **serving.functions,
            **training.functions,
            "event_processor": streaming.event_processor,
            "trending_compactor": streaming.trending_compactor,
        },
        event_processor=streaming.event_processor,
        dead_letter_queue=streaming.dead_letter_queue,
    )
    # The twin serves console/ itself (`merchandiser console`): moto has no CloudFront or Cognito to host it.
    if str(app.node.try_get_context(c.CONTEXT_CONSOLE)).lower() != "false":
        ConsoleStack(app, c.STACK_NAMES.console, api=serving.api.rest_api, console_dir=REPO_ROOT / "console")
    # On unless told otherwise: the local twin turns it off to save ~1 s, since the acknowledgments
    # only add metadata and the templates are the same either way (tests/infra runs it).
    if str(app.node.try_get_context(c.CONTEXT_CDK_NAG)).lower() != "false":
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    # The CDK CLI sets CDK_OUTDIR; run directly, write where `cdk deploy --app cdk.out` can find it.
    build_app(outdir=os.environ.get("CDK_OUTDIR", "cdk.out")).synth()
