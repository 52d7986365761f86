"""Turns a request's ``ServingReport`` into CloudWatch metrics (EMF), X-Ray annotations and one log line.

Metrics per request (namespace and ``service`` dimension from the function's Powertools settings):
``StoreLatency``, ``RetrievalLatency``, ``RankingLatency``, ``RerankingLatency`` (ms, the stages the
request ran), ``Candidates<Source>`` (candidates each source put in, e.g. ``CandidatesAnn``),
``ItemsServed``, ``DegradedResponses``, and ``Fallbacks`` with a ``kind`` dimension (one EMF blob per
fallback, since a dimension applies to every metric of a blob).

Per served page (``emit_page``), one more EMF blob with dimensions ``surface`` and ``variant``:
``Impressions`` (1) and ``ItemsShown`` (the page's length), the online denominators of CTR and coverage;
and ``ImpressionsDropped`` when impression records were dropped (a full buffer, refused by the stream).
Clicks need the events and their attribution: the daily experiment report job computes CTR, conversion
and coverage per surface and variant exactly (``merchandiser.experiments.kpis``) and emits them.

Coverage (how much of the catalogue is ever shown) needs the item ids, not a count: the ``served``
log line carries them, and a Logs Insights ``count_distinct(item)`` over it gives the coverage.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit, single_metric

from merchandiser.serving.report import ServingReport


def new_report(tracer: Tracer) -> ServingReport:
    """A report whose stages are X-Ray subsegments (no-ops when tracing is disabled)."""
    return ServingReport(span=None if tracer.disabled else tracer.provider.in_subsegment)


def metric_suffix(name: str) -> str:
    """``co_purchase`` -> ``CoPurchase``: metric names in the CloudWatch style."""
    return "".join(part.title() for part in name.replace("-", "_").split("_"))


def emit(
    metrics: Metrics, logger: Logger, tracer: Tracer, report: ServingReport, response: dict[str, Any]
) -> dict[str, Any]:
    """Records ``report`` and ``response``; returns ``response`` unchanged."""
    for stage, seconds in report.stages.items():
        metrics.add_metric(
            name=f"{metric_suffix(stage)}Latency", unit=MetricUnit.Milliseconds, value=seconds * 1000.0
        )
    for source, count in report.candidates.items():
        metrics.add_metric(name=f"Candidates{metric_suffix(source)}", unit=MetricUnit.Count, value=count)
    items = [item["item_id"] for item in response.get("items", [])]
    metrics.add_metric(name="ItemsServed", unit=MetricUnit.Count, value=len(items))
    degraded = bool(response.get("degraded"))
    if degraded:
        metrics.add_metric(name="DegradedResponses", unit=MetricUnit.Count, value=1)
    for kind in report.fallbacks:
        with single_metric(
            name="Fallbacks",
            unit=MetricUnit.Count,
            value=1,
            namespace=metrics.namespace,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="kind", value=kind)
    tracer.put_annotation(key="degraded", value=degraded)
    tracer.put_annotation(key="model_version", value=str(response.get("model_version", "")))
    logger.info(
        "served",
        extra={
            "recommendation_id": response.get("recommendation_id"),
            "model_version": response.get("model_version"),
            "surface": response.get("surface"),
            "experiment": response.get("experiment"),
            "variant": response.get("variant"),
            "served_items": items,
            "fallbacks": report.fallbacks,
            "stages_ms": {stage: round(seconds * 1000.0, 3) for stage, seconds in report.stages.items()},
            "candidates": report.candidates,
        },
    )
    return response


def emit_page(metrics: Metrics, response: dict[str, Any], impressions_dropped: int) -> None:
    """The page's online KPIs by surface and variant, in their own EMF blob (its dimensions apply to
    every metric in it), and the impressions dropped since the last page."""
    page = EphemeralMetrics(namespace=metrics.namespace, service=metrics.service)
    page.add_dimension(name="surface", value=str(response.get("surface") or "unknown"))
    page.add_dimension(name="variant", value=str(response.get("variant") or "production"))
    page.add_metric(name="Impressions", unit=MetricUnit.Count, value=1)
    page.add_metric(name="ItemsShown", unit=MetricUnit.Count, value=len(response.get("items", [])))
    page.flush_metrics()
    if impressions_dropped:
        metrics.add_metric(name="ImpressionsDropped", unit=MetricUnit.Count, value=impressions_dropped)
