"""The model out of the layers: serving sized by the catalogue, SnapStart on published versions where the
on-demand cold start needs it, the live model version in an SSM parameter no template writes, and the
canary (CodeDeploy) with its alarms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks import constants as c
from stacks.constants import SERVING_FUNCTIONS
from stacks.permissions import TABLE_WRITE
from tests.infra.conftest import Synthesized
from tests.infra.test_stacks import _as_list, _function_statements, functions_by_key, template

SERVING = "Merchandiser-Serving"
PARAMETER = "/Merchandiser-Serving/live-model-version"


def serving_functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    found = functions_by_key(synthesized)
    return {name: found[name][1]["Properties"] for name in SERVING_FUNCTIONS}


def test_serving_functions_at_the_default_catalogue_init_on_demand_sized_by_the_catalogue(
    synthesized: Synthesized,
) -> None:
    # Given the default 100,000 items: an on-demand init of ~1.6 s, within the budget without SnapStart
    for name, props in serving_functions(synthesized).items():
        assert "SnapStart" not in props, name
        assert props["MemorySize"] == c.serving_memory_mb(c.DEFAULT_CATALOG_ITEMS), name
        assert props["EphemeralStorage"] == {"Size": 512}, name  # the model's files, memory-mapped
        variables = props["Environment"]["Variables"]
        assert variables["MODEL_IN_MEMORY"] == "False", name
        assert variables["MODEL_PARAMETER"] == PARAMETER and variables["MODEL_DIR"] == "", name
        assert "Ref" in json.dumps(variables["ARTIFACTS_BUCKET"]) or "ImportValue" in json.dumps(
            variables["ARTIFACTS_BUCKET"]
        )
    # and no warm pool on the live aliases
    aliases = synthesized.resources(SERVING, "AWS::Lambda::Alias").values()
    assert len(aliases) == len(SERVING_FUNCTIONS)
    assert all("ProvisionedConcurrencyConfig" not in a["Properties"] for a in aliases)


def test_the_live_model_parameter_is_in_no_template(synthesized: Synthesized) -> None:
    # Given every template: no resource holds the parameter, so `cdk deploy` can never revert its value
    assert not synthesized.all_resources("AWS::SSM::Parameter")
    assert PARAMETER not in json.dumps(
        synthesized.templates[SERVING]["Resources"].get("LiveModelParameter", {})
    )


def test_serving_reads_only_the_parameter_and_the_models_prefix(synthesized: Synthesized) -> None:
    for name in SERVING_FUNCTIONS:
        statements = _function_statements(synthesized, name)
        ssm = [s for s in statements if any(a.startswith("ssm:") for a in _as_list(s["Action"]))]
        assert len(ssm) == 1 and _as_list(ssm[0]["Action"]) == ["ssm:GetParameter"], name
        assert f"parameter{PARAMETER}" in json.dumps(ssm[0]["Resource"])
        reads = [s for s in statements if _as_list(s["Action"]) == ["s3:GetObject"]]
        assert any("/models/*" in json.dumps(s["Resource"]) for s in reads), name


def test_memory_and_start_mode_follow_the_catalogue_formula() -> None:
    # Given 100k or 1M items, what a load into memory holds in /tmp at once fits SnapStart's 512 MB
    assert c.serving_snapstart_fits(100_000) and c.serving_memory_mb(100_000) == 1024
    assert c.serving_snapstart_fits(1_000_000) and c.serving_ephemeral_mb(1_000_000) == 512
    assert c.serving_memory_mb(1_000_000) >= c.SERVING_BASE_MEMORY_MB + 2 * c.model_mb(1_000_000)
    # past about 1.08M items it does not: /tmp for the memory-mapped files instead
    assert not c.serving_snapstart_fits(1_100_000) and not c.serving_uses_snapstart(1_100_000)
    assert c.serving_ephemeral_mb(2_000_000) >= 1.1 * c.model_mb(2_000_000)
    assert c.serving_memory_mb(50_000_000) == c.LAMBDA_MAX_MEMORY_MB  # capped at Lambda's maximum


def test_the_on_demand_init_estimate_is_the_bench_s_imports_and_load_at_lambda_s_cpu_share() -> None:
    # 0.66 s of imports + 0.29 s of load at 100k on a full core (2026-11-30); 1,024 MB is 1024/1769 of one
    assert c.serving_init_estimate_s(100_000) == pytest.approx(0.95 * 1769 / 1024)  # 1.64 s
    assert c.serving_init_estimate_s(100_000, 1769) == pytest.approx(0.95)
    assert c.serving_init_estimate_s(100_000, 4096) == pytest.approx(0.95)  # no faster than one core
    # a million items get 2,432 MB, over a full core: 0.66 + 2.9 s
    assert c.serving_init_estimate_s(1_000_000) == pytest.approx(3.56)


def test_snapstart_where_the_on_demand_init_needs_it_and_its_tmp_fits() -> None:
    # At the default catalogue the on-demand init (1.64 s) is within 2/3 of the 3 s budget: no SnapStart, and
    # no provisioned concurrency
    assert 3 * c.SNAPSTART_ABOVE_INIT_S == 2 * c.SERVING_COLD_START_BUDGET_S
    assert not c.serving_uses_snapstart(c.DEFAULT_CATALOG_ITEMS)
    assert c.serving_start_mode(c.DEFAULT_CATALOG_ITEMS) == c.START_ON_DEMAND
    # the crossover: the estimate passes 2 s at 1,024 MB between 171,626 and 171,627 items
    assert c.serving_start_mode(171_626) == c.START_ON_DEMAND
    assert c.serving_init_estimate_s(171_627) > c.SNAPSTART_ABOVE_INIT_S >= c.serving_init_estimate_s(171_626)
    assert c.serving_start_mode(171_627) == c.START_SNAPSTART
    # from there to the end of SnapStart's /tmp, SnapStart (the estimate stays over 2 s as memory grows)
    for items in (200_000, 268_435, 300_000, 500_000, 700_000, 1_000_000, 1_084_587):
        assert c.serving_start_mode(items) == c.START_SNAPSTART, items
    # beyond, provisioned concurrency as before
    assert c.serving_start_mode(1_084_588) == c.START_PROVISIONED
    assert c.serving_start_mode(2_000_000) == c.START_PROVISIONED


def test_the_snapstart_setting_overrides_the_rule_within_its_tmp() -> None:
    # on: SnapStart even where the on-demand init is short; its 512 MB of /tmp
    assert c.serving_start_mode(100_000, "on") == c.START_SNAPSTART
    assert c.serving_start_mode(1_084_587, "on") == c.START_SNAPSTART
    # off: no SnapStart; where the on-demand init would miss the budget's margin, warm containers instead
    assert c.serving_start_mode(100_000, "off") == c.START_ON_DEMAND
    assert c.serving_start_mode(1_000_000, "off") == c.START_PROVISIONED
    assert c.serving_start_mode(2_000_000, "off") == c.START_PROVISIONED
    assert c.serving_ephemeral_mb(1_000_000, snap_start=False) >= 1.1 * c.model_mb(1_000_000)
    # auto is the default
    assert c.serving_uses_snapstart(1_000_000, "auto") and not c.serving_uses_snapstart(100_000, "auto")


def test_the_snapstart_setting_refuses_on_past_its_tmp_and_unknown_values() -> None:
    with pytest.raises(ValueError, match=r"snapStart=on: at 1,084,588 items .* over SnapStart's 512 MB"):
        c.serving_start_mode(1_084_588, "on")
    for bad in ("yes", "true", "ON", ""):
        with pytest.raises(ValueError, match="expected one of auto, on, off"):
            c.serving_uses_snapstart(100_000, bad)


def synthesized_for(
    items: int, tmp_path: Any, snap_start: str | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The serving functions' and aliases' properties of the stack synthesized for ``items`` items (and
    ``-c merchandiser:snapStart``, when given)."""
    from app import build_app
    from tests.infra.conftest import make_tiny_layers

    context: dict[str, Any] = {c.CONTEXT_CATALOG_ITEMS: items, c.CONTEXT_CDK_NAG: "false"}
    if snap_start is not None:
        context[c.CONTEXT_SNAPSTART] = snap_start
    app = build_app(
        outdir=str(tmp_path / "out"),
        layers_dir=make_tiny_layers(tmp_path / "layers"),
        context=context,
    )
    resources = app.synth().get_stack_by_name(SERVING).template["Resources"]
    functions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    serving = [p for p in functions if "MODEL_PARAMETER" in p["Environment"]["Variables"]]
    aliases = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert len(serving) == len(SERVING_FUNCTIONS)
    return serving, aliases


def test_a_million_item_catalogue_loads_into_memory_under_snapstart(tmp_path: Any) -> None:
    # Given a 1M-item catalogue (context merchandiser:catalogItems)
    serving, aliases = synthesized_for(1_000_000, tmp_path)
    # Then SnapStart with its 512 MB of /tmp, the model loaded into memory, memory for it, no warm pool
    for props in serving:
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert props["EphemeralStorage"]["Size"] == 512
        assert props["Environment"]["Variables"]["MODEL_IN_MEMORY"] == "True"
        assert props["MemorySize"] == c.serving_memory_mb(1_000_000)
    assert all("ProvisionedConcurrencyConfig" not in a for a in aliases)


def test_a_catalogue_too_big_for_snapstart_gets_provisioned_concurrency(tmp_path: Any) -> None:
    # Given a 2M-item catalogue
    items = 2_000_000
    serving, aliases = synthesized_for(items, tmp_path)
    # Then no SnapStart, /tmp and memory for the model, and warm containers on every live alias instead
    for props in serving:
        assert "SnapStart" not in props
        assert props["Environment"]["Variables"]["MODEL_IN_MEMORY"] == "False"
        assert props["EphemeralStorage"]["Size"] == c.serving_ephemeral_mb(items)
        assert props["MemorySize"] == c.serving_memory_mb(items)
    assert [a["ProvisionedConcurrencyConfig"] for a in aliases] == [
        {"ProvisionedConcurrentExecutions": c.SERVING_PROVISIONED_CONCURRENCY}
    ] * len(SERVING_FUNCTIONS)


def test_snapstart_on_puts_the_default_catalogue_in_memory_under_snapstart(tmp_path: Any) -> None:
    # Given -c merchandiser:snapStart=on at the default catalogue
    serving, aliases = synthesized_for(c.DEFAULT_CATALOG_ITEMS, tmp_path, "on")
    for props in serving:
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        assert props["EphemeralStorage"]["Size"] == 512
        assert props["Environment"]["Variables"]["MODEL_IN_MEMORY"] == "True"
    assert all("ProvisionedConcurrencyConfig" not in a for a in aliases)


def test_snapstart_off_at_a_million_items_keeps_warm_containers_instead(tmp_path: Any) -> None:
    # Given -c merchandiser:snapStart=off where the rule would put SnapStart (the on-demand init ~3.6 s)
    items = 1_000_000
    serving, aliases = synthesized_for(items, tmp_path, "off")
    for props in serving:
        assert "SnapStart" not in props
        assert props["Environment"]["Variables"]["MODEL_IN_MEMORY"] == "False"
        assert props["EphemeralStorage"]["Size"] == c.serving_ephemeral_mb(items, snap_start=False) > 512
    assert [a["ProvisionedConcurrencyConfig"] for a in aliases] == [
        {"ProvisionedConcurrentExecutions": c.SERVING_PROVISIONED_CONCURRENCY}
    ] * len(SERVING_FUNCTIONS)


@pytest.mark.parametrize(
    ("items", "setting", "message"),
    [
        (c.DEFAULT_CATALOG_ITEMS, "yes", r"merchandiser:snapStart=yes: expected one of auto, on, off"),
        (2_000_000, "on", r"merchandiser:snapStart=on: at 2,000,000 items .* over SnapStart's 512 MB"),
    ],
)
def test_a_bad_snapstart_setting_fails_the_synth(
    items: int, setting: str, message: str, tmp_path: Any
) -> None:
    with pytest.raises(ValueError, match=message):
        synthesized_for(items, tmp_path, setting)


def test_every_live_alias_has_a_canary_deployment_group_watching_every_alarm(
    synthesized: Synthesized,
) -> None:
    serving = template(synthesized, SERVING)
    serving.resource_count_is("AWS::CodeDeploy::Application", 1)
    groups = synthesized.resources(SERVING, "AWS::CodeDeploy::DeploymentGroup")
    alarms = synthesized.resources(SERVING, "AWS::CloudWatch::Alarm")
    assert len(groups) == len(SERVING_FUNCTIONS) and len(alarms) == 2 * len(SERVING_FUNCTIONS)
    for group in groups.values():
        props = group["Properties"]
        assert props["DeploymentConfigName"] == "CodeDeployDefault.LambdaCanary10Percent5Minutes"
        assert props["AlarmConfiguration"]["Enabled"] is True
        assert len(props["AlarmConfiguration"]["Alarms"]) == len(alarms)
        assert set(props["AutoRollbackConfiguration"]["Events"]) == {
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_REQUEST",
            "DEPLOYMENT_STOP_ON_ALARM",
        }
    metrics = {(a["Properties"]["MetricName"], a["Properties"]["Threshold"]) for a in alarms.values()}
    assert metrics == {("Errors", c.CANARY_ERRORS_PER_MINUTE), ("Duration", c.CANARY_P99_MS)}
    # the aliases change through CodeDeploy when CloudFormation changes them too (new code)
    for alias in synthesized.resources(SERVING, "AWS::Lambda::Alias").values():
        assert "CodeDeployLambdaAliasUpdate" in alias["UpdatePolicy"]


def test_publish_sets_the_parameter_and_starts_canaries_on_exactly_the_serving_resources(
    synthesized: Synthesized,
) -> None:
    _, publish = functions_by_key(synthesized)["publish"]
    variables = publish["Properties"]["Environment"]["Variables"]
    assert variables["MODEL_PARAMETER"] == PARAMETER and variables["SERVING_ALIAS"] == "live"
    assert len(variables["SERVING_FUNCTIONS"]["Fn::Join"][1]) == len(SERVING_FUNCTIONS)
    assert len(variables["DEPLOYMENT_GROUPS"]["Fn::Join"][1]) == len(SERVING_FUNCTIONS)
    assert "MODEL_LAYER_NAME" not in variables
    by_actions = {
        tuple(sorted(_as_list(s["Action"]))): s["Resource"]
        for s in _function_statements(synthesized, "publish")
        if any(a.split(":")[0] in ("lambda", "ssm", "codedeploy") for a in _as_list(s["Action"]))
    }
    assert set(by_actions) == {
        ("ssm:GetParameter", "ssm:PutParameter"),
        ("lambda:GetFunctionConfiguration", "lambda:PublishVersion", "lambda:UpdateFunctionConfiguration"),
        ("lambda:GetAlias", "lambda:UpdateAlias"),
        ("lambda:ListAliases", "lambda:ListVersionsByFunction"),
        ("lambda:DeleteFunction",),
        ("codedeploy:CreateDeployment",),
        ("codedeploy:GetApplicationRevision", "codedeploy:RegisterApplicationRevision"),
        ("codedeploy:GetDeploymentConfig",),
    }
    assert f"parameter{PARAMETER}" in json.dumps(by_actions[("ssm:GetParameter", "ssm:PutParameter")])
    assert len(_as_list(by_actions[("codedeploy:CreateDeployment",)])) == len(SERVING_FUNCTIONS)
    # the only wildcard: the serving functions' versions, which the canary prunes
    deletable = by_actions.pop(("lambda:DeleteFunction",))
    assert "*" not in json.dumps(list(by_actions.values()))
    assert len(_as_list(deletable)) == len(SERVING_FUNCTIONS)
    assert all(json.dumps(arn).endswith(':*"]]}') for arn in _as_list(deletable)), deletable


def test_publish_prunes_versions_of_the_serving_functions_only(synthesized: Synthesized) -> None:
    """Listing on the serving functions' ARNs; deleting only ``<function ARN>:*`` (their versions), never an
    unqualified ARN (the function itself) nor another function's."""
    by_actions = {
        tuple(sorted(_as_list(s["Action"]))): _as_list(s["Resource"])
        for s in _function_statements(synthesized, "publish")
        if any(a.startswith("lambda:") for a in _as_list(s["Action"]))
    }
    functions = by_actions[("lambda:GetFunctionConfiguration", "lambda:PublishVersion",
                            "lambda:UpdateFunctionConfiguration")]  # fmt: skip
    assert by_actions[("lambda:ListAliases", "lambda:ListVersionsByFunction")] == functions
    deletable = by_actions[("lambda:DeleteFunction",)]
    # each is Fn::Join of a serving function's ARN (as the statement above names it) and ":*"
    assert [arn["Fn::Join"][1] for arn in deletable] == [[function, ":*"] for function in functions]


def test_a_stopped_canary_reaches_publish(synthesized: Synthesized) -> None:
    rules = synthesized.resources("Merchandiser-Training", "AWS::Events::Rule")
    patterns = [r["Properties"].get("EventPattern", {}) for r in rules.values()]
    canary = [p for p in patterns if p.get("source") == ["aws.codedeploy"]]
    assert len(canary) == 1
    assert canary[0]["detail-type"] == ["CodeDeploy Deployment State-change Notification"]
    assert canary[0]["detail"]["state"] == ["FAILURE", "STOP"]


def test_publish_scans_the_users_table_for_digests_and_writes_it(synthesized: Synthesized) -> None:
    """``Shoppers.profile_digests`` (a Scan) before ``put_profiles`` (BatchWriteItem): on the users table."""
    on_users = [
        sorted(_as_list(s["Action"]))
        for s in _function_statements(synthesized, "publish")
        if "UsersTable" in json.dumps(s["Resource"])
    ]
    assert on_users == [sorted([*TABLE_WRITE, "dynamodb:Scan"])]
