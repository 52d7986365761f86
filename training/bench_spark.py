"""The Spark engine against the single-machine one (``make bench``): ``python -m training.bench_spark``.

The same job, data and flags on both engines (``--engine local`` / ``--engine spark``, Spark in local
mode on this machine's cores), on UCI Online Retail and on a synthetic shop of about ``N`` interactions:
the pipeline's NDCG@10 on each and their ratio (the target: within 5%), wall time and peak memory.
The Python process's peak is measured (``VmHWM``); Spark's JVM is capped by ``SPARK_DRIVER_MEMORY``
(4g by default) and is reported as that cap. Figures, not assertions: it prints a table and writes
``build/bench/spark.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from training.benchmark import (
    BENCH_DIR,
    SCALE_FLAGS,
    SHOP_DAYS,
    SHOP_ITEMS,
    SHOP_ROWS_PER_USER,
    retail_dir,
    run_job,
)
from training.datasets import synthetic_shop


def compare(name: str, data_dir: Path, threads: int, flags: tuple[str, ...] = ()) -> dict[str, Any]:
    result: dict[str, Any] = {"data": name, "flags": list(flags)}
    for engine in ("local", "spark"):
        print(f"{name}: training with --engine {engine} {' '.join(flags)} ...", flush=True)
        job = run_job(
            data_dir, BENCH_DIR / f"spark-bench-{name}-{engine}", threads, ("--engine", engine, *flags)
        )
        result[engine] = {
            "seconds": round(job["seconds"], 1),
            "python_peak_mib": round(job["peak_mib"], 1),
            "ndcg@10": job["evaluation"]["models"]["pipeline"]["ndcg@10"],
            "recall@20": job["evaluation"]["models"]["pipeline"]["recall@20"],
        }
    result["ndcg_ratio"] = result["spark"]["ndcg@10"] / result["local"]["ndcg@10"]
    result["spark_jvm_cap"] = os.environ.get("SPARK_DRIVER_MEMORY", "4g")
    return result


def synthetic_dir(n_interactions: int) -> Path:
    n_users = round(n_interactions / SHOP_ROWS_PER_USER)  # the same shop as training.benchmark's
    shop_dir = BENCH_DIR / f"synthetic-{n_users}u-{SHOP_ITEMS}i"
    if not (shop_dir / "interactions.csv").exists():
        print(f"generating a synthetic shop of {n_users} users x {SHOP_ITEMS} items ...", flush=True)
        synthetic_shop.generate(shop_dir, n_users, SHOP_ITEMS, SHOP_DAYS)
    return shop_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a training-channel dir (default: UCI Online Retail)")
    parser.add_argument("--synthetic-interactions", type=int, default=10_000_000)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--skip-retail", action="store_true", help="only the synthetic shop")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--synthetic-threads",
        type=int,
        default=os.cpu_count() or 1,
        help="the local engine's on the synthetic shop",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "spark.json")
    args = parser.parse_args(argv)
    results = [] if args.skip_retail else [compare("online-retail", retail_dir(args.data), args.threads)]
    if not args.skip_synthetic:
        results.append(
            compare(
                "synthetic", synthetic_dir(args.synthetic_interactions), args.synthetic_threads, SCALE_FLAGS
            )
        )
    print(f"\n{'data':<16}{'engine':<8}{'ndcg@10':>10}{'recall@20':>11}{'seconds':>10}{'py peak MiB':>13}")
    for result in results:
        for engine in ("local", "spark"):
            row = result[engine]
            print(
                f"{result['data']:<16}{engine:<8}{row['ndcg@10']:>10.4f}{row['recall@20']:>11.4f}"
                f"{row['seconds']:>10.1f}{row['python_peak_mib']:>13.0f}"
            )
        verdict = "PASS" if abs(result["ndcg_ratio"] - 1) <= 0.05 else "MISS"
        ratio = result["ndcg_ratio"]
        print(f"{verdict}: {result['data']} spark / local NDCG@10 = {ratio:.3f} (target 0.95-1.05)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
