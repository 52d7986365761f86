"""The templates of the experiment loop: serving's impressions and experiments, the admin routes, the
daily report job (Glue tables, Athena workgroup, schedule) and the online-KPI alarms."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from merchandiser.experiments import SURFACES
from tests.infra.conftest import Synthesized
from tests.infra.test_stacks import (
    ADMIN_FUNCTIONS,
    _as_list,
    _function_statements,
    _resource_paths,
    functions_by_key,
)
from tests.routes import ADMIN_ROUTES


def template(synthesized: Synthesized, stack: str) -> Template:
    return Template.from_json(synthesized.templates[stack])


def actions_of(statements: list[dict[str, Any]], prefix: str) -> list[tuple[list[str], str]]:
    return [
        (sorted(_as_list(s["Action"])), json.dumps(s["Resource"]))
        for s in statements
        if any(action.startswith(prefix) for action in _as_list(s["Action"]))
    ]


def test_serving_functions_put_impressions_on_the_stream_and_read_the_experiments(
    synthesized: Synthesized,
) -> None:
    for key in ("retrieval", "ranking", "reranking"):
        _, resource = functions_by_key(synthesized)[key]
        variables = resource["Properties"]["Environment"]["Variables"]
        assert {"EXPERIMENTS_TABLE", "EVENTS_STREAM"} <= set(variables), key
        statements = _function_statements(synthesized, key)
        assert actions_of(statements, "kinesis:") == [
            (["kinesis:PutRecords"], actions_of(statements, "kinesis:")[0][1])
        ]
        assert "EventsStream" in actions_of(statements, "kinesis:")[0][1]
        scans = [
            resources
            for actions, resources in actions_of(statements, "dynamodb:")
            if actions == ["dynamodb:Scan"]
        ]
        assert len(scans) == 1 and "ExperimentsTable" in scans[0], key


def test_experiment_routes_are_admin_routes_signed_with_iam(synthesized: Synthesized) -> None:
    stack = "Merchandiser-Serving"
    paths = _resource_paths(synthesized.resources(stack, "AWS::ApiGateway::Resource"))
    function_of = {logical_id: key for key, (logical_id, _) in functions_by_key(synthesized).items()}
    for method in synthesized.resources(stack, "AWS::ApiGateway::Method").values():
        props = method["Properties"]
        parts = props["Integration"]["Uri"]["Fn::Join"][1]
        target = next(
            part["Fn::GetAtt"][0] for part in parts if isinstance(part, dict) and "Fn::GetAtt" in part
        ) if any(isinstance(p, dict) and "Fn::GetAtt" in p for p in parts) else None  # fmt: skip
        admin = function_of.get(target or "") in ADMIN_FUNCTIONS
        path = paths[props["ResourceId"]["Ref"]]
        if path.startswith("/experiments"):
            assert admin
        # every route of an admin function is signed; so are the staff's reads the retrieval function serves
        signed = admin or (props["HttpMethod"], path) in ADMIN_ROUTES
        assert props["AuthorizationType"] == ("AWS_IAM" if signed else "NONE"), path


def test_the_experiments_function_reads_its_table_and_the_daily_reports_only(
    synthesized: Synthesized,
) -> None:
    statements = _function_statements(synthesized, "experiments")
    [(actions, table)] = actions_of(statements, "dynamodb:")
    assert actions == ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan"]
    assert "ExperimentsTable" in table
    [(s3_actions, objects)] = actions_of(statements, "s3:")
    assert (
        s3_actions == ["s3:GetObject"] and "/reports/experiments/*" in objects and "/events/" not in objects
    )


def test_the_archive_is_two_glue_tables_with_partition_projection(synthesized: Synthesized) -> None:
    tables = synthesized.resources("Merchandiser-Training", "AWS::Glue::Table")
    by_name = {t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"] for t in tables.values()}
    assert set(by_name) == {"events_raw", "impressions_raw"}
    for name, table in by_name.items():
        prefix = name.removesuffix("_raw")
        parameters = table["Parameters"]
        assert parameters["projection.enabled"] == "true" and parameters["projection.day.digits"] == "2"
        location = json.dumps(parameters["storage.location.template"])
        assert f"/{prefix}/year=${{year}}/month=${{month}}/day=${{day}}/" in location
        assert [key["Name"] for key in table["PartitionKeys"]] == ["year", "month", "day"]
        columns = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
        assert columns["timestamp"] == "string"  # parsed by the view the job creates
        assert (
            table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
            == "org.openx.data.jsonserde.JsonSerDe"
        )
    items = {c["Name"]: c["Type"] for c in by_name["impressions_raw"]["StorageDescriptor"]["Columns"]}
    assert items["items"] == "array<struct<item_id:string,position:bigint,source:string>>"


def test_athena_results_are_encrypted_in_the_bucket_and_the_job_runs_daily(synthesized: Synthesized) -> None:
    training = template(synthesized, "Merchandiser-Training")
    training.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": Match.object_like(
                {
                    "EnforceWorkGroupConfiguration": True,
                    "BytesScannedCutoffPerQuery": Match.any_value(),
                    "ResultConfiguration": Match.object_like(
                        {"EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}}
                    ),
                }
            )
        },
    )
    job, _ = functions_by_key(synthesized)["experiment-report"]
    training.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(30 2 * * ? *)",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [job, "Arn"]}})],
        },
    )
    statements = _function_statements(synthesized, "experiment-report")
    [(athena, workgroup)] = actions_of(statements, "athena:")
    assert athena == ["athena:GetQueryExecution", "athena:GetQueryResults", "athena:StartQueryExecution"]
    assert "workgroup/merchandiser-reports" in workgroup
    [(_, glue)] = actions_of(statements, "glue:")
    assert "table/merchandiser_archive/events_raw" in glue and "*" not in glue


def test_each_surface_alarms_when_its_ctr_falls_below_70_percent_of_its_baseline(
    synthesized: Synthesized,
) -> None:
    alarms = synthesized.resources("Merchandiser-Monitoring", "AWS::CloudWatch::Alarm").values()
    ctr = [a["Properties"] for a in alarms if "CTR on" in a["Properties"].get("AlarmDescription", "")]
    assert len(ctr) == len(SURFACES)
    for alarm in ctr:
        assert alarm["Threshold"] == 0.7 and alarm["ComparisonOperator"] == "LessThanThreshold"
        queries = {q["Id"]: q for q in alarm["Metrics"]}
        expression = next(q for q in queries.values() if "Expression" in q)
        assert "/" in expression["Expression"]
        names = {q["MetricStat"]["Metric"]["MetricName"] for q in queries.values() if "MetricStat" in q}
        assert names == {"Ctr", "CtrBaseline"}
        dimensions = {
            d["Name"]: d["Value"]
            for q in queries.values()
            if "MetricStat" in q
            for d in q["MetricStat"]["Metric"]["Dimensions"]
        }
        assert dimensions["variant"] == "all" and dimensions["surface"] in SURFACES
