"""Content placement: attributes -> ALS space, checked on a catalog whose vectors follow its attributes."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import Catalog, fit_content, title_words


def catalog(n: int) -> Catalog:
    categories = np.array(["mugs" if row % 2 == 0 else "lamps" for row in range(n)])
    return Catalog(
        item_ids=np.array([f"i{row}" for row in range(n)]),
        titles=np.array(
            [f"{'RED' if row % 3 == 0 else 'BLUE'} {categories[row]} no {row}" for row in range(n)]
        ),
        categories=categories,
        brands=np.array([""] * n),
        prices=np.array([1.0 + row % 5 for row in range(n)]),
        created_at=np.zeros(n),
        in_stock=np.ones(n, dtype=bool),
    )


def test_title_words_drop_numbers_and_single_letters() -> None:
    assert title_words("RED Mug, 12 pcs x") == {"red", "mug", "pcs"}


def test_new_items_land_near_the_items_that_share_their_attributes() -> None:
    # Given item vectors that are exactly "category direction + colour direction"
    shop = catalog(60)
    vectors = np.zeros((60, 4), np.float32)
    for row in range(60):
        vectors[row, 0 if shop.categories[row] == "mugs" else 1] = 1.0
        vectors[row, 2 if shop.titles[row].startswith("RED") else 3] = 0.5
    trained = np.arange(60) < 50  # the last 10 items have no interactions
    # When the regression is fitted on the trained items and asked for the others
    model = fit_content(shop, vectors, trained, regularization=0.01)
    placed = model.vectors(
        shop.titles[50:].tolist(),
        shop.categories[50:].tolist(),
        shop.brands[50:].tolist(),
        shop.prices[50:].tolist(),
    )
    # Then each new item is closest to the true vector of its kind
    np.testing.assert_allclose(placed, vectors[50:], atol=0.1)
    # And one record (an upserted item) gives the same vector as the batch
    record = {"title": str(shop.titles[50]), "category": "mugs", "brand": "", "price": float(shop.prices[50])}
    np.testing.assert_allclose(model.vector_of(record), placed[0], rtol=1e-5)


def test_unknown_attributes_give_the_mean_vector() -> None:
    shop = catalog(20)
    vectors = np.random.default_rng(1).normal(size=(20, 3)).astype(np.float32)
    model = fit_content(shop, vectors, np.ones(20, dtype=bool), regularization=1.0)
    nothing = model.vector_of({"title": "", "category": "unheard of", "price": None})
    np.testing.assert_allclose(nothing, vectors.mean(axis=0), rtol=1e-5)
