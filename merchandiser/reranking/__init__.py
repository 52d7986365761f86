"""Re-ranking, the third stage: the page's business rules (filters, diversity, promotions, exploration,
discovery), the scores the page orders by (a simple-list fallback, the long-tail correction), the one page
builder serving and evaluation share, and the reasons shown beside items."""

from merchandiser.reranking.explain import REASONS, reason, reasons_from_recent
from merchandiser.reranking.exploration import (
    EXPLORE_POLICIES,
    THOMPSON,
    UNIFORM,
    new_item_rows,
    request_rng,
    thompson_draws,
)
from merchandiser.reranking.fallback import ANCHOR_SIGNALS, FALLBACK, anchor_blend, blend, fallback_of
from merchandiser.reranking.page import (
    daily_seed,
    discovery_pool,
    page_rules,
    page_scores,
    ranked_items,
    ranked_order,
    rules,
    scored,
    slots,
    tuned_rules,
)
from merchandiser.reranking.popularity import (
    LONG_TAIL,
    MAX_STRENGTH,
    check_strength,
    long_tail_correct,
    long_tail_scores,
    strength_of,
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
    "LONG_TAIL",
    "MAX_STRENGTH",
    "NEW_ARRIVAL",
    "PROMOTED",
    "REASONS",
    "THOMPSON",
    "UNIFORM",
    "Rules",
    "Scored",
    "adjacent_swap",
    "anchor_blend",
    "blend",
    "category_cap",
    "check_strength",
    "daily_seed",
    "discovery_pool",
    "fallback_of",
    "long_tail_correct",
    "long_tail_scores",
    "new_item_rows",
    "page_rules",
    "page_scores",
    "ranked_items",
    "ranked_order",
    "reason",
    "reasons_from_recent",
    "request_rng",
    "rerank",
    "rules",
    "scored",
    "slots",
    "strength_of",
    "swapped",
    "thompson_draws",
    "tuned_rules",
]
