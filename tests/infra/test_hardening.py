"""What checkov asked for and the stacks now do: DLQs, reserved concurrency, encrypted topic, versioning."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synthesized
from tests.infra.test_stacks import functions_by_key

# EventBridge invokes these asynchronously; each runs one at a time (a schedule tick, a promotion).
ASYNC_FUNCTIONS = {"start-training", "publish", "experiment-report"}


def test_asynchronous_functions_have_a_dead_letter_queue_and_run_one_at_a_time(
    synthesized: Synthesized,
) -> None:
    queues = synthesized.all_resources("AWS::SQS::Queue")
    for key, (_, resource) in functions_by_key(synthesized).items():
        props = resource["Properties"]
        if key in ASYNC_FUNCTIONS:
            target = props["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0]
            queue = next(q for where, q in queues.items() if where.endswith(f"/{target}"))
            assert queue["Properties"]["SqsManagedSseEnabled"] is True, key
            assert props["ReservedConcurrentExecutions"] == 1, key
        elif key == "trending-compactor":  # every minute: a failed run's hours wait for the next, no DLQ
            assert "DeadLetterConfig" not in props and props["ReservedConcurrentExecutions"] == 1
        else:
            assert "DeadLetterConfig" not in props and "ReservedConcurrentExecutions" not in props, key


def test_every_dead_letter_queue_has_an_alarm(synthesized: Synthesized) -> None:
    alarms = synthesized.resources("Merchandiser-Monitoring", "AWS::CloudWatch::Alarm").values()
    on_queues = [
        a for a in alarms if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]  # (the CTR alarms are metric math: no MetricName)
    assert len(on_queues) == len(synthesized.all_resources("AWS::SQS::Queue")) == 4


def test_the_alarm_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(synthesized: Synthesized) -> None:
    monitoring = synthesized.templates["Merchandiser-Monitoring"]["Resources"]
    topic = next(r for r in monitoring.values() if r["Type"] == "AWS::SNS::Topic")
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key: dict[str, Any] = monitoring[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_the_access_log_bucket_is_versioned_and_expires_old_versions(synthesized: Synthesized) -> None:
    buckets = synthesized.resources("Merchandiser-Data", "AWS::S3::Bucket")
    logs = next(b for logical_id, b in buckets.items() if logical_id.startswith("AccessLogsBucket"))
    assert logs["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    rules = logs["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any("NoncurrentVersionExpiration" in rule for rule in rules)
