"""Amazon Personalize's monthly bill for the same load: its real-time campaign (TPS-hours with the minimum
provisioned TPS), full trainings (training hours) and event ingestion (GB), at list prices."""

from __future__ import annotations

from local_twin.cost_model import DAYS_PER_MONTH, GB, Bill, Load
from local_twin.cost_prices import HOURS_PER_MONTH, SECONDS_PER_MONTH, TIERED, price, tiered_cost

# Personalize training hours = a + b * interactions (User-Personalization, MovieLens; see cost_prices.RULES)
PERSONALIZE_HOURS_SMALL = (0.1e6, 2.135)
PERSONALIZE_HOURS_LARGE = (50e6, 53.9)
PERSONALIZE_MAX_INTERACTIONS = 3e9  # User-Personalization-v2's limit (500M for the v1 recipes)


def personalize_hours(interactions: float) -> float:
    """Training hours of one full training, interpolated through the published MovieLens points."""
    (n0, h0), (n1, h1) = PERSONALIZE_HOURS_SMALL, PERSONALIZE_HOURS_LARGE
    slope = (h1 - h0) / (n1 - n0)
    return h0 + slope * (min(interactions, PERSONALIZE_MAX_INTERACTIONS) - n0)


def personalize_bill(load: Load) -> Bill:
    bill = Bill()
    per_campaign = load.rps / load.personalize_campaigns
    tps = load.personalize_campaigns * max(load.personalize_min_tps, per_campaign)
    tps_hours = tps * HOURS_PER_MONTH
    minimum = " (its minimum)" if per_campaign < load.personalize_min_tps else ""
    bill.add(
        "Personalize",
        f"campaign: {tps:g} TPS{minimum} x {HOURS_PER_MONTH:g} h",
        tps_hours,
        "TPS-hours",
        tiered_cost(tps_hours, TIERED["personalize_tps_hour"].tiers),
    )
    interactions = load.interactions_in_window
    runs = DAYS_PER_MONTH / load.personalize_retrain_days
    hours = runs * personalize_hours(interactions)
    bill.add(
        "Personalize",
        f"training: {runs:.1f} runs over {interactions / 1e6:,.1f}M interactions",
        hours,
        "training hours",
        hours * price("personalize_training_hour"),
    )
    ingested = load.events_per_second * SECONDS_PER_MONTH * load.event_bytes / GB
    bill.add(
        "Personalize",
        "ingestion: events through PutEvents",
        ingested,
        "GB",
        ingested * price("personalize_ingest_gb"),
    )
    if interactions > PERSONALIZE_MAX_INTERACTIONS:
        bill.notes.append("Personalize considers at most 3 billion interactions in a training")
    return bill
