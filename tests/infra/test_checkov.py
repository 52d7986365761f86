"""checkov over the synthesized templates: every failed check is fixed or skipped with a stated reason.

checkov runs from its own virtualenv (``make checkov-venv``: it pins boto3 and networkx versions the
project cannot share); ``CHECKOV=/path/to/checkov`` points the test at another one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synthesized

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKOV_VENV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"


def checkov_binary() -> str:
    found = os.environ.get("CHECKOV") or (
        str(CHECKOV_VENV) if CHECKOV_VENV.is_file() else shutil.which("checkov")
    )
    if not found:
        pytest.fail("checkov is not installed: run `make checkov-venv` (checkov-requirements.txt)")
    return found


def run_checkov(directory: Path) -> dict[str, Any]:
    """checkov's CloudFormation report over every template in ``directory`` (passed, failed, skipped)."""
    done = subprocess.run(
        [checkov_binary(), "--directory", str(directory), "--framework", "cloudformation", "--output", "json",
         "--soft-fail", "--skip-download"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = [r for r in reports if r.get("check_type") == "cloudformation"]
    return dict(report)


@pytest.fixture(scope="module")
def report(synthesized: Synthesized) -> dict[str, Any]:
    templates = synthesized.outdir / "templates-only"  # the templates alone, not the asset folders
    templates.mkdir(exist_ok=True)
    for template in synthesized.outdir.glob("*.template.json"):
        shutil.copy(template, templates / template.name)
    return run_checkov(templates)


def test_checkov_finds_no_failed_check_in_the_templates(report: dict[str, Any]) -> None:
    failed = [
        f"{check['check_id']} {check['check_name']}: {check['file_path']} {check['resource']}"
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, (
        "fix these in stacks/ or skip them with a reason (stacks/checkov_skips.py):\n" + "\n".join(failed)
    )
    assert report["summary"]["passed"] > 200 and report["summary"]["parsing_errors"] == 0


def test_every_skipped_check_states_its_reason(report: dict[str, Any]) -> None:
    skipped = report["results"]["skipped_checks"]
    assert skipped  # the VPC, KMS and synchronous-DLQ checks are skipped on purpose
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason.strip()) > 20, (check["check_id"], check["resource"])


def test_checkov_reports_a_failing_template(tmp_path: Path) -> None:
    # Given a queue without encryption and a function without DLQ, VPC or concurrency limit
    template = {
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Skipped": {
                "Type": "AWS::SQS::Queue",
                "Properties": {},
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_27", "comment": "a stated reason"}]}},
            },
        }
    }
    (tmp_path / "bare.template.json").write_text(json.dumps(template))
    # When checkov runs, Then it fails the bare queue and skips the one with a reason
    result = run_checkov(tmp_path)["results"]
    assert [(c["check_id"], c["resource"]) for c in result["failed_checks"]] == [
        ("CKV_AWS_27", "AWS::SQS::Queue.Queue")
    ]
    assert [(c["check_id"], c["check_result"]["suppress_comment"]) for c in result["skipped_checks"]] == [
        ("CKV_AWS_27", "a stated reason")
    ]
