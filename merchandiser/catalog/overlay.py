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
    """``model`` itself when the overlay changes nothing, else a new model sharing the big arrays."""
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
    if updates:
        in_stock, prices, titles = in_stock.copy(), prices.copy(), titles.astype(object)
        for item in updates:
            row = row_of[item.item_id]
            in_stock[row] = item.in_stock
            if item.price == item.price:
                prices[row] = item.price
            titles[row] = item.title
        titles = titles.astype(str)
    catalog = Catalog(
        item_ids=np.concatenate([old.item_ids, [item.item_id for item in new]]).astype(str),
        titles=np.concatenate([titles, [item.title for item in new]]).astype(str),
        categories=np.concatenate([old.categories, [item.category for item in new]]).astype(str),
        brands=np.concatenate([old.brands, [item.brand for item in new]]).astype(str),
        prices=np.concatenate([prices, [item.price for item in new]]).astype(np.float64),
        # when the overlay took them in: a new arrival is new from then (NaN: unknown, never "new")
        created_at=np.concatenate([old.created_at, np.array([item.added_at for item in new], np.float64)]),
        in_stock=np.concatenate([in_stock, [item.in_stock for item in new]]).astype(bool),
    )
    item_factors = model.item_factors
    if new and content is not None:
        vectors = content.vectors(
            [item.title for item in new],
            [item.category for item in new],
            [item.brand for item in new],
            [item.price for item in new],
        )
        item_factors = np.vstack([model.item_factors, vectors]).astype(np.float32)
    signals = model.signals
    extended = Signals(
        trending=np.concatenate([signals.trending, np.zeros(len(new), np.float32)]),
        also_viewed=_extend(signals.also_viewed, len(new)),
        bought_together=_extend(signals.bought_together, len(new)),
        placed=np.concatenate([signals.placed, np.ones(len(new), bool)]),
        content=signals.content,
        segments={
            key: np.concatenate([value, np.zeros(len(new), np.float32)])
            for key, value in signals.segments.items()
        },
    )
    popularity = np.concatenate([model.popularity, np.zeros(len(new), np.float32)])
    manifest = {**model.manifest, "overlay_items": len(new), "overlay_updates": len(updates)}
    return ItemModel(manifest, catalog, item_factors, popularity, model.index, extended)


def _extend(neighbours: Neighbours, extra: int) -> Neighbours:
    """The same neighbours over ``extra`` more items, which have none."""
    indptr = np.concatenate([neighbours.indptr, np.full(extra, neighbours.indptr[-1])])
    return Neighbours(indptr=indptr, indices=neighbours.indices, similarity=neighbours.similarity)
