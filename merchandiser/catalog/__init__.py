"""The items and what a trained model knows of them: the catalogue, ALS vectors (and how they are
learnt), content placement of new items, co-occurrence neighbours, popularity, and the overlay of items
upserted since the model was trained."""

from merchandiser.catalog.als import Factors, confidence, fit_als, fit_als_reference, fold_in, loss
from merchandiser.catalog.content import ContentModel, fit_content, title_words
from merchandiser.catalog.exploration import Exploration, ExplorationPolicy, exploration_of
from merchandiser.catalog.item_model import (
    LOAD_ERRORS,
    ItemModel,
    given_or_loaded,
    id_hashes,
    load_index,
    with_exploration,
)
from merchandiser.catalog.items import CATALOG_COLUMNS, Catalog
from merchandiser.catalog.neighbours import Neighbours, fit_neighbours, sum_by_row
from merchandiser.catalog.overlay import with_overlay
from merchandiser.catalog.popularity import SECONDS_PER_DAY, decayed_popularity, recency_decay, top_popular
from merchandiser.catalog.signals import Signals

__all__ = [
    "CATALOG_COLUMNS",
    "LOAD_ERRORS",
    "SECONDS_PER_DAY",
    "Catalog",
    "ContentModel",
    "Exploration",
    "ExplorationPolicy",
    "Factors",
    "ItemModel",
    "Neighbours",
    "Signals",
    "confidence",
    "decayed_popularity",
    "exploration_of",
    "fit_als",
    "fit_als_reference",
    "fit_content",
    "fit_neighbours",
    "fold_in",
    "given_or_loaded",
    "id_hashes",
    "load_index",
    "loss",
    "recency_decay",
    "sum_by_row",
    "title_words",
    "top_popular",
    "with_exploration",
    "with_overlay",
]
