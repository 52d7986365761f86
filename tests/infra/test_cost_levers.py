"""The cost levers built into the stacks (local_twin/cost.py prices them as built): the API stage's X-Ray
sampling rule, the provisioned events stream sized from the peak (or on demand, by context) and API
Gateway's response compression."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from stacks import constants as c
from tests.infra.conftest import Synthesized

SERVING, STREAMING = "Merchandiser-Serving", "Merchandiser-Streaming"


def _only(synthesized: Synthesized, stack: str, resource_type: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = synthesized.resources(stack, resource_type).items()
    return logical_id, resource["Properties"]


def test_the_api_stage_has_its_own_sampling_rule_of_1_percent_with_no_reservoir(
    synthesized: Synthesized,
) -> None:
    api_id, api = _only(synthesized, SERVING, "AWS::ApiGateway::RestApi")
    stage_id, stage = _only(synthesized, SERVING, "AWS::ApiGateway::Stage")
    _, rule = _only(synthesized, SERVING, "AWS::XRay::SamplingRule")
    sampling = rule["SamplingRule"]
    assert stage["TracingEnabled"] is True
    assert (sampling["FixedRate"], sampling["ReservoirSize"]) == (0.01, 0)
    assert sampling["Priority"] < 10_000  # before the account's Default rule
    assert len(sampling["RuleName"]) <= 32
    # API Gateway's service name is {api name}/{stage name}; the ARN is this API's stage v1
    assert sampling["ServiceName"] == f"{api['Name']}/{stage['StageName']}"
    assert sampling["ServiceType"] == "AWS::ApiGateway::Stage"
    arn = sampling["ResourceARN"]["Fn::Join"][1]
    assert {"Ref": api_id} in arn and {"Ref": stage_id} in arn
    assert "::/restapis/" in "".join(part for part in arn if isinstance(part, str))
    assert (sampling["Host"], sampling["HTTPMethod"], sampling["URLPath"]) == ("*", "*", "*")


def test_the_api_gzips_answers_of_a_kilobyte_or_more(synthesized: Synthesized) -> None:
    Template.from_json(synthesized.templates[SERVING]).has_resource_properties(
        "AWS::ApiGateway::RestApi", {"MinimumCompressionSize": 1024}
    )


def test_the_provisioned_stream_still_feeds_the_event_processor_and_the_archive(
    synthesized: Synthesized,
) -> None:
    stream_id, stream = _only(synthesized, STREAMING, "AWS::Kinesis::Stream")
    assert stream["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert stream["ShardCount"] == c.stream_shards(c.DEFAULT_PEAK_STREAM_RECORDS_PER_SECOND) == 1
    streaming = Template.from_json(synthesized.templates[STREAMING])
    arn = {"Fn::GetAtt": [stream_id, "Arn"]}
    # one shard, so 4 concurrent batches for the default peak (500 records/s at ~125 a processor)
    streaming.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"EventSourceArn": arn, "ParallelizationFactor": 4}
    )
    streaming.has_resource_properties(
        "AWS::KinesisFirehose::DeliveryStream",
        {"KinesisStreamSourceConfiguration": Match.object_like({"KinesisStreamARN": arn})},
    )


@pytest.mark.parametrize(
    ("peak_records", "peak_bytes", "shards"),
    [
        (1, None, 1),
        (500, None, 1),
        (1_000, None, 1),  # 1,000 records of 1 KB: both limits exactly
        (1_001, None, 2),
        (2_500, None, 3),
        (100, 1024 * 1024 + 1, 2),  # few but large records: the bytes decide
    ],
)
def test_shards_cover_the_peak_at_1000_records_and_1_mb_a_second_each(
    peak_records: float, peak_bytes: float | None, shards: int
) -> None:
    assert c.stream_shards(peak_records, peak_bytes) == shards


def _stream_properties(tiny_layers: Path, context: dict[str, Any]) -> dict[str, Any]:
    """The events stream's properties as the app builds them with ``context`` (no synthesis: the
    construct's own CloudFormation properties)."""
    from app import build_app

    app = build_app(
        layers_dir=tiny_layers,
        context={**context, c.CONTEXT_CONSOLE: "false", c.CONTEXT_CDK_NAG: "false"},
    )
    stream = app.node.find_child(c.STACK_NAMES.streaming).node.find_child("EventsStream").node.default_child
    return {
        "mode": stream.stream_mode_details.stream_mode,  # type: ignore[union-attr]
        "shards": stream.shard_count,  # type: ignore[union-attr]
    }


def test_the_shop_sizes_the_stream_for_its_peak_or_chooses_on_demand(tiny_layers: Path) -> None:
    # Given a shop that peaks at 2,500 records a second: three shards
    assert _stream_properties(tiny_layers, {c.CONTEXT_PEAK_STREAM_RECORDS: "2500"}) == {
        "mode": "PROVISIONED",
        "shards": 3,
    }
    # Given a shop whose spikes cannot be predicted: on demand, no shard count
    assert _stream_properties(tiny_layers, {c.CONTEXT_STREAM_MODE: c.STREAM_MODE_ON_DEMAND}) == {
        "mode": "ON_DEMAND",
        "shards": None,
    }
    with pytest.raises(ValueError, match="streamMode=ondemand"):
        _stream_properties(tiny_layers, {c.CONTEXT_STREAM_MODE: "ondemand"})
