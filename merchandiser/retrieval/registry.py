"""Every candidate source, one row each: the table serving, training, evaluation, the ranker's features,
the report and the API's reasons all read.

A source is a module with ``propose(items, user, ask) -> Proposal | None`` (None: nothing to propose for
this shopper) plus one row here. The order of the rows is the merge order (a candidate proposed by
several sources is tagged with the first) and the order of the ranker's per-source feature columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from merchandiser.catalog import ItemModel
from merchandiser.retrieval import (
    also_viewed,
    ann,
    bought_together,
    content,
    graduated,
    item_anchor,
    popularity,
    recent_popularity,
    recent_views,
    trending,
)
from merchandiser.retrieval.proposal import Ask, Proposal
from merchandiser.shopper import UserState

Propose = Callable[[ItemModel, UserState, Ask], Proposal | None]


@dataclass(frozen=True)
class Source:
    name: str
    propose: Propose
    # share of the candidate places the source fills first; places a source cannot fill go to the
    # others' next best. Measured per source in the training report (``models.<source>``). These are the
    # defaults: the training job tunes the shares per shop and its model's manifest carries the chosen ones
    # (``retriever.model_shares``).
    share: float
    reason: str  # what the shopper reads beside an item the source put on the page
    personal: bool  # proposes from the shopper's own history or taste (discovery draws only from these)
    # its score and rank are ranker features; a source that proposes only in some models (the served
    # anchor) is not, so every model's ranker reads the same columns (and older rankers keep loading)
    ranked: bool = True


SOURCES: tuple[Source, ...] = (
    Source(ann.NAME, ann.propose, 0.35, "matches your taste", personal=True),
    Source(also_viewed.NAME, also_viewed.propose, 0.2, "viewed by shoppers like you", personal=True),
    Source(
        bought_together.NAME,
        bought_together.propose,
        0.1,
        "often bought together with your items",
        personal=True,
    ),
    Source(recent_views.NAME, recent_views.propose, 0.05, "like what you just viewed", personal=True),
    Source(content.NAME, content.propose, 0.05, "new and like what you love", personal=True),
    # a handful of items at most, between retraining runs; its places go to the others' next best when
    # there are none (always, in training)
    Source(graduated.NAME, graduated.propose, 0.02, "new, and shoppers are taking to it", personal=False),
    Source(trending.NAME, trending.propose, 0.1, "trending now", personal=False),
    Source(recent_popularity.NAME, recent_popularity.propose, 0.05, "popular right now", personal=False),
    Source(popularity.NAME, popularity.propose, 0.08, "popular with shoppers", personal=False),
    # the personal anchor a model serves when its training found it better on validation (the fallback):
    # no share by default (it proposes nothing unless served; the training job then gives it its share)
    Source(
        item_anchor.NAME,
        item_anchor.propose,
        0.0,
        "shoppers who chose your items chose these",
        personal=True,
        ranked=False,
    ),
)

SOURCE_NAMES: tuple[str, ...] = tuple(source.name for source in SOURCES)
RANKED_SOURCES: tuple[str, ...] = tuple(source.name for source in SOURCES if source.ranked)
SOURCE_SHARES: dict[str, float] = {source.name: source.share for source in SOURCES}
SOURCE_REASONS: dict[str, str] = {source.name: source.reason for source in SOURCES}
PERSONAL_SOURCES: tuple[str, ...] = tuple(source.name for source in SOURCES if source.personal)

ANN, ALSO_VIEWED, BOUGHT_TOGETHER = ann.NAME, also_viewed.NAME, bought_together.NAME
CONTENT, TRENDING, POPULARITY = content.NAME, trending.NAME, popularity.NAME
RECENT_VIEWS, RECENT_POPULARITY = recent_views.NAME, recent_popularity.NAME
GRADUATED = graduated.NAME
ITEM_ANCHOR = item_anchor.NAME
