"""The item model with the catalogue overlay applied: new items appended, known items updated.

New items become extra rows whose vector the model's own attribute regression predicts (so the vector is
always in the space of the model being served, whichever function wrote the overlay), flagged as
``placed``: the index does not hold them, the ``content`` candidate source searches them exactly (a
small set), so they are retrievable at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from merchandiser.catalog.item_model import ItemModel
from merchandiser.catalog.items import Catalog
from merchandiser.catalog.neighbours import Neighbours
from merchandiser.catalog.signals import Signals
from merchandiser.store import OverlayItem


def with_overlay(model: ItemModel, overlay: Mapping[str, OverlayItem]) -> ItemModel:
    """``model`` itself when the overlay changes nothing, else a new model sharing the big arrays.

    A known item takes the fields its entry gives (a partial entry keeps the model's other fields); a new
    item needs the model's attribute regression to be placed, and takes defaults for what it lacks (its
    id as title, category "unknown", in stock).
    """
    row_of = model.catalog.row_of
    updates = [item for item in overlay.values() if item.item_id in row_of]
    content = model.signals.content
    new = (
        []
        if content is None
        else sorted(
            (item for item in overlay.values() if item.item_id not in row_of), key=lambda item: item.item_id
        )
    )
    if not updates and not new:
        return model
    old = model.catalog
    in_stock, prices, titles = old.in_stock, old.prices, old.titles
    categories, brands = old.categories, old.brands
    if updates:
        in_stock, prices = in_stock.copy(), prices.copy()
        titles, categories, brands = (column.astype(object) for column in (titles, categories, brands))
        for item in updates:
            row, given = row_of[item.item_id], item.fields()
            for name, column in (("in_stock", in_stock), ("price", prices), ("title", titles),
                                 ("category", categories), ("brand", brands)):  # fmt: skip
                if name in given:
                    column[row] = given[name]
        titles, categories, brands = (column.astype(str) for column in (titles, categories, brands))
    added = [_complete(item) for item in new]
    catalog = Catalog(
        item_ids=np.concatenate([old.item_ids, [item.item_id for item in added]]).astype(str),
        titles=np.concatenate([titles, [item.title for item in added]]).astype(str),
        categories=np.concatenate([categories, [item.category for item in added]]).astype(str),
        brands=np.concatenate([brands, [item.brand for item in added]]).astype(str),
        prices=np.concatenate([prices, [item.price for item in added]]).astype(np.float64),
        # when the catalogue first stored them: a new arrival is new from then (unknown: never "new")
        created_at=np.concatenate(
            [
                old.created_at,
                np.array([np.nan if i.added_at is None else i.added_at for i in added], np.float64),
            ]
        ),
        in_stock=np.concatenate([in_stock, [item.in_stock for item in added]]).astype(bool),
    )
    item_factors = model.item_factors
    if added and content is not None:
        first = len(old)  # the new rows, with every field completed
        vectors = content.vectors(
            catalog.titles[first:].tolist(),
            catalog.categories[first:].tolist(),
            catalog.brands[first:].tolist(),
            catalog.prices[first:].tolist(),
        )
        item_factors = np.vstack([model.item_factors, vectors]).astype(np.float32)
    signals = model.signals
    extended = Signals(
        trending=np.concatenate([signals.trending, np.zeros(len(added), np.float32)]),
        also_viewed=_extend(signals.also_viewed, len(added)),
        bought_together=_extend(signals.bought_together, len(added)),
        placed=np.concatenate([signals.placed, np.ones(len(added), bool)]),
        content=signals.content,
        segments={
            key: np.concatenate([value, np.zeros(len(added), np.float32)])
            for key, value in signals.segments.items()
        },
        recent_popularity=np.concatenate([signals.recent_popularity, np.zeros(len(new), np.float32)]),
        last_seen=np.concatenate([signals.last_seen, np.full(len(new), np.nan)]),
        item_anchor=_extend(signals.item_anchor, len(added)),  # a new item gives and gets no weight
    )
    popularity = np.concatenate([model.popularity, np.zeros(len(added), np.float32)])
    manifest = {**model.manifest, "overlay_items": len(added), "overlay_updates": len(updates)}
    return ItemModel(manifest, catalog, item_factors, popularity, model.index, extended, model.content_index)


def _complete(item: OverlayItem) -> OverlayItem:
    """A new item's entry with a value for every field (what training's catalogue reader defaults to)."""
    return OverlayItem(
        item_id=item.item_id,
        title=item.title or item.item_id,
        category=item.category or "unknown",
        brand=item.brand or "",
        price=float("nan") if item.price is None else item.price,
        in_stock=True if item.in_stock is None else item.in_stock,
        revision=item.revision,
        added_at=item.added_at,
    )


def _extend(neighbours: Neighbours, extra: int) -> Neighbours:
    """The same neighbours over ``extra`` more items, which have none."""
    indptr = np.concatenate([neighbours.indptr, np.full(extra, neighbours.indptr[-1])])
    return Neighbours(indptr=indptr, indices=neighbours.indices, similarity=neighbours.similarity)
