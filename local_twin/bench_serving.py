"""Serving bench (``make bench``, serving part): ``python -m local_twin.bench_serving``.

In one run on this machine, for a 100,000-item synthetic catalog and 1,000 candidates:

- cold start: a fresh interpreter imports the retrieval handler and loads every artifact (the first
  ``runtime.loaded_model``), median of a few runs (the files are in the page cache, as they are in
  a warm Lambda sandbox; a first-ever read from the layer would add disk time);
- the real retrieval handler, in-process, on API Gateway proxy events for
  ``GET /users/{id}/recommendations?k=20`` over known shoppers, DynamoDB being moto in-process:
  p50/p99 of each stage (the request's ``ServingReport``) and of the whole handler;
- in the same run, raw ``hnswlib.knn_query(k=1000)`` on the same index and raw ``Booster.predict``
  (one thread) on a 1000 x n_features matrix, and the ratio handler / (raw hnswlib + raw LightGBM).

The model is trained by the real training code and cached under ``build/bench/serving/`` keyed by
its parameters, so a rerun skips the few minutes of generation and training. Prints a table, writes
``build/bench/serving.json`` and PASS/MISS lines for the targets; it never asserts.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# As the functions are configured (FunctionSettings.blas_threads), before numpy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "build" / "bench"
CANDIDATES = 1000
SHOP: dict[str, float] = {
    "n_users": 20_000,
    "n_items": 100_000,
    "n_days": 30,
    "seed": 7,
    "sessions_per_user_day": 0.1,
}
HYPERPARAMETERS = {
    "factors": 64,
    "iterations": 8,
    "candidates": 100,
    "ranker_rounds": 100,
    "early_stopping_rounds": 10,
    "max_ranker_users": 2000,
    "max_eval_users": 500,
}
TARGETS = {"handler_p99_ms": 25.0, "ratio_p99": 1.5, "cold_start_s": 1.5}
BENCH_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "merchandiser-retrieval",
    "POWERTOOLS_METRICS_NAMESPACE": "MerchandiserBench",
    "USERS_TABLE": "users",
    "SESSIONS_TABLE": "sessions",
    "ITEMS_TABLE": "items",
    "EXPERIMENTS_TABLE": "experiments",  # empty: every page is production
    "EVENTS_STREAM": "events",  # every page's impression goes there, as in AWS
    "OPENBLAS_NUM_THREADS": "1",
}
# lightgbm imports these when it finds them; the deps layer does not ship them, so the cold start
# hides those the built layer lacks (pandas alone costs ~0.25 s of imports here).
OPTIONAL_IMPORTS = ("pandas", "pyarrow", "sklearn", "dask", "matplotlib", "graphviz")
COLD_START = """
import json, sys, time
for name in sys.argv[2:]:
    sys.modules[name] = None  # not in the Lambda deps layer: import fails as it would there
started = time.perf_counter()
from lambdas.retrieval import handler
imported = time.perf_counter()
from merchandiser.serving import runtime
loaded = runtime.loaded_model(sys.argv[1])
done = time.perf_counter()
faults = sorted(loaded.faults)
print(json.dumps({"imports_s": imported - started, "load_s": done - imported, "faults": faults}))
"""


def cache_key() -> str:
    from merchandiser.store import SERVING_FILES

    # the bundle's file list is in the key: a cached model of an older layout would load degraded
    spec = {"shop": SHOP, "hp": HYPERPARAMETERS, "files": SERVING_FILES}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def trained_model(root: Path) -> tuple[Path, float | None]:
    """The cached model dir, trained first if missing; returns (dir, seconds spent building or None)."""
    model_dir = root / f"model-{cache_key()}"
    if (model_dir / "manifest.json").is_file():
        return model_dir, None
    from training.channels import read_channels
    from training.datasets.synthetic_shop import generate
    from training.fit import Hyperparameters
    from training.job import run

    started = time.perf_counter()
    data = root / "shop"
    generate(
        data,
        int(SHOP["n_users"]),
        int(SHOP["n_items"]),
        int(SHOP["n_days"]),
        int(SHOP["seed"]),
        sessions_per_user_day=float(SHOP["sessions_per_user_day"]),
    )
    channels = read_channels(data / "interactions.csv", data / "items.csv", data / "users.csv")
    staging = root / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    run(channels, Hyperparameters(**HYPERPARAMETERS), staging / "model", staging / "output")  # type: ignore[arg-type]
    (staging / "model").rename(model_dir)  # only a complete model dir ever has the cached name
    return model_dir, time.perf_counter() - started


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64) * 1000.0
    return {
        "p50_ms": float(np.percentile(array, 50)),
        "p99_ms": float(np.percentile(array, 99)),
        "n": len(values),
    }


def absent_from_layer() -> list[str]:
    """Optional imports the built deps layer lacks (nothing hidden when the layer is not built)."""
    deps = REPO / "build" / "layers" / "deps" / "python"
    return [name for name in OPTIONAL_IMPORTS if deps.is_dir() and not (deps / name).exists()]


def cold_start(model_dir: Path, runs: int) -> dict[str, Any]:
    env = {**os.environ, **BENCH_ENVIRONMENT, "PYTHONDONTWRITEBYTECODE": "1"}
    hidden = absent_from_layer()
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", COLD_START, str(model_dir), *hidden], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        samples.append(json.loads(out.strip().splitlines()[-1]))
    total = [s["imports_s"] + s["load_s"] for s in samples]
    return {
        "total_s": statistics.median(total),
        "imports_s": statistics.median(s["imports_s"] for s in samples),
        "load_s": statistics.median(s["load_s"] for s in samples),
        "faults": samples[0]["faults"],
        "hidden_imports": hidden,
        "runs": runs,
    }


def shoppers(model_dir: Path, limit: int) -> list[dict[str, Any]]:
    profiles = []
    with gzip.open(model_dir / "user_features.jsonl.gz", "rt") as lines:
        for line in lines:
            profile = json.loads(line)
            if profile.get("history"):
                profiles.append(profile)
            if len(profiles) == limit:
                break
    return profiles


@contextlib.contextmanager
def serving_process(model_dir: Path) -> Iterator[None]:
    """This process as a warm retrieval function: env, moto tables with the shoppers' profiles."""
    from moto import mock_aws

    from merchandiser.experiments import create_table

    saved = dict(os.environ)
    os.environ.update({**BENCH_ENVIRONMENT, "MODEL_DIR": str(model_dir)})
    try:
        with mock_aws():
            import boto3

            dynamodb = boto3.resource("dynamodb")
            for name, key in (("users", "user_id"), ("sessions", "user_id"), ("items", "item_id")):
                dynamodb.create_table(
                    TableName=name,
                    BillingMode="PAY_PER_REQUEST",
                    KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                )
            create_table(boto3.client("dynamodb"), "experiments")
            boto3.client("kinesis").create_stream(StreamName="events", ShardCount=1)
            yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def handler_latency(
    model_dir: Path, users: list[dict[str, Any]], requests: int, warmup: int
) -> dict[str, Any]:
    from local_twin.functions import LambdaContext
    from local_twin.http_front import Route, proxy_event
    from merchandiser.serving import STAGES, ServingReport, runtime
    from merchandiser.store import FeatureStore

    runtime.reset()
    FeatureStore(runtime.dynamodb_resource(), "users", "sessions").put_profiles(users, model_version="bench")
    from lambdas.retrieval import handler as retrieval

    reports: list[ServingReport] = []
    create = retrieval.new_report

    def recording(tracer: Any) -> ServingReport:
        reports.append(create(tracer))
        return reports[-1]

    retrieval.new_report = recording  # the handler's own reports, for the stage timings
    route = Route("GET", "/users/{user_id}/recommendations", "retrieval")
    sink = io.StringIO()
    retrieval.logger.registered_handler.stream = sink  # type: ignore[attr-defined]  # logs cost, not shown
    whole: list[float] = []
    measured: list[ServingReport] = []
    statuses: dict[int, int] = {}
    try:
        with contextlib.redirect_stdout(sink):  # the EMF metrics blobs, printed per request
            for number in range(warmup + requests):
                user = users[number % len(users)]["user_id"]
                path = f"/users/{user}/recommendations"
                event = proxy_event("GET", route, path, {"user_id": user}, "k=20", {}, None)
                made = len(reports)
                started = time.perf_counter()
                response = retrieval.handler(event, LambdaContext("retrieval"))
                elapsed = time.perf_counter() - started
                sink.seek(0)
                sink.truncate()
                statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
                if number >= warmup and len(reports) > made:  # a refused request has no report
                    whole.append(elapsed)
                    measured.append(reports[made])
    finally:
        retrieval.new_report = create
    degraded = sum(bool(report.fallbacks) for report in measured)
    stages = {
        stage: percentiles([report.stages[stage] for report in measured if stage in report.stages])
        for stage in STAGES
    }
    candidates = {
        source: statistics.mean(report.candidates.get(source, 0) for report in measured)
        for source in sorted({s for report in measured for s in report.candidates})
    }
    # moto's DynamoDB is not DynamoDB (its response serialization dominates the store stage): the
    # handler without the store read is reported beside the whole, never instead of it
    without_store = [
        elapsed - report.stages.get("store", 0.0) for elapsed, report in zip(whole, measured, strict=True)
    ]
    return {"whole": percentiles(whole), "whole_without_store": percentiles(without_store), "stages": stages,
            "statuses": statuses, "degraded": degraded, "mean_candidates_per_source": candidates}  # fmt: skip


def timed(call: Callable[[], Any], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def raw_libraries(model_dir: Path, repeats: int) -> dict[str, Any]:
    """hnswlib and LightGBM alone on the same sizes: what the handler cannot go below."""
    import hnswlib
    import lightgbm as lgb

    from merchandiser.store import INDEX, ITEM_FACTORS, RANKER

    factors = np.load(model_dir / ITEM_FACTORS)
    index = hnswlib.Index(space="ip", dim=int(factors.shape[1]))
    index.load_index(str(model_dir / INDEX), max_elements=len(factors))
    index.set_ef(CANDIDATES)
    rng = np.random.default_rng(7)
    # user-like queries: the mean of a few item vectors
    queries = [factors[rng.integers(0, len(factors), 5)].mean(axis=0, keepdims=True) for _ in range(64)]
    position = iter(range(10**9))
    hnsw = timed(lambda: index.knn_query(queries[next(position) % 64], k=CANDIDATES, num_threads=1), repeats)
    booster = lgb.Booster(model_file=str(model_dir / RANKER))
    features = rng.normal(size=(CANDIDATES, booster.num_feature())).astype(np.float32)
    lightgbm = timed(lambda: booster.predict(features, num_threads=1), repeats)
    return {"hnswlib_knn_query_k1000": percentiles(hnsw), "lightgbm_predict_1000": percentiles(lightgbm),
            "n_features": booster.num_feature(), "trees": booster.num_trees()}  # fmt: skip


def table(result: dict[str, Any]) -> str:
    rows = [("stage", "p50 ms", "p99 ms", "n")]
    for stage, p in result["handler"]["stages"].items():
        rows.append((f"  {stage}", f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}", str(p["n"])))
    whole = result["handler"]["whole"]
    rows.append(("whole handler", f"{whole['p50_ms']:.2f}", f"{whole['p99_ms']:.2f}", str(whole["n"])))
    bare = result["handler"]["whole_without_store"]
    rows.append(
        ("  (whole minus moto store)", f"{bare['p50_ms']:.2f}", f"{bare['p99_ms']:.2f}", str(bare["n"]))
    )
    for name, p in result["raw"].items():
        if isinstance(p, dict):
            rows.append((f"raw {name}", f"{p['p50_ms']:.2f}", f"{p['p99_ms']:.2f}", str(p["n"])))
    rows.append(("ratio handler/raw", f"{result['ratio']['p50']:.2f}", f"{result['ratio']['p99']:.2f}", ""))
    width = max(len(row[0]) for row in rows)
    return "\n".join(f"{a:<{width}}  {b:>8}  {c:>8}  {d:>6}" for a, b, c, d in rows)


def verdicts(result: dict[str, Any]) -> list[str]:
    checks = [
        ("whole handler p99 < 25 ms", result["handler"]["whole"]["p99_ms"], TARGETS["handler_p99_ms"]),
        (
            "handler p99 <= 1.5 x (raw hnswlib + raw LightGBM) p99",
            result["ratio"]["p99"],
            TARGETS["ratio_p99"],
        ),
        ("cold start < 1.5 s", result["cold_start"]["total_s"], TARGETS["cold_start_s"]),
    ]
    return [f"{'PASS' if value <= limit else 'MISS'}  {name}: {value:.3g}" for name, value, limit in checks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_twin.bench_serving", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--users", type=int, default=500, help="distinct known shoppers to cycle through")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    root = args.out / "serving"
    root.mkdir(parents=True, exist_ok=True)
    model_dir, built = trained_model(root)
    print(f"model: {model_dir} ({f'built in {built:.0f} s' if built else 'cached'})", flush=True)
    cold = cold_start(model_dir, args.cold_runs)
    with serving_process(model_dir):
        handler = handler_latency(model_dir, shoppers(model_dir, args.users), args.requests, args.warmup)
    raw = raw_libraries(model_dir, args.requests)
    hnsw, lgbm = raw["hnswlib_knn_query_k1000"], raw["lightgbm_predict_1000"]
    ratio = {q: handler["whole"][f"{q}_ms"] / (hnsw[f"{q}_ms"] + lgbm[f"{q}_ms"]) for q in ("p50", "p99")}
    manifest = json.loads((model_dir / "manifest.json").read_text())
    result = {
        "catalog_items": int(SHOP["n_items"]), "candidates": CANDIDATES, "model_dir": str(model_dir),
        "model_version": manifest.get("model_version"), "cold_start": cold, "handler": handler, "raw": raw,
        "ratio": ratio, "targets": TARGETS, "cpu_count": os.cpu_count(),
    }  # fmt: skip
    result["verdicts"] = verdicts(result)
    (args.out / "serving.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"cold start: {cold['total_s']:.3f} s (imports {cold['imports_s']:.3f} s"
          f" + artifacts {cold['load_s']:.3f} s, median of {cold['runs']};"
          f" load faults: {cold['faults'] or 'none'})")  # fmt: skip
    print(f"responses: {handler['statuses']}, degraded: {handler['degraded']};"
          f" mean candidates per source: {handler['mean_candidates_per_source']}")  # fmt: skip
    for line in result["verdicts"]:
        print(line)
    print(f"written: {args.out / 'serving.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
