"""``merchandiser simulate``: shoppers with known tastes and a known position bias browse the twin.

Each simulated shopper is a shopper of the data the twin was trained on, with a true relevance
r(user, item) in [0, 1] (``simulation.truth``: the synthetic shop's own latent model when the twin runs
on it, else a category-affinity + popularity model fitted from the shopper's history in the data dir).
It browses through the twin's HTTP API (``simulation.browsing``), examines position p with probability
e(p) = 1/sqrt(1+p) by default, clicks iff it examines and is attracted (attraction = relevance), carts
and buys with known probabilities (``simulation.shoppers``), and sends events with ``recommendation_id``,
``position``, a deterministic ``event_id`` and a timestamp on a simulated clock. It counts exactly what
the twin accepted, per (experiment, variant), and can log the truth of every impression as JSONL.

    merchandiser simulate --state twin.json [--shoppers N] [--seed S] [--start ISO] [--policy popular]
                          [--curve inverse|exponential|flat] [--log FILE] [--json]

Event ids are ``sim<seed>-<start epoch>-<policy>-<shopper>-<n>``: rerunning with the same seed and
``--start`` replays the same ids, which the twin's attribution counts once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local_twin.simulation.browsing import (
    POLICIES,
    ShopperOutcome,
    ShopperSession,
    SimulationConfig,
    arrivals,
    iso,
    now_epoch,
    run_id,
)
from local_twin.simulation.client import ShopApi, TwinHttpApi
from local_twin.simulation.results import SimulationResult
from local_twin.simulation.shoppers import EXAMINATION_CURVES, Behaviour
from local_twin.simulation.truth import ShopTruth, truth_for_data

DEFAULT_SHOPPERS = 100


def simulate(
    api: ShopApi,
    truth: ShopTruth,
    config: SimulationConfig,
    clock: Callable[[], float] = time.monotonic,
) -> SimulationResult:
    """Runs ``config.shoppers`` sessions on a small thread pool; outcomes are merged in shopper order.
    A shopper not started within ``config.max_seconds`` of wall clock is skipped (and counted)."""
    started = clock()
    deadline = started + config.max_seconds
    start_epoch = config.start.timestamp() if config.start else now_epoch()
    prefix = run_id(config, start_epoch)
    users, offsets = arrivals(config, len(truth.user_ids))

    def session(index: int) -> ShopperOutcome | None:
        if clock() > deadline:
            return None
        user_id = truth.user_ids[int(users[index])]
        arrival = start_epoch + float(offsets[index])
        return ShopperSession(index, user_id, arrival, api, truth, config, prefix).run()

    with ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="shopper") as pool:
        outcomes = list(pool.map(session, range(config.shoppers)))
    done = [outcome for outcome in outcomes if outcome is not None]
    return SimulationResult(
        config=config,
        truth=truth.description,
        run_id=prefix,
        start=iso(start_epoch),
        impressions=[page for outcome in done for page in outcome.impressions],
        events=[event for outcome in done for event in outcome.events],
        failures=[failure for outcome in done for failure in outcome.failures],
        retried=[call for outcome in done for call in outcome.retried],
        shoppers_done=len(done),
        shoppers_skipped=len(outcomes) - len(done),
        seconds=clock() - started,
    )


def load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"merchandiser simulate: cannot read the twin's state {path}: {error}") from error
    if not isinstance(state, dict) or not state.get("api_url"):
        raise SystemExit(f"merchandiser simulate: {path} has no api_url; is the twin up (merchandiser up)?")
    return state


def truth_from(state: dict[str, Any], data: Path | None) -> ShopTruth:
    data_dir = data or (Path(state["data_dir"]) if state.get("data_dir") else None)
    if data_dir is None or not data_dir.is_dir():
        raise SystemExit(
            "merchandiser simulate: the shoppers' tastes come from the twin's data; the state names no "
            f"data_dir that exists ({data_dir}); pass --data DIR (the dir given to merchandiser up --data)"
        )
    return truth_for_data(data_dir)


def table(result: SimulationResult) -> str:
    header = ("experiment", "variant", "users", "pages", "clicks", "carts", "purchases", "revenue", "ctr")
    lines = ["{:<16} {:<16} {:>6} {:>6} {:>6} {:>6} {:>9} {:>11} {:>6}".format(*header)]
    for row in result.counts():
        lines.append(
            f"{row['experiment'] or '-':<16} {row['variant']:<16} {row['users']:>6} {row['impressions']:>6} "
            f"{row['clicks']:>6} {row['add_to_carts']:>6} {row['purchases']:>9} {row['revenue']:>11,.2f} "
            f"{row['ctr']:>6.3f}"
        )
    return "\n".join(lines)


def parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise SystemExit(f"merchandiser simulate: --start {text!r} is not an ISO time") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_simulate(args: argparse.Namespace) -> int:
    state = load_state(args.state)
    try:
        api = TwinHttpApi(state["api_url"], state.get("api_key"))
        config = SimulationConfig(
            shoppers=args.shoppers,
            seed=args.seed,
            start=parse_start(args.start),
            policy=args.policy,
            k=args.k,
            behaviour=Behaviour(curve=args.curve),
            workers=args.workers,
            max_seconds=args.max_seconds,
        )
        result = simulate(api, truth_from(state, args.data), config)
    except ValueError as error:
        raise SystemExit(f"merchandiser simulate: {error}") from error
    if args.log:
        result.write_log(args.log)
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        totals = result.totals()
        print(
            f"{result.shoppers_done} shoppers ({result.config.policy} pages, seed {result.config.seed}, "
            f"clock from {result.start}) on {state['api_url']} in {result.seconds:.1f} s: "
            f"{totals['impressions']} pages, {len(result.events)} events; truth: {result.truth}"
        )
        print(table(result))
        if result.shoppers_skipped:
            print(f"{result.shoppers_skipped} shoppers skipped: --max-seconds reached")
    for failure in result.failures[:5]:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if result.failures else 0


def add_parser(commands: Any) -> None:
    simulate_command = commands.add_parser(
        "simulate", help="simulated shoppers with known tastes browse the twin, click, cart and buy"
    )
    simulate_command.add_argument(
        "--state", type=Path, required=True, help="the state file of merchandiser up"
    )
    simulate_command.add_argument(
        "--shoppers", type=int, default=DEFAULT_SHOPPERS, help="distinct shoppers of the twin's data"
    )
    simulate_command.add_argument("--seed", type=int, default=7, help="picks the shoppers, drives every draw")
    simulate_command.add_argument("--start", help="the simulated clock's start, ISO 8601 (default: now)")
    simulate_command.add_argument(
        "--policy", choices=POLICIES, default="recommendations", help="what the home pages show"
    )
    simulate_command.add_argument("--k", type=int, default=10, help="items per page")
    simulate_command.add_argument(
        "--curve", choices=sorted(EXAMINATION_CURVES), default="inverse_sqrt", help="examination by position"
    )
    simulate_command.add_argument("--workers", type=int, default=4, help="shoppers browsing at once")
    simulate_command.add_argument("--max-seconds", type=float, default=600.0, help="wall-clock bound")
    simulate_command.add_argument("--data", type=Path, help="the twin's data dir, when the state has none")
    simulate_command.add_argument("--log", type=Path, help="write one JSON line per impression (the truth)")
    simulate_command.add_argument("--json", action="store_true", help="print the counts as JSON")
    simulate_command.set_defaults(run=cmd_simulate)
