"""The local twin: moto on 127.0.0.1 in its own process, the CDK app deployed into it, the real handlers
serving it.

Lifecycle: ``start()`` deploys the stacks; ``load_data()`` puts a shop's files where the training
job's channels read them; ``train_and_publish()`` runs the scheduled path (start_training λ →
training job → publish λ) and swaps the served model; ``serve()`` opens the HTTP API, the
Kinesis poller and the control endpoint; ``retrain()`` (``merchandiser retrain`` through that endpoint)
runs the daily jobs on what the twin has gathered: the archive eraser, then training, gate, publish and
swap. The trending compactor, which EventBridge runs every minute in AWS, runs after each batch the event
processor handles, so a count shows in trending as soon as its batch is processed (``process_events``).
Everything a stock AWS client needs is in ``state()``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from layers.build import build_core
from local_twin.archive import DEFAULT_BUFFER_SECONDS, ArchiveConsumer
from local_twin.control import ControlServer
from local_twin.deploy import TwinResources, deploy_to_moto
from local_twin.front_workers import FRONT_WORKERS, FrontWorkers
from local_twin.functions import MODEL_LOAD_DELAY, Functions
from local_twin.gateway_auth import GatewayAuth, create_twin_api_key, method_access
from local_twin.http_front import HttpFront, routes_from_rest_api
from local_twin.moto_process import MotoProcess
from local_twin.poller import KinesisPoller
from local_twin.script_mode import job_output_dir, run_training_job
from merchandiser.serving import runtime as serving_runtime
from merchandiser.store import ITEMS_PREFIX, USERS_PREFIX

REGION = "us-east-1"
SCHEDULED_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event"}
SERVING = ("retrieval", "ranking", "reranking", "catalog")
# moto has no Athena to run the daily report job's SQL: the twin's experiments function computes a
# report on the request with DuckDB over the archive bucket (ExperimentsSettings.report_source).
# moto's CloudFormation creates no CodeDeploy application and runs no function version: publish sets the
# live-model parameter without a canary, and the twin's functions reload the model it names.
TWIN_FUNCTION_ENVIRONMENT = {
    "experiments": {"EXPERIMENT_REPORT_SOURCE": "archive"},
    "publish": {"DEPLOYMENT_APPLICATION": "", "DEPLOYMENT_GROUPS": ""},
}
# Lambda freezes a container once it answers, so a serving function waits up to IMPRESSIONS_FLUSH_SECONDS
# for its page's impression to be put; the twin's serving processes are never frozen: the impression is
# put after the page answered (as fire and forget as it can be), and settle() waits for the buffers.
# The twin has no SnapStart (nor its 512 MB /tmp): its serving processes memory-map the one copy of the model
# they fetch into its work dir, rather than each loading the whole model into memory (MODEL_IN_MEMORY, which
# the stack sets with SnapStart; tests/integration/test_live_model.py covers that path).
TWIN_SERVING_ENVIRONMENT = {"IMPRESSIONS_FLUSH_SECONDS": "0", "MODEL_IN_MEMORY": "false"}
SETTLE_SECONDS = 10.0
# The twin's process-wide AWS settings: fake credentials, one region, tracing off (no X-Ray daemon).
TWIN_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # moto in one process behind a lock answers in tens of milliseconds, hundreds on a loaded machine:
    # production's 0.3 s DynamoDB timeout would serve degraded pages that a real table never causes
    "DYNAMODB_TIMEOUT_S": "5",
    "KINESIS_TIMEOUT_S": "10",  # likewise for the impression log's puts, which are dropped after two tries
}


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
    def __init__(
        self, workdir: Path, api_port: int = 0, log_level: str = "WARNING", front_workers: int = FRONT_WORKERS
    ):
        self.workdir = workdir
        self.api_port = api_port
        self.log_level = log_level
        self.front_workers = front_workers
        self.timings = Timings({})
        self.moto: MotoProcess | None = None
        self.endpoint_url = ""
        self.resources: TwinResources | None = None
        self.functions: Functions | None = None
        self.front: HttpFront | FrontWorkers | None = None
        self._environment: dict[str, str] = {}  # the process's own, for the front's workers
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
        changed = [*TWIN_ENVIRONMENT, "AWS_ENDPOINT_URL"]
        self._saved_environment = {key: os.environ.get(key) for key in changed}
        os.environ.update(TWIN_ENVIRONMENT)
        with self.timings.measure("moto"):
            self.moto = MotoProcess.start()
            self.endpoint_url = self.moto.endpoint
            os.environ["AWS_ENDPOINT_URL"] = self.endpoint_url
            self._environment = dict(os.environ)
        with self.timings.measure("deploy"):
            layers = self.workdir / "layers"
            build_core(layers / "core")
            self.resources = deploy_to_moto(self.endpoint_url, self.workdir, layers)
        overrides = {
            "POWERTOOLS_LOG_LEVEL": self.log_level,
            **TWIN_ENVIRONMENT,
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }
        self.functions = Functions(self.resources.environments(), overrides)
        Functions.cold_start()
        for key, values in TWIN_FUNCTION_ENVIRONMENT.items():
            self.functions.set_environment(key, **values)
        if os.environ.get(MODEL_LOAD_DELAY):  # a fault for load tests: serving's model loads are slow
            for key in SERVING:
                self.functions.set_environment(key, **{MODEL_LOAD_DELAY: os.environ[MODEL_LOAD_DELAY]})
        for key in SERVING:  # the twin's /tmp: the fetched models stay with its work dir
            self.functions.set_environment(
                key, MODEL_CACHE_DIR=str(self.workdir / "models"), **TWIN_SERVING_ENVIRONMENT
            )
        return self.resources

    def check(self) -> None:
        """Raises ``MotoProcessDied`` or ``FrontWorkerError`` (saying how it ended) when moto's process or
        a worker of the front is gone."""
        if self.moto is None:
            raise RuntimeError("the twin is not started")
        self.moto.ensure_alive()
        if isinstance(self.front, FrontWorkers):
            self.front.ensure_alive()

    def client(self, service: str) -> Any:
        self.check()
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
        return self._functions.invoke("erasure", SCHEDULED_EVENT)

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
        if self.front_workers > 0:
            self.front = FrontWorkers(
                routes,
                functions.environments(),
                self.front_workers,
                self.api_port,
                self._environment,
                access=method_access(apigateway, resources.rest_api_id),
            )
        else:
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
            invoke=self.process_events,
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

    def process_events(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event processor on a batch, then the trending compactor on the hours it counted in (in AWS a
        rule runs it every minute; here right away, so the demo and the tests see live trending)."""
        response = self._functions.invoke("event_processor", event)
        if event.get("Records"):
            self._functions.invoke("trending_compactor", SCHEDULED_EVENT)
        return response

    def settle(self) -> None:
        """Everything served and sent so far reaches the archive: the serving functions' impression
        buffers emptied onto the stream, the stream drained by the event processor, the archive flushed.
        Deterministic catch-up for tests, the demo and a report that must count everything."""
        if not serving_runtime.wait_for_impressions(SETTLE_SECONDS):
            raise TimeoutError(f"impressions still buffered after {SETTLE_SECONDS} s")
        if isinstance(self.front, FrontWorkers) and not self.front.settle(SETTLE_SECONDS):
            raise TimeoutError(f"impressions still buffered in a front worker after {SETTLE_SECONDS} s")
        if self.poller is not None:
            self.poller.drain()
            self.poller.flush_archive()

    def refresh_experiments(self) -> None:
        """Serving reads the experiments through a cache (EXPERIMENTS_CACHE_SECONDS, 10 s): in AWS a
        start or stop reaches every page within that time; on the twin it reaches the next page: in-process
        serving forgets its cache, and front workers (processes, each with its own cache) are replaced."""
        serving_runtime.forget_experiments()
        if isinstance(self.front, FrontWorkers):
            self.front.update(self._functions.environments())

    def reload_serving(self) -> float:
        """Serving loads its model again, as new containers do after a deploy: new front workers load it
        while the old ones serve, then the old ones stop (in-process serving forgets what it loaded).
        Returns the seconds it took."""
        started = time.perf_counter()
        if isinstance(self.front, FrontWorkers):
            self.front.update(self._functions.environments())
        else:
            serving_runtime.reset()
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.control:
            self.control.stop()
        if self.poller:
            self.poller.stop()
        if self.front:
            self.front.stop()
        if self.moto:
            self.moto.stop()  # its backends die with it: a stopped twin leaves nothing behind
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
            "counters_table": resources.counters_table,
            "experiments_table": resources.experiments_table,
            "artifacts_bucket": resources.artifacts_bucket,
            "dead_letter_queue_url": resources.dead_letter_queue_url,
            "model_version": self.served_version,
        }

    # -- internals -------------------------------------------------------------------------------
    def _swap_model(self) -> None:
        """The publish λ has set the live-model parameter in moto and uploaded the files under
        models/<version>/; in AWS the canary's new function versions load it at init. The twin's functions
        are in-process and never re-initialised, so they forget what they loaded: the next request reads
        the parameter and fetches the model from moto's S3, as a new version does."""
        serving_runtime.reset()
        if isinstance(self.front, FrontWorkers):  # serving already: new workers load the new model
            self.front.update(self._functions.environments())

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
