"""The tuning's budget: trials shared by the stages, CPU seconds scaled with the data."""

from __future__ import annotations

from dataclasses import dataclass

from training.fit import Hyperparameters

STAGES = ("retrieval", "ranker", "page")
STAGE_TRIAL_SHARES = {"retrieval": 0.25, "ranker": 0.4, "page": 0.35}
STAGE_TIME_SHARES = {"retrieval": 0.45, "ranker": 0.3, "page": 0.25}
SECONDS_BASE, SECONDS_PER_100K, SECONDS_CAP = 10.0, 40.0, 600.0
BUDGET_RULE = (
    f"{SECONDS_BASE:.0f} s + {SECONDS_PER_100K:.0f} s per 100,000 events of the training window, at most"
    f" {SECONDS_CAP:.0f} s of CPU"
)


def auto_seconds(n_events: int) -> float:
    return min(SECONDS_CAP, SECONDS_BASE + SECONDS_PER_100K * n_events / 100_000)


@dataclass(frozen=True)
class Budget:
    trials: int  # the pipeline's, over its three stages
    seconds: float  # CPU seconds of the whole search
    scaled: bool  # seconds from ``auto_seconds``

    def stage_trials(self, stage: str) -> int:
        return max(1, round(self.trials * STAGE_TRIAL_SHARES[stage]))

    def list_trials(self) -> int:
        return max(4, self.trials // 4)


def budget_of(hp: Hyperparameters, n_events: int) -> Budget | None:
    """The search's budget for a training window of ``n_events``; None when tuning is off."""
    if hp.tuning_trials <= 0 or hp.tuning_seconds == 0:
        return None
    scaled = hp.tuning_seconds < 0
    seconds = auto_seconds(n_events) if scaled else hp.tuning_seconds
    return Budget(hp.tuning_trials, seconds, scaled)
