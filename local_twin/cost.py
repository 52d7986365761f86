"""``python -m local_twin.cost`` (``make cost``): the monthly AWS bill of this stack at 1, 10 and 100
recommendation requests per second, beside Amazon Personalize's bill for the same load.

The per-request figures come from the benches when their files exist (``build/bench/serving.json``
from ``python -m local_twin.bench_serving``, ``build/bench/events.json`` from
``python -m local_twin.bench_events``), else from the README's figures; the report says which. Prices:
``local_twin.cost_prices`` (dated, with sources); arithmetic: ``local_twin.cost_model``,
``local_twin.cost_bill`` and ``local_twin.cost_personalize``. ``--json`` also writes
``build/bench/cost.json``. Figures, not assertions: the goal lines say PASS or FAIL, the exit code is 0.

The goal compares this whole stack with Amazon Personalize's engine alone, though a storefront on
Personalize still runs a front: an HTTP API for browsers, an events endpoint, logs, metrics and traces. So
each load also gets two comparisons beside the goal's: "engine only" (this stack without its front, against
Personalize) and "like for like" (this stack, against Personalize + the same front). The front
(``cost_bill.FRONT_RULE``): every API Gateway line (REST requests, data out), the events_api Lambda
(requests, compute), every CloudWatch line (logs, metrics, alarms, dashboard) and X-Ray.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from local_twin.cost_bill import FRONT_RULE, front_usd, stack_bill
from local_twin.cost_model import Assumed, Bill, Load, Measured, StackConfig, traffic
from local_twin.cost_personalize import personalize_bill
from local_twin.cost_prices import PRICES, PRICES_AS_OF, REGION, RULES, TIERED

BENCH_DIR = Path("build/bench")
DEFAULT_RPS = (1.0, 10.0, 100.0)
# The goal of the Scale issue: at most 1/5 of Personalize's bill at 1 rps, no more than it at 100 rps.
GOALS = {1.0: 0.2, 100.0: 1.0}
README_DEFAULTS = "default: the README's bench figures of 2026-11-22"


@dataclass(frozen=True)
class Lever:
    name: str
    load: dict[str, Any]
    config: dict[str, Any]


# Levers built into stacks/ (StackConfig's defaults price them): named in the report.
BUILT = (
    "X-Ray: the API stage's sampling rule, 1% with no reservoir; the event processor passes tracing through",
    "Kinesis: provisioned shards for the peak (1 by default), not on-demand",
    "API Gateway gzips answers of 1 KB or more (min_compression_size)",
    "publish writes only the shopper profiles whose digest changed: histories stored decayed to each"
    " shopper's latest event change only with the shopper's events (a parallel Scan reads the digests)",
    "Serving: SnapStart only where the on-demand init's estimate exceeds 2 s (from ~172k items; not at 100k)",
    "trending counters: one item per (hour, item), 99 ADDs to a transaction, summarised per hour by a"
    " compactor every minute (2 WRU a count, no 400 KB item)",
)
LEVERS = (
    Lever("Lambda on arm64 (aarch64 wheels in the deps layer)", {}, {"arm64": True}),
    Lever("browsers send a page's events in one POST /events", {"events_per_api_call": 2.0}, {}),
)


def read_measured(bench_dir: Path) -> tuple[Measured, list[str]]:
    """The bench figures found under ``bench_dir``, README defaults for the rest; and warnings."""
    defaults = Measured()
    values: dict[str, Any] = {
        f.name: getattr(defaults, f.name) for f in fields(Measured) if f.name != "sources"
    }
    sources = {name: README_DEFAULTS for name in values}
    for name in ("log_bytes_per_page", "response_bytes_per_page"):
        sources[name] = "measured by hand 2026-11-30 on the serving bench's model (README)"
    warnings: list[str] = []
    serving, events, spark = bench_dir / "serving.json", bench_dir / "events.json", bench_dir / "spark.json"
    try:
        if serving.is_file():
            data = json.loads(serving.read_text())
            values["handler_ms"] = float(data["handler"]["whole_without_store"]["p99_ms"])
            # the init pays the fetch's hash check too (absent from benches before it was timed apart)
            cold = data["cold_start"]
            values["cold_start_s"] = float(cold["total_s"]) + float(cold.get("verify_s", 0.0))
            values["bench_catalog_items"] = int(data["catalog_items"])
            values["restore_hooks_s"] = float(cold.get("restore_hooks_s", values["restore_hooks_s"]))
            for name in ("handler_ms", "cold_start_s", "bench_catalog_items", "restore_hooks_s"):
                sources[name] = f"{serving}"
    except (ValueError, KeyError, TypeError) as error:
        warnings.append(
            f"{serving} unreadable ({type(error).__name__}: {error}): README figures used instead"
        )
    try:
        if events.is_file():
            processor = json.loads(events.read_text())["processor"]
            per_batch = processor["events"] / processor["batches"]
            values["processor_cpu_ms_per_event"] = float(processor["cpu_ms_per_event"])
            values["reads_per_batch"] = processor["reads_per_event"] * per_batch
            values["writes_per_shopper_batch"] = (
                processor["session_writes_per_event"] * per_batch / processor["shoppers_per_batch"]
            )
            for name in (
                "processor_cpu_ms_per_event",
                "reads_per_batch",
                "writes_per_shopper_batch",
            ):
                sources[name] = f"{events}"
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as error:
        warnings.append(f"{events} unreadable ({type(error).__name__}: {error}): README figures used instead")
    try:
        if spark.is_file():
            runs = [run for run in json.loads(spark.read_text()) if run.get("data") == "synthetic"]
            if runs:  # the same data, flags and threads on both engines (training.bench_spark)
                last = runs[-1]
                values["spark_overhead"] = float(last["spark"]["seconds"]) / float(last["local"]["seconds"])
                sources["spark_overhead"] = f"{spark}"
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as error:
        warnings.append(f"{spark} unreadable ({type(error).__name__}: {error}): README figures used instead")
    return Measured(**values, sources=sources), warnings


def verdict(rps: float, ratio: float) -> tuple[float | None, str]:
    goal = GOALS.get(rps)
    if goal is None:
        return None, "no goal at this load"
    return goal, f"{'PASS' if ratio <= goal else 'FAIL'} (goal: at most {goal:g}x Personalize's bill)"


def evaluate(loads: list[Load], measured: Measured, assumed: Assumed, config: StackConfig) -> dict[str, Any]:
    results = []
    for load in loads:
        stack, personalize = stack_bill(load, measured, assumed, config), personalize_bill(load)
        ratio = stack.total / personalize.total
        goal, says = verdict(load.rps, ratio)
        front = front_usd(stack)
        levers = {}
        for lever in LEVERS:
            moved = stack_bill(
                replace(load, **lever.load), measured, assumed, replace(config, **lever.config)
            )
            levers[lever.name] = stack.total - moved.total
        every = stack_bill(
            replace(load, **{k: v for lever in LEVERS for k, v in lever.load.items()}),
            measured,
            assumed,
            replace(config, **{k: v for lever in LEVERS for k, v in lever.config.items()}),
        )
        results.append(
            {
                "load": load,
                "traffic": traffic(load, config),
                "stack": stack,
                "personalize": personalize,
                "ratio": ratio,
                "goal": goal,
                "verdict": says,
                "front": front,
                "engine_only": stack.total - front,
                "engine_only_ratio": (stack.total - front) / personalize.total,
                "like_for_like_personalize": personalize.total + front,
                "like_for_like_ratio": stack.total / (personalize.total + front),
                "levers": levers,
                "with_every_lever": every.total,
            }
        )
    return {"results": results, "measured": measured, "assumed": assumed, "config": config}


def human(value: float) -> str:
    if abs(value) >= 1e9:
        return f"{value / 1e9:,.2f}B"
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.2f}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:,.0f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def bill_rows(bill: Bill) -> list[str]:
    return [
        f"  {line.service:<12}{line.item:<68}{human(line.quantity):>10} {line.unit:<15}{line.usd:>11,.2f}"
        for line in bill.lines
    ]


def render(report: dict[str, Any], warnings: list[str]) -> str:
    out = [
        f"Monthly AWS bill, {REGION} list prices as of {PRICES_AS_OF} (local_twin/cost_prices.py), USD",
        "",
    ]
    for result in report["results"]:
        load, t = result["load"], result["traffic"]
        out.append(
            f"== {load.rps:g} recommendation request(s)/s: {human(t.pages)} pages/month, "
            f"{load.events_per_second:g} events/s, {human(load.shoppers)} shoppers, "
            f"{load.catalog_items:,} items =="
        )
        out += bill_rows(result["stack"])
        out.append(f"  {'this stack, total':<106}{result['stack'].total:>11,.2f}")
        out += [f"  ! {note}" for note in result["stack"].notes]
        out.append("  Amazon Personalize, same load:")
        out += bill_rows(result["personalize"])
        out.append(f"  {'Amazon Personalize, total':<106}{result['personalize'].total:>11,.2f}")
        out.append(f"  ratio {result['ratio']:.2f}: {result['verdict']}")
        personalize = result["personalize"].total
        out.append(
            f"  engine only: this stack without its front ({result['front']:,.2f}), "
            f"{result['engine_only']:,.2f} / Personalize {personalize:,.2f} = "
            f"{result['engine_only_ratio']:.2f}"
        )
        out.append(
            f"  like for like: this stack {result['stack'].total:,.2f} / Personalize + the same front "
            f"{result['like_for_like_personalize']:,.2f} = {result['like_for_like_ratio']:.2f}"
        )
        out.append("")
    out.append(
        f"{'rps':>6}  {'this stack':>12}  {'Personalize':>12}  {'ratio':>6}  {'engine':>6}  {'like':>6}"
        "  verdict"
    )
    for result in report["results"]:
        stack, personalize = result["stack"].total, result["personalize"].total
        out.append(
            f"{result['load'].rps:>6g}  {stack:>12,.2f}  {personalize:>12,.2f}  {result['ratio']:>6.2f}"
            f"  {result['engine_only_ratio']:>6.2f}  {result['like_for_like_ratio']:>6.2f}"
            f"  {result['verdict']}"
        )
    out += [
        "ratio: the goal's, this whole stack / Personalize; engine: this stack without its front /",
        "Personalize; like: this stack / (Personalize + the same front): a storefront on Personalize runs",
        "that front too;",
        f"{FRONT_RULE}.",
        "",
        "Built (priced above):",
        *(f"  {built}" for built in BUILT),
        "What would move it (USD saved per month, each lever alone; none of these is built):",
    ]
    out.append(f"  {'':<66}" + "".join(f"{r['load'].rps:>10g} rps" for r in report["results"]))
    for lever in LEVERS:
        out.append(
            f"  {lever.name:<66}" + "".join(f"{r['levers'][lever.name]:>14,.2f}" for r in report["results"])
        )
    out.append(
        f"  {'all together: the bill / ratio to Personalize':<66}"
        + "".join(
            f"{r['with_every_lever']:>8,.0f} {r['with_every_lever'] / r['personalize'].total:>4.2f}"
            for r in report["results"]
        )
    )
    measured: Measured = report["measured"]
    out += ["", "Measured per-request figures used:"]
    for name, source in measured.sources.items():
        out.append(f"  {name} = {getattr(measured, name):g}  ({source})")
    checked = Counter(p.checked for p in PRICES.values()) + Counter(p.checked for p in TIERED.values())
    out.append(
        "Prices: "
        + ", ".join(f"{n} {how}" for how, n in sorted(checked.items()))
        + "; service rules from "
        + ", ".join(sorted({rule[1].split("/")[0] for rule in RULES}))
    )
    out += [f"warning: {warning}" for warning in warnings]
    return "\n".join(out)


def to_json(report: dict[str, Any]) -> dict[str, Any]:
    def bill(b: Bill) -> dict[str, Any]:
        return {"lines": [asdict(line) for line in b.lines], "notes": b.notes, "total_usd": b.total}

    return {
        "prices_as_of": PRICES_AS_OF,
        "region": REGION,
        "prices": {name: asdict(p) for name, p in PRICES.items()}
        | {name: asdict(p) for name, p in TIERED.items()},
        "measured": asdict(report["measured"]),
        "assumed": asdict(report["assumed"]),
        "config": asdict(report["config"]),
        "front_rule": FRONT_RULE,
        "built_levers": list(BUILT),
        "loads": [
            {
                "load": asdict(r["load"]),
                "traffic": asdict(r["traffic"]),
                "stack": bill(r["stack"]),
                "personalize": bill(r["personalize"]),
                "ratio": r["ratio"],
                "goal": r["goal"],
                "verdict": r["verdict"],
                "front_usd": r["front"],
                "engine_only_usd": r["engine_only"],
                "engine_only_ratio": r["engine_only_ratio"],
                "like_for_like_personalize_usd": r["like_for_like_personalize"],
                "like_for_like_ratio": r["like_for_like_ratio"],
                "levers_usd_saved": r["levers"],
                "with_every_lever_usd": r["with_every_lever"],
            }
            for r in report["results"]
        ],
    }


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return value


def not_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_twin.cost", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rps",
        type=positive,
        nargs="+",
        default=list(DEFAULT_RPS),
        help="recommendation requests per second, monthly average (default: 1 10 100)",
    )
    parser.add_argument(
        "--catalog-items", type=lambda text: int(positive(text)), default=Load(1).catalog_items
    )
    parser.add_argument(
        "--events-per-second",
        type=not_negative,
        default=None,
        help=f"behaviour events per second (default: {Load(1).events_per_request:g} per request)",
    )
    parser.add_argument(
        "--personalize-campaigns",
        type=lambda text: int(positive(text)),
        default=Load(1).personalize_campaigns,
        help="Personalize campaigns, each with its own minimum TPS (similar items, ranking: one each)",
    )
    parser.add_argument("--bench-dir", type=Path, default=BENCH_DIR)
    parser.add_argument("--json", action="store_true", help="also write <bench-dir>/cost.json")
    args = parser.parse_args(argv)
    measured, warnings = read_measured(args.bench_dir)
    loads = [
        Load(
            rps=rps,
            catalog_items=args.catalog_items,
            events_per_second_override=args.events_per_second,
            personalize_campaigns=args.personalize_campaigns,
        )
        for rps in args.rps
    ]
    if any(load.catalog_items != measured.bench_catalog_items for load in loads):
        warnings.append(
            f"serving time measured at {measured.bench_catalog_items:,} items, "
            f"priced for {args.catalog_items:,}"
        )
    report = evaluate(loads, measured, Assumed(), StackConfig())
    print(render(report, warnings))
    if args.json:
        args.bench_dir.mkdir(parents=True, exist_ok=True)
        (args.bench_dir / "cost.json").write_text(json.dumps(to_json(report), indent=2))
        print(f"written: {args.bench_dir / 'cost.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
