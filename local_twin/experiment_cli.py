"""``merchandiser experiment create | list | report``: the experiments admin routes of a running twin.

    merchandiser experiment create --state twin.json --file EXPERIMENT.json   # PUT /experiments/{name}
    merchandiser experiment list --state twin.json                            # GET /experiments
    merchandiser experiment report --state twin.json --name NAME [--json]     # GET /experiments/{name}/report

Over the twin's HTTP API, as a retailer's back office would call the deployed one
(``local_twin.api_client``): the storefront's API key (``x-api-key``) when the state file has one, and
every request signed with SigV4 for ``execute-api`` (admin routes are IAM-authorized), with the
credentials of the environment or, without any, the twin's test ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3

from local_twin.api_client import send
from merchandiser.experiments import parse_experiment, print_report

TWIN_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
TIMEOUT_SECONDS = 60.0  # a report on the twin is computed on the request


class AdminApi:
    def __init__(self, state: dict[str, Any]):
        self.base = str(state["api_url"]).rstrip("/")
        self.api_key = state.get("api_key")

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        if boto3.session.Session().get_credentials() is None:  # the twin takes any: its test ones
            os.environ.update(TWIN_CREDENTIALS)
        try:
            response = send(
                method, self.base + path, body, api_key=self.api_key, signed=True, timeout=TIMEOUT_SECONDS
            )
        except OSError as error:
            raise SystemExit(f"merchandiser experiment: cannot reach {self.base}: {error}") from error
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": "NOT_JSON", "message": response.body[:200].decode(errors="replace")}
        return response.status, answer if isinstance(answer, dict) else {"body": answer}


def load_state(path: Path) -> dict[str, Any]:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"merchandiser experiment: cannot read the twin's state {path}: {error}") from error
    if not isinstance(state, dict) or not state.get("api_url"):
        raise SystemExit(f"merchandiser experiment: {path} has no api_url; is the twin up (merchandiser up)?")
    return state


def failed(status: int, answer: dict[str, Any]) -> int:
    print(f"{status} {answer.get('error', 'ERROR')}: {answer.get('message', answer)}", file=sys.stderr)
    return 1


def cmd_create(args: argparse.Namespace) -> int:
    try:
        definition = json.loads(args.file.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"merchandiser experiment create: cannot read {args.file}: {error}") from error
    name = definition.get("name") if isinstance(definition, dict) else None
    if not isinstance(name, str) or not name:
        raise SystemExit(f'merchandiser experiment create: {args.file} names no experiment ("name")')
    status, answer = AdminApi(load_state(args.state)).call(
        "PUT", f"/experiments/{quote(name, safe='')}", definition
    )
    if status != 200:
        return failed(status, answer)
    experiment = parse_experiment(answer)
    shares = ", ".join(f"{v.name} {v.share:.0%}" for v in experiment.variants)
    print(f"experiment {experiment.name} {experiment.status} on {', '.join(experiment.surfaces)}: {shares}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    status, answer = AdminApi(load_state(args.state)).call("GET", "/experiments")
    if status != 200:
        return failed(status, answer)
    experiments = answer.get("experiments", [])
    if not experiments:
        print("no experiments")
    for raw in experiments:
        experiment = parse_experiment(raw)
        shares = ", ".join(
            f"{v.name} {v.share:.0%}" + (f" ({v.policy})" if v.policy else "") for v in experiment.variants
        )
        print(f"{experiment.name:<24} {experiment.status:<8} {','.join(experiment.surfaces):<24} {shares}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    path = f"/experiments/{quote(args.name, safe='')}/report"
    status, answer = AdminApi(load_state(args.state)).call("GET", path)
    if status != 200:
        return failed(status, answer)
    print_report(answer, as_json=args.json)
    return 0


def add_parser(commands: Any) -> None:
    experiment = commands.add_parser("experiment", help="start, list and read experiments on the twin")
    actions = experiment.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="start (or change) the experiment defined in a JSON file")
    create.add_argument("--state", type=Path, required=True, help="the state file of merchandiser up")
    create.add_argument("--file", type=Path, required=True, help="the experiment's definition (JSON)")
    create.set_defaults(run=cmd_create)
    listing = actions.add_parser("list", help="every experiment, running or stopped")
    listing.add_argument("--state", type=Path, required=True, help="the state file of merchandiser up")
    listing.set_defaults(run=cmd_list)
    report = actions.add_parser("report", help="an experiment's report over the twin's archive")
    report.add_argument("--state", type=Path, required=True, help="the state file of merchandiser up")
    report.add_argument("--name", required=True, help="the experiment's name")
    report.add_argument("--json", action="store_true", help="print the report's JSON")
    report.set_defaults(run=cmd_report)
