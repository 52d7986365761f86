"""Logged pages with a known truth, in process: what serving would log for the simulated shoppers.

No HTTP and no model: the estimators of ``training.position_bias``, ``training.counterfactual`` and the
click ranker are checked against a truth they cannot see. The shoppers are the synthetic shop's
(``training.datasets.synthetic_shop.latent_truth``, relevance by its click model, ``truth.SyntheticTruth``);
they react to a page as the simulator's shoppers do (``shoppers.react``: a position is examined with the
known curve, an examined item is clicked with its true relevance).

The logging policy: each variant (a model version) scores a shopper's candidates with
``taste_weight * taste_signal + popularity_weight * popularity`` plus noise drawn per page (the session
moving the scores between pages), and shows the best ``page_size``. ``taste_signal`` is the true affinity
seen through a fixed per-(shopper, item) error (what a model knows); ``popularity`` is the item's log
popularity, which the policies weigh more than it deserves. On ``swap_share`` of pages serving swaps one
random adjacent pair among the first ``swap_depth`` positions, as ``merchandiser.reranking.randomize`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from local_twin.simulation.shoppers import Behaviour, react
from local_twin.simulation.truth import SyntheticTruth
from training.datasets.synthetic_shop import latent_truth

FEATURES = ("taste_signal", "popularity", "noise")


@dataclass(frozen=True)
class LoggedPagesConfig:
    shoppers: int = 1400
    pages: int = 4000
    items: int = 400
    candidates: int = 60  # per shopper: what retrieval would hand the ranker
    page_size: int = 10
    swap_share: float = 0.05
    swap_depth: int = 20
    variants: tuple[tuple[float, float], ...] = ((1.0, 1.5), (1.0, 0.5))  # (taste, popularity) weights
    model_error: float = 0.8  # std of the fixed error in taste_signal
    page_noise: float = 0.4  # std of the per-page noise on the policy's score
    curve: str = "inverse_sqrt"
    seed: int = 7


@dataclass(frozen=True)
class LoggedPages:
    """``shown``: one row per shown item (page, query, user_id, variant, item_id, position, ranked_position,
    swapped, clicked, relevance, *FEATURES); ``candidates``: every (shopper, candidate) with relevance and
    features, for scoring a policy on the truth."""

    shown: pd.DataFrame
    candidates: pd.DataFrame
    behaviour: Behaviour


def simulate_logged_pages(config: LoggedPagesConfig = LoggedPagesConfig()) -> LoggedPages:
    rng = np.random.default_rng(config.seed)
    truth = SyntheticTruth(latent_truth(n_users=config.shoppers, n_items=config.items, seed=config.seed))
    behaviour = Behaviour(curve=config.curve)
    popularity = np.log(truth.latent.popularity.astype(np.float64) * config.items)
    popularity = (popularity - popularity.mean()) / popularity.std()
    pools = np.stack(
        [rng.choice(config.items, config.candidates, replace=False) for _ in range(config.shoppers)]
    )
    relevance = np.stack(
        [
            truth.relevance(truth.user_ids[u], [truth.item_ids[i] for i in pools[u]])
            for u in range(config.shoppers)
        ]
    )
    mean, std = truth.latent.affinity_scale
    affinity = np.stack(
        [
            (truth.latent.item_vectors[pools[u]].astype(np.float64) @ truth.latent.tastes[u] - mean) / std
            for u in range(config.shoppers)
        ]
    )
    taste_signal = affinity + rng.normal(0.0, config.model_error, affinity.shape)
    noise_feature = rng.normal(0.0, 1.0, affinity.shape)
    candidates = pd.DataFrame(
        {
            "user_id": np.repeat([truth.user_ids[u] for u in range(config.shoppers)], config.candidates),
            "item_id": [truth.item_ids[i] for i in pools.ravel()],
            "relevance": relevance.ravel(),
            "taste_signal": taste_signal.ravel(),
            "popularity": popularity[pools].ravel(),
            "noise": noise_feature.ravel(),
        }
    )

    page_shopper = np.sort(rng.integers(0, config.shoppers, config.pages))
    rows: list[dict[str, object]] = []
    for page, u in enumerate(page_shopper.tolist()):
        variant = int(rng.integers(len(config.variants)))
        taste_weight, popularity_weight = config.variants[variant]
        score = (
            taste_weight * taste_signal[u]
            + popularity_weight * popularity[pools[u]]
            + rng.normal(0.0, config.page_noise, config.candidates)
        )
        ranked = np.argsort(-score, kind="stable")[: config.page_size]
        order = np.arange(len(ranked))
        swapped_at = -1
        if rng.random() < config.swap_share:
            swapped_at = int(rng.integers(0, min(config.swap_depth, len(ranked)) - 1))
            order[[swapped_at, swapped_at + 1]] = order[[swapped_at + 1, swapped_at]]
        shown = ranked[order]
        reaction = react(relevance[u, shown], behaviour, rng)
        for position, (column, ranked_position) in enumerate(
            zip(shown.tolist(), order.tolist(), strict=True)
        ):
            rows.append(
                {
                    "page": page,
                    "query": f"{truth.user_ids[u]}|home",
                    "user_id": truth.user_ids[u],
                    "variant": variant,
                    "item_id": truth.item_ids[pools[u, column]],
                    "position": position,
                    "ranked_position": ranked_position,
                    "swapped": swapped_at >= 0 and ranked_position != position,
                    "clicked": bool(reaction.clicked[position]),
                    "relevance": float(relevance[u, column]),
                    "taste_signal": float(taste_signal[u, column]),
                    "popularity": float(popularity[pools[u, column]]),
                    "noise": float(noise_feature[u, column]),
                }
            )
    return LoggedPages(pd.DataFrame(rows), candidates, behaviour)
