"""Re-ranking, the third stage: the page's business rules (filters, diversity, promotions, exploration,
discovery), the one page builder serving and evaluation share, and the reasons shown beside items."""

from merchandiser.reranking.explain import REASONS, reason, reasons_from_recent
from merchandiser.reranking.page import (
    daily_seed,
    discovery_pool,
    new_item_rows,
    page_rules,
    ranked_items,
    rules,
    scored,
    slots,
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
    "DISCOVERY",
    "NEW_ARRIVAL",
    "PROMOTED",
    "REASONS",
    "Rules",
    "Scored",
    "adjacent_swap",
    "category_cap",
    "daily_seed",
    "discovery_pool",
    "new_item_rows",
    "page_rules",
    "ranked_items",
    "reason",
    "reasons_from_recent",
    "rerank",
    "rules",
    "scored",
    "slots",
    "swapped",
]
