"""The report for a terminal: ``merchandiser experiment report`` prints it with ``print_report``
(a readable table, or the JSON itself with ``--json``)."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

VARIANT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (key, header, format)
    ("users", "users", "{:,}"),
    ("impressions", "pages", "{:,}"),
    ("clicks", "clicks", "{:,}"),
    ("add_to_carts", "carts", "{:,}"),
    ("purchases", "purchases", "{:,}"),
    ("revenue", "revenue", "{:,.2f}"),
    ("ctr", "CTR", "{:.2%}"),
    ("conversion", "conversion", "{:.2%}"),
    ("revenue_per_impression", "revenue/page", "{:.4f}"),
    ("coverage", "coverage", "{:.1%}"),
)


def _cell(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _signed_percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in [headers, *rows]:
        first, *rest = row
        lines.append(
            "  ".join([first.ljust(widths[0])] + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)])
        )
    return lines


def render_table(report: dict[str, Any]) -> str:
    srm = report.get("sample_ratio_p_value")
    verdict = (
        "MISMATCH: the split is broken, do not trust the comparisons"
        if report.get("sample_ratio_mismatch")
        else "ok"
    )
    period = report.get("period")
    covers = f" (pages of {period['start']} .. {period['end']})" if period else ""
    lines = [
        f"experiment {report['experiment']}{covers}",
        f"sample ratio: p = {_cell(srm, '{:.3g}')} ({verdict})" if srm is not None else "sample ratio: -",
        "",
    ]
    variants = report["variants"]
    lines += _table(
        ["variant", *(header for _, header, _ in VARIANT_COLUMNS)],
        [[name, *(_cell(m[key], fmt) for key, _, fmt in VARIANT_COLUMNS)] for name, m in variants.items()],
    )
    if report["comparisons"]:
        lines.append("")
        lines += _table(
            ["comparison", "lift", "95% CI", "p"],
            [
                [
                    f"{c['variant']} vs {c['baseline']}: {c['metric']}",
                    _signed_percent(c["lift"]),
                    f"[{_signed_percent(c['ci_low'])}, {_signed_percent(c['ci_high'])}]",
                    _cell(c["p_value"], "{:.3g}"),
                ]
                for c in report["comparisons"]
            ],
        )
    interleaved = {name: m["interleaving"] for name, m in variants.items() if "interleaving" in m}
    if interleaved:
        lines.append("")
        lines += _table(
            ["interleaving", "A wins", "B wins", "ties", "preference (B>0)", "p"],
            [
                [
                    name,
                    f"{i['wins_a']:,}",
                    f"{i['wins_b']:,}",
                    f"{i['ties']:,}",
                    _cell(i["preference"], "{:+.3f}"),
                    _cell(i["p_value"], "{:.3g}"),
                ]
                for name, i in interleaved.items()
            ],
        )
    lines.append("")
    lines += _table(
        ["unattributed", "clicks", "carts", "purchases"],
        [
            [reason.replace("_", " "), f"{c['clicks']:,}", f"{c['add_to_carts']:,}", f"{c['purchases']:,}"]
            for reason, c in report["unattributed"].items()
        ],
    )
    return "\n".join(lines)


def print_report(report: dict[str, Any], as_json: bool = False, file: TextIO | None = None) -> None:
    out = file or sys.stdout
    print(json.dumps(report, indent=2) if as_json else render_table(report), file=out)
