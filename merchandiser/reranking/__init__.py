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
from merchandiser.reranking.page import (
    daily_seed,
    discovery_pool,
    page_rules,
    ranked_items,
    rules,
    scored,
    slots,
)
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
    "DISCOVERY",
    "EXPLORE_POLICIES",
    "NEW_ARRIVAL",
    "PROMOTED",
    "REASONS",
    "THOMPSON",
    "UNIFORM",
    "Rules",
    "Scored",
    "category_cap",
    "daily_seed",
    "discovery_pool",
    "new_item_rows",
    "page_rules",
    "ranked_items",
    "reason",
    "reasons_from_recent",
    "request_rng",
    "rerank",
    "rules",
    "scored",
    "slots",
    "thompson_draws",
]
