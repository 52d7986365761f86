"""Which variant a shopper sees: a hash of (experiment name, user id), sticky and stateless.

The SHA-256 of ``"{experiment}:{user_id}"`` gives a point in [0, 1) that walks the variants' cumulative
shares, so the same shopper lands in the same variant on every request and every container, with no
table of assignments to keep. The experiment's name is part of the hash, so two experiments split the
same shoppers independently (a shopper's variant in one says nothing of their variant in the other).

Changing the shares of a running experiment moves only the shoppers near the boundaries; renaming it
reshuffles everyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from merchandiser.experiments.definition import PRODUCTION, Experiment, Variant
from merchandiser.experiments.errors import SurfaceConflictError

DEFAULT_EXPERIMENT = "ranker"
DEFAULT_VARIANTS: tuple[tuple[str, float], ...] = ((PRODUCTION, 1.0),)
NO_EXPERIMENT = ""


def unit_point(experiment: str, user_id: str) -> float:
    """The shopper's point in [0, 1) for this experiment: 64 bits of SHA-256, uniform enough."""
    digest = hashlib.sha256(f"{experiment}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign(
    user_id: str,
    experiment: str = DEFAULT_EXPERIMENT,
    variants: Sequence[tuple[str, float]] = DEFAULT_VARIANTS,
) -> str:
    """The variant name of ``user_id`` among ``(name, share)`` pairs (shares need not sum to 1)."""
    total = sum(share for _, share in variants)
    if not variants or total <= 0:
        raise ValueError("an experiment needs at least one variant with a positive share")
    point = unit_point(experiment, user_id) * total
    cumulative = 0.0
    for name, share in variants:
        cumulative += share
        if point < cumulative:
            return name
    return variants[-1][0]  # rounding at the very top of the last share


def assign_variant(experiment: Experiment, user_id: str) -> Variant:
    name = assign(user_id, experiment.name, [(v.name, v.share) for v in experiment.variants])
    return experiment.variant(name)


def covering(experiments: Iterable[Experiment], surface: str) -> Experiment | None:
    """The running experiment on ``surface`` (``check_surfaces_free`` keeps it to at most one)."""
    running = [e for e in experiments if e.running and surface in e.surfaces]
    # Two can only meet if the table was written around check_surfaces_free: the first by name
    # wins, the same on every container, rather than failing the page.
    return min(running, key=lambda e: e.name) if running else None


def assigned_variant(
    experiments: Iterable[Experiment], surface: str, user_id: str | None
) -> tuple[Experiment, Variant] | None:
    """The experiment covering ``surface`` and the shopper's variant in it, or None (production).

    A request without a shopper is never in an experiment: the user is the unit of randomisation.
    """
    if not user_id:
        return None
    experiment = covering(experiments, surface)
    if experiment is None:
        return None
    return experiment, assign_variant(experiment, user_id)


def variant_for(experiments: Iterable[Experiment], surface: str, user_id: str | None) -> tuple[str, str]:
    """``(experiment name, variant name)`` for the response, or ``("", "production")``."""
    assigned = assigned_variant(experiments, surface, user_id)
    if assigned is None:
        return NO_EXPERIMENT, PRODUCTION
    experiment, variant = assigned
    return experiment.name, variant.name


def check_surfaces_free(running: Iterable[Experiment], candidate: Experiment) -> None:
    """Refuses ``candidate`` when another running experiment covers one of its surfaces.

    One experiment per surface keeps every page's variant unambiguous and every report's users
    exposed to one treatment on that surface. Updating an experiment (same name) is no conflict.
    """
    if not candidate.running:
        return
    for other in running:
        if other.name == candidate.name or not other.running:
            continue
        shared = [surface for surface in candidate.surfaces if surface in other.surfaces]
        if shared:
            raise SurfaceConflictError(
                f"experiment {other.name!r} is already running on {', '.join(shared)}: "
                f"stop it or choose other surfaces for {candidate.name!r}"
            )
