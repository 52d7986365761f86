"""From the rows of ``report.sql`` to the report: metrics per variant, comparisons with the baseline,
the sample-ratio test, interleaving credit and the unattributed counts.

Per variant:
- ``users``: shoppers served at least one page of the variant in the period;
- ``impressions``: pages served (one per recommendation_id, replays once);
- ``clicks``, ``add_to_carts``, ``purchases``: attributed events (replays once);
- ``revenue``: sum of price x quantity of attributed purchases (a missing quantity is 1, a missing
  price 0);
- ``ctr`` = clicks / impressions and ``conversion`` = purchases / impressions: both per page, so that
  the variants compare on what each page earned; ``revenue_per_impression`` = revenue / impressions;
- ``coverage``: distinct items shown / ``catalogue_size`` (when unknown: / distinct items shown by the
  whole experiment, so the variants still compare);
- for an interleaving variant, ``interleaving``: pages won by ranker A or B (more credited clicks on
  the team's items), ties (equal, non-zero), ``preference`` = (wins_b - wins_a) / (wins_a + wins_b +
  ties), positive when B (the second ranker) is preferred, and the sign test's p-value. Pages
  without a credited click are no evidence and are left out.

``comparisons``: each other variant against the baseline (the variant named holdout or control, else
the first declared) on ctr, conversion and revenue_per_impression; ``lift`` relative, delta-method CI
and p-value (``statistics``). ``sample_ratio_p_value``: users per variant against the declared shares;
``sample_ratio_mismatch`` when below 0.001: the split is broken and no comparison can be trusted.

``unattributed``: events not credited to a page, per reason: ``no_recommendation_id``,
``unknown_recommendation_id`` (no impression has it: these two are not specific to one experiment),
``outside_window`` and ``other_user`` (on this experiment's pages).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

import numpy as np

from merchandiser.experiments.definition import BASELINE_NAMES, Experiment
from merchandiser.experiments.statistics import (
    ratio_estimate,
    relative_lift,
    sample_ratio_p_value,
    sign_test,
)

COMPARED_METRICS: tuple[tuple[str, str], ...] = (
    ("ctr", "clicks"),
    ("conversion", "purchases"),
    ("revenue_per_impression", "revenue"),
)
UNATTRIBUTED_REASONS = ("no_recommendation_id", "unknown_recommendation_id", "outside_window", "other_user")
EVENT_COUNTS = ("clicks", "add_to_carts", "purchases")
SRM_THRESHOLD = 0.001


class ReportRow(NamedTuple):
    """One row of ``report.sql``: ``section`` says which of the other columns it fills."""

    section: str
    variant: str | None
    unit: str | None
    impressions: int | None
    clicks: int | None
    add_to_carts: int | None
    purchases: int | None
    revenue: float | None
    items_shown: int | None
    wins_a: int | None
    wins_b: int | None
    ties: int | None

    @classmethod
    def from_text(cls, values: list[str | None]) -> ReportRow:
        """From Athena's result strings (every column comes back as text)."""
        section, variant, unit, *numbers = values
        revenue_at = cls._fields.index("revenue") - 3
        typed: list[Any] = [
            None if text is None or text == "" else (float(text) if i == revenue_at else int(text))
            for i, text in enumerate(numbers)
        ]
        return cls(str(section), variant, unit, *typed)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _baseline(names: list[str], definition: Experiment | None) -> str | None:
    if definition is not None:
        return definition.baseline.name
    for name in BASELINE_NAMES:
        if name in names:
            return name
    return names[0] if names else None


def summarize(
    name: str, rows: list[ReportRow], definition: Experiment | None, catalogue_size: int | None
) -> dict[str, Any]:
    if definition is not None and definition.name != name:
        raise ValueError(f"definition {definition.name!r} is not experiment {name!r}")
    per_user: dict[str, list[ReportRow]] = defaultdict(list)
    items_shown: dict[str, int] = {}
    experiment_items = 0
    credit: dict[str, ReportRow] = {}
    unattributed = {reason: dict.fromkeys(EVENT_COUNTS, 0) for reason in UNATTRIBUTED_REASONS}
    for row in rows:
        if row.section == "user" and row.variant is not None:
            per_user[row.variant].append(row)
        elif row.section == "variant_items" and row.variant is not None:
            items_shown[row.variant] = row.items_shown or 0
        elif row.section == "experiment_items":
            experiment_items = row.items_shown or 0
        elif row.section == "interleaving" and row.variant is not None:
            credit[row.variant] = row
        elif row.section == "unattributed" and row.unit in unattributed:
            unattributed[row.unit] = {key: int(getattr(row, key) or 0) for key in EVENT_COUNTS}

    declared = [v.name for v in definition.variants] if definition else []
    interleaved = {v.name for v in definition.variants if v.kind == "interleaving"} if definition else set()
    names = declared + sorted(set(per_user) - set(declared))
    coverage_of = catalogue_size or experiment_items
    variants: dict[str, dict[str, Any]] = {}
    columns: dict[str, dict[str, np.ndarray]] = {}
    for variant in names:
        users = per_user.get(variant, [])
        columns[variant] = {
            key: np.array([getattr(user, key) or 0 for user in users], dtype=np.float64)
            for key in ("impressions", "clicks", "add_to_carts", "purchases", "revenue")
        }
        sums = {key: float(values.sum()) for key, values in columns[variant].items()}
        impressions = int(sums["impressions"])
        variants[variant] = {
            "users": len(users),
            "impressions": impressions,
            "clicks": int(sums["clicks"]),
            "add_to_carts": int(sums["add_to_carts"]),
            "purchases": int(sums["purchases"]),
            "revenue": round(sums["revenue"], 6),
            "ctr": _ratio(sums["clicks"], impressions),
            "conversion": _ratio(sums["purchases"], impressions),
            "revenue_per_impression": _ratio(sums["revenue"], impressions),
            "coverage": _ratio(items_shown.get(variant, 0), coverage_of),
        }
        if variant in interleaved or variant in credit:
            variants[variant]["interleaving"] = _interleaving(credit.get(variant))

    baseline = _baseline(names, definition)
    comparisons = []
    for variant in names:
        if variant == baseline or baseline is None:
            continue
        for metric, numerator in COMPARED_METRICS:
            lift = relative_lift(
                ratio_estimate(columns[variant][numerator], columns[variant]["impressions"]),
                ratio_estimate(columns[baseline][numerator], columns[baseline]["impressions"]),
            )
            comparisons.append(
                {
                    "metric": metric,
                    "variant": variant,
                    "baseline": baseline,
                    "lift": lift.lift,
                    "ci_low": lift.ci_low,
                    "ci_high": lift.ci_high,
                    "p_value": lift.p_value,
                }
            )

    srm = (
        sample_ratio_p_value({v: variants[v]["users"] for v in names}, definition.shares())
        if definition is not None
        else None
    )
    return {
        "experiment": name,
        "variants": variants,
        "comparisons": comparisons,
        "sample_ratio_p_value": srm,
        "sample_ratio_mismatch": srm is not None and srm < SRM_THRESHOLD,
        "unattributed": unattributed,
    }


def _interleaving(row: ReportRow | None) -> dict[str, Any]:
    wins_a = int(row.wins_a or 0) if row else 0
    wins_b = int(row.wins_b or 0) if row else 0
    ties = int(row.ties or 0) if row else 0
    pages = wins_a + wins_b + ties
    return {
        "wins_a": wins_a,
        "wins_b": wins_b,
        "ties": ties,
        "preference": (wins_b - wins_a) / pages if pages else None,
        "p_value": sign_test(wins_a, wins_b),
    }
