"""The local twin: moto on 127.0.0.1, the CDK app deployed into it, the real handlers serving it.

Lifecycle: ``start()`` deploys the stacks; ``load_data()`` puts a shop's files where the training
job's channels read them; ``train_and_publish()`` runs the scheduled path (start_training λ →
training job → publish λ) and swaps the served model; ``serve()`` opens the HTTP API, the
Kinesis poller and the control endpoint; ``retrain()`` (``merchandiser retrain`` through that endpoint)
runs the daily jobs on what the twin has gathered: the archive eraser, then training, gate, publish and
swap. Everything a stock AWS client needs is in ``state()``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.kinesis.models import kinesis_backends
from moto.server import ThreadedMotoServer

from layers.build import build_core, build_model
from local_twin.archive import DEFAULT_BUFFER_SECONDS, ArchiveConsumer
from local_twin.control import ControlServer
from local_twin.deploy import TwinResources, deploy_to_moto
from local_twin.functions import Functions
from local_twin.gateway_auth import GatewayAuth, create_twin_api_key
from local_twin.http_front import HttpFront, routes_from_rest_api
from local_twin.moto_server import start_moto
from local_twin.poller import KinesisPoller
from local_twin.script_mode import job_output_dir, run_training_job
from merchandiser.serving import runtime as serving_runtime
from merchandiser.store import ITEMS_PREFIX, MANIFEST, PRODUCTION_POINTER, SERVING_FILES, USERS_PREFIX

REGION = "us-east-1"
SERVING = ("retrieval", "ranking", "reranking", "catalog")
# moto has no Athena to run the daily report job's SQL: the twin's experiments function computes a
# report on the request with DuckDB over the archive bucket (ExperimentsSettings.report_source).
TWIN_FUNCTION_ENVIRONMENT = {"experiments": {"EXPERIMENT_REPORT_SOURCE": "archive"}}
SETTLE_SECONDS = 10.0
# The twin's process-wide AWS settings: fake credentials, one region, tracing off (no X-Ray daemon).
TWIN_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


def quiet_moto() -> None:
    """moto logs every request and every template resource it skips; the demo narrates instead."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)


def detach_moto_stream_triggers(stream_name: str) -> None:
    """moto's own Kinesis trigger tries to run the function in Docker (none here) on every put;
    the twin's poller is the event source mapping, so the in-process moto stream forgets it."""
    for backend in kinesis_backends[DEFAULT_ACCOUNT_ID].values():
        if stream_name in backend.streams:
            backend.streams[stream_name].lambda_event_source_mappings.clear()


@dataclass
class Timings:
    steps: dict[str, float]

    @contextmanager
    def measure(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = time.perf_counter() - started


class Twin:
    def __init__(self, workdir: Path, api_port: int = 0, log_level: str = "WARNING"):
        self.workdir = workdir
        self.api_port = api_port
        self.log_level = log_level
        self.timings = Timings({})
        self.moto: ThreadedMotoServer | None = None
        self.endpoint_url = ""
        self.resources: TwinResources | None = None
        self.functions: Functions | None = None
        self.front: HttpFront | None = None
        self.poller: KinesisPoller | None = None
        self.control: ControlServer | None = None
        self.evaluation: dict[str, Any] = {}
        self.publish_result: dict[str, Any] = {}
        self.served_version: str | None = None  # the model the functions serve (a refused one is not)
        self._retraining = threading.Lock()  # one training at a time, as one schedule runs one job
        self.api_key: str | None = None  # the storefront's x-api-key, made when serving starts
        self._saved_environment: dict[str, str | None] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> TwinResources:
        # what the twin changes in this process's environment, given back by stop()
        self._saved_environment = {
            key: os.environ.get(key) for key in [*TWIN_ENVIRONMENT, "AWS_ENDPOINT_URL"]
        }
        os.environ.update(TWIN_ENVIRONMENT)
        quiet_moto()
        with self.timings.measure("moto"):
            self.moto, self.endpoint_url = start_moto()
            os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
        with self.timings.measure("deploy"):
            layers = self.workdir / "layers"
            build_core(layers / "core")
            (layers / "model").mkdir(parents=True, exist_ok=True)  # filled by publish, as a layer swap would
            self.resources = deploy_to_moto(self.endpoint_url, self.workdir, layers)
            detach_moto_stream_triggers(self.resources.events_stream)
        overrides = {
            "POWERTOOLS_LOG_LEVEL": self.log_level,
            **TWIN_ENVIRONMENT,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }
        self.functions = Functions(self.resources.environments(), overrides)
        Functions.cold_start()
        for key, values in TWIN_FUNCTION_ENVIRONMENT.items():
            self.functions.set_environment(key, **values)
        return self.resources

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION)

    def load_data(self, data_dir: Path) -> None:
        """Puts the shop where the job's channels read it: events archive, catalogue, shoppers."""
        s3, bucket = self.client("s3"), self._resources.artifacts_bucket
        for name, prefix in (("interactions", "events/"), ("items", ITEMS_PREFIX), ("users", USERS_PREFIX)):
            for path in sorted(data_dir.glob(f"{name}.*")):
                s3.upload_file(str(path), bucket, f"{prefix}{path.name}")

    def train_and_publish(
        self, quiet: bool = True, hyperparameters: dict[str, str] | None = None
    ) -> dict[str, Any]:
        functions = self._functions
        if self.poller is not None:  # what Firehose has delivered by now: today's events train too
            self.poller.flush_archive()
        with self.timings.measure("training"):
            scheduled: dict[str, Any] = {"source": "aws.events", "detail-type": "Scheduled Event"}
            if hyperparameters:
                scheduled["hyperparameters"] = hyperparameters
            started = functions.invoke("start_training", scheduled)
            job = started["training_job_name"]
            event = run_training_job(
                self.client("sagemaker"), self.client("s3"), job, self.workdir / "jobs", quiet
            )
            self.evaluation = json.loads(
                (job_output_dir(self.workdir / "jobs", job) / "evaluation.json").read_text()
            )
        with self.timings.measure("publish"):
            self.publish_result = functions.invoke("publish", event)
            if self.publish_result.get("promote"):
                self._swap_model()
                self.served_version = self.publish_result["model_version"]
        return self.publish_result

    def erase(self) -> dict[str, Any]:
        """The daily archive eraser, now (after what Firehose has delivered by now)."""
        if self.poller is not None:
            self.poller.flush_archive()
        return self._functions.invoke("erasure", {"source": "aws.events", "detail-type": "Scheduled Event"})

    def retrain(self, hyperparameters: dict[str, str] | None = None) -> dict[str, Any]:
        """The daily jobs on what the twin has gathered (settled into the archive first): the archive
        eraser (so no erased shopper is trained on or kept), then the training job (the archive's events,
        the catalogue from the items table, the users channel, the production model for the same-window
        gate), gate, publish, swap."""
        with self._retraining:
            # as the daily job runs after Firehose delivered the day: what was served and sent so far is in
            # the archive before the eraser reads it (a page served just before would otherwise land after)
            self.settle()
            erased = self.erase()
            published = self.train_and_publish(hyperparameters=hyperparameters)
            return {**published, "erasure": erased, "evaluation": self.evaluation}

    def serve(self) -> str:
        functions, resources = self._functions, self._resources
        apigateway = self.client("apigateway")
        function_keys = {name: key for key, name in resources.function_names.items()}
        routes = routes_from_rest_api(apigateway, resources.rest_api_id, lambda name: function_keys[name])
        self.api_key = create_twin_api_key(apigateway)
        auth = GatewayAuth.from_rest_api(apigateway, resources.rest_api_id)
        self.front = HttpFront(routes, functions.invoke, port=self.api_port, authorize=auth.check)
        self.front.start()
        # The event processor builds its AWS clients on its first batch. The poller runs it on its own
        # thread, so that first batch may coincide with another thread changing the process-wide
        # environment (a test fixture removing AWS_ENDPOINT_URL between two tests), and a client built
        # then would talk to AWS instead of moto for the rest of the run: build them now, alone.
        functions.invoke("event_processor", {"Records": []})
        self.poller = KinesisPoller(
            self.client("kinesis"),
            self.client("sqs"),
            resources.events_stream,
            resources.dead_letter_queue_url,
            invoke=lambda event: functions.invoke("event_processor", event),
            archive=ArchiveConsumer(
                self.client("kinesis"),
                self.client("s3"),
                resources.events_stream,
                resources.artifacts_bucket,
                buffer_seconds=DEFAULT_BUFFER_SECONDS,
            ),
        )
        self.poller.start()
        self.control = ControlServer(lambda hyperparameters: self.retrain(hyperparameters))
        self.control.start()
        return self.front.url

    def settle(self) -> None:
        """Everything served and sent so far reaches the archive: the serving functions' impression
        buffers emptied onto the stream, the stream drained by the event processor, the archive flushed.
        Deterministic catch-up for tests, the demo and a report that must count everything."""
        if not serving_runtime.wait_for_impressions(SETTLE_SECONDS):
            raise TimeoutError(f"impressions still buffered after {SETTLE_SECONDS} s")
        if self.poller is not None:
            self.poller.drain()
            self.poller.flush_archive()

    def refresh_experiments(self) -> None:
        """Serving reads the experiments through a cache (EXPERIMENTS_CACHE_SECONDS, 10 s): in AWS a
        start or stop reaches every page within that time; on the twin it can reach the next page."""
        serving_runtime.forget_experiments()

    def stop(self) -> None:
        if self.control:
            self.control.stop()
        if self.poller:
            self.poller.stop()
        if self.front:
            self.front.stop()
        if self.moto:
            self.moto.stop()
        Functions.cold_start()  # no cached client outlives the moto server it talks to
        for key, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environment = {}

    def state(self) -> dict[str, Any]:
        resources = self._resources
        return {
            "api_url": self.front.url if self.front else None,
            "control_url": self.control.url if self.control else None,
            "api_key": self.api_key,
            "endpoint_url": self.endpoint_url,
            "region": REGION,
            "events_stream": resources.events_stream,
            "users_table": resources.users_table,
            "items_table": resources.items_table,
            "sessions_table": resources.sessions_table,
            "experiments_table": resources.experiments_table,
            "artifacts_bucket": resources.artifacts_bucket,
            "dead_letter_queue_url": resources.dead_letter_queue_url,
            "model_version": self.served_version,
        }

    # -- internals -------------------------------------------------------------------------------
    def _swap_model(self) -> None:
        """The publish λ has already done the real blue/green swap in moto (a new model layer version,
        a new version of each serving function, the `live` aliases moved: merchandiser.publishing.swap);
        moto cannot run a function with its layers, so the twin's in-process functions are pointed at
        the same model files the new layer version holds."""
        s3, bucket = self.client("s3"), self._resources.artifacts_bucket
        pointer = json.loads(s3.get_object(Bucket=bucket, Key=PRODUCTION_POINTER)["Body"].read())
        staging = self.workdir / "published" / pointer["model_version"]
        staging.mkdir(parents=True, exist_ok=True)
        for name in SERVING_FILES:
            if name == MANIFEST or name in pointer["manifest"]["files"]:
                s3.download_file(bucket, f"{pointer['prefix']}{name}", str(staging / name))
        layer = self.workdir / "layers" / "model" / pointer["model_version"]
        build_model(staging, layer)
        for key in SERVING:
            self._functions.set_environment(key, MODEL_DIR=str(layer / "model"))

    @property
    def _resources(self) -> TwinResources:
        if self.resources is None:
            raise RuntimeError("the twin is not started")
        return self.resources

    @property
    def _functions(self) -> Functions:
        if self.functions is None:
            raise RuntimeError("the twin is not started")
        return self.functions
