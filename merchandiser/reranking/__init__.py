"""Re-ranking, the third stage: the page's business rules (filters, diversity, promotions, exploration,
discovery), the one page builder serving and evaluation share, and the reasons shown beside items."""

from merchandiser.reranking.explain import REASONS, reason, reasons_from_recent
from merchandiser.reranking.exploration import (
    EXPLORE_POLICIES,
    THOMPSON,
    UNIFORM,
    new_item_rows,
    request_rng,
    thompson_draws,
)
from merchandiser.reranking.fallback import (
    ANCHOR_SIGNALS,
    FALLBACK,
    SERVABLE_ANCHORS,
    anchor_blend,
    anchor_scores,
    blend,
    fallback_of,
)
from merchandiser.reranking.page import (
    daily_seed,
    discovery_pool,
    page_rules,
    ranked_items,
    ranked_order,
    rules,
    scored,
    slots,
    tuned_rules,
)
from merchandiser.reranking.randomize import adjacent_swap, swapped
from merchandiser.reranking.rules import (
    DISCOVERY,
    NEW_ARRIVAL,
    PROMOTED,
    Rules,
    Scored,
    category_cap,
    rerank,
)

__all__ = [
    "ANCHOR_SIGNALS",
    "DISCOVERY",
    "EXPLORE_POLICIES",
    "FALLBACK",
    "NEW_ARRIVAL",
    "PROMOTED",
    "REASONS",
    "SERVABLE_ANCHORS",
    "THOMPSON",
    "UNIFORM",
    "Rules",
    "Scored",
    "adjacent_swap",
    "anchor_blend",
    "anchor_scores",
    "blend",
    "category_cap",
    "daily_seed",
    "discovery_pool",
    "fallback_of",
    "new_item_rows",
    "page_rules",
    "ranked_items",
    "ranked_order",
    "reason",
    "reasons_from_recent",
    "request_rng",
    "rerank",
    "rules",
    "scored",
    "slots",
    "swapped",
    "thompson_draws",
    "tuned_rules",
]
