"""What the shopper's experiment variant changes on a page: the ``Treatment`` each surface serves with.

Every page asks the running experiments (``ExperimentRepository.running()``, read through its short
cache) which experiment covers its surface and which variant the shopper is in (a hash of experiment
and user id: ``merchandiser.experiments.assigned_variant``). A page without a shopper, or on a surface
no experiment covers, is production: ``experiment`` "" and ``variant`` "production".

A variant changes what it pins, and only where the surface has that stage:

- ``policy`` (a holdout): home and category serve the simple list through the same page rules; similar,
  bought-together and popular serve the simple list (the item itself left out); rank orders the given
  list by it;
- ``source_shares``: the retrieval merge's quotas on home and category;
- ``order`` (``ranker`` or ``als``): home, category and rank;
- ``rules``: laid over the retailer's (``Variant.rules_over``) on home and category;
- ``model_version``: on every surface, served when it is the loaded model, else production with
  ``model_version`` in the degraded reasons;
- ``kind: interleaving``: on every surface, a team draft of the two rankers' pages, the team of each
  item on the impression.

A holdout's list goes through the very page rules of the personalized page (purchases and the session's
items left out, category cap, promotions, new arrivals; its discovery slots find no personal candidates
and go back to the list), so the comparison measures the order, not the rules.

A pinned model version this container has not loaded is not loaded on demand (one model per container):
the page is served by the loaded model, the response says ``degraded`` with ``model_version``, its
``variant`` stays the shopper's (assignment is sticky; the report compares by assignment) and the
impression's ``model_version`` says what was served.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from merchandiser.experiments import (
    NO_EXPERIMENT,
    PRODUCTION,
    ExperimentRepository,
    Ranker,
    Variant,
    assigned_variant,
    team_draft,
)
from merchandiser.reranking import Scored
from merchandiser.serving.report import EXPERIMENTS, ServingReport
from merchandiser.settings import RetailerRules

logger = logging.getLogger(__name__)

RANKER_ORDER = "ranker"
ALS_ORDER = "als"


@dataclass(frozen=True)
class Arm:
    """One way of ordering a page; production's unless it pins something."""

    policy: str | None = None
    source_shares: Mapping[str, float] | None = None
    model_version: str | None = None
    order: str = RANKER_ORDER

    @classmethod
    def of(cls, pins: Variant | Ranker) -> Arm:
        return cls(pins.policy, pins.source_shares, pins.model_version, pins.order)


PRODUCTION_ARM = Arm()


@dataclass(frozen=True)
class Treatment:
    experiment: str = NO_EXPERIMENT
    definition: Variant | None = None  # None: production

    @property
    def variant(self) -> str:
        return PRODUCTION if self.definition is None else self.definition.name

    @property
    def arms(self) -> tuple[Arm, ...]:
        """One arm, or two (A, then B) for an interleaving variant."""
        if self.definition is None:
            return (PRODUCTION_ARM,)
        if self.definition.kind == "interleaving" and self.definition.rankers:
            return tuple(Arm.of(ranker) for ranker in self.definition.rankers)
        return (Arm.of(self.definition),)

    def rules_over(self, retailer: RetailerRules) -> RetailerRules:
        return retailer if self.definition is None else self.definition.rules_over(retailer)


PRODUCTION_TREATMENT = Treatment()


def treatment_for(
    repository: ExperimentRepository | None, surface: str, user_id: str | None, report: ServingReport
) -> Treatment:
    """The shopper's treatment on ``surface``; production when nothing covers it or when the experiments
    cannot be read (the report then says ``experiments``: degrade, never fail)."""
    if repository is None or not user_id:
        return PRODUCTION_TREATMENT
    failures = repository.read_failures
    try:
        running = repository.running()
        assigned = assigned_variant(running, surface, user_id)
    except Exception as error:  # e.g. a definition written around the API that no longer parses
        logger.exception("experiments unusable, serving production")
        report.fallback(EXPERIMENTS, f"{type(error).__name__}: {error}")
        return PRODUCTION_TREATMENT
    if repository.read_failures > failures:
        report.fallback(EXPERIMENTS, "experiments table unreadable: the last known experiments serve")
    if assigned is None:
        return PRODUCTION_TREATMENT
    experiment, variant = assigned
    return Treatment(experiment.name, variant)


def interleave(pages: Sequence[Sequence[Scored]], k: int, seed: str) -> tuple[list[Scored], list[str]]:
    """Team draft of two rankers' pages (A, then B) into one page of at most ``k`` items, seeded by the
    request; returns the page and, per item, the team credited for a click on it."""
    first, second = pages
    by_team: dict[str, dict[str, Scored]] = {
        "A": {item.item_id: item for item in first},
        "B": {item.item_id: item for item in second},
    }
    drafted = team_draft([i.item_id for i in first], [i.item_id for i in second], k, seed)
    page = [by_team[team][item_id] for item_id, team in zip(drafted.items, drafted.teams, strict=True)]
    return page, list(drafted.teams)
