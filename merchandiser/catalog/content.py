"""Content placement: item attributes (category, brand, price band, title words) mapped into the ALS space.

A ridge regression from an item's attribute vector to its ALS item vector is fitted on the items that have
interactions; an item with none (new at training time, or upserted since) gets the predicted vector, so the
user vectors retrieve it like any other item.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from merchandiser.catalog.items import Catalog

WORD = re.compile(r"[a-z0-9]+")
PRICE_BANDS = 8
MIN_WORD_ITEMS = 3  # a title word must appear in this many items to become a feature
MAX_WORDS = 3000
MAX_BRANDS = 500


def title_words(title: str) -> set[str]:
    return {word for word in WORD.findall(title.lower()) if len(word) > 1 and not word.isdigit()}


@dataclass(frozen=True)
class ContentModel:
    categories: np.ndarray  # str, one feature each
    brands: np.ndarray  # str
    words: np.ndarray  # str
    price_edges: np.ndarray  # float64 (PRICE_BANDS - 1,): log-price band boundaries
    weights: np.ndarray  # float32 (n_features, dim)
    intercept: np.ndarray  # float32 (dim,)

    @property
    def n_features(self) -> int:
        return len(self.categories) + len(self.brands) + len(self.words) + PRICE_BANDS

    def attribute_matrix(
        self,
        titles: Sequence[str],
        categories: Sequence[str],
        brands: Sequence[str],
        prices: Sequence[float],
    ) -> csr_matrix:
        """Sparse (n, n_features): one-hot category, brand and price band; title words scaled to norm 1."""
        category_of = {name: position for position, name in enumerate(self.categories.tolist())}
        brand_of = {name: len(category_of) + position for position, name in enumerate(self.brands.tolist())}
        word_base = len(category_of) + len(brand_of)
        word_of = {name: word_base + position for position, name in enumerate(self.words.tolist())}
        price_base = word_base + len(word_of)
        entries: list[tuple[int, int, float]] = []
        for row, (title, category, brand, price) in enumerate(
            zip(titles, categories, brands, prices, strict=True)
        ):
            if category in category_of:
                entries.append((row, category_of[category], 1.0))
            if brand in brand_of:
                entries.append((row, brand_of[brand], 1.0))
            known = [word_of[word] for word in title_words(title) if word in word_of]
            entries.extend((row, column, 1.0 / np.sqrt(len(known))) for column in known)
            if price == price and price > 0:  # NaN-safe: an unknown price gets no band
                entries.append((row, price_base + int(np.searchsorted(self.price_edges, np.log(price))), 1.0))
        rows, columns, values = zip(*entries, strict=True) if entries else ((), (), ())
        return csr_matrix((values, (rows, columns)), shape=(len(titles), self.n_features), dtype=np.float64)

    def vectors(
        self,
        titles: Sequence[str],
        categories: Sequence[str],
        brands: Sequence[str],
        prices: Sequence[float],
    ) -> np.ndarray:
        """float32 (n, dim): the predicted item vectors."""
        attributes = self.attribute_matrix(titles, categories, brands, prices)
        return (np.asarray(attributes @ self.weights.astype(np.float64)) + self.intercept).astype(np.float32)

    def vector_of(self, item: Mapping[str, object]) -> np.ndarray:
        """One catalogue record (``title, category, brand, price``) to its vector."""
        price = item.get("price")
        return self.vectors(
            [str(item.get("title") or "")],
            [str(item.get("category") or "")],
            [str(item.get("brand") or "")],
            [float(price) if isinstance(price, int | float | str) and str(price) else float("nan")],
        )[0]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "categories": self.categories,
            "brands": self.brands,
            "words": self.words,
            "price_edges": self.price_edges,
            "weights": self.weights,
            "intercept": self.intercept,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ContentModel:
        return cls(**{name: np.asarray(arrays[name]) for name in cls.__dataclass_fields__})


def fit_content(
    catalog: Catalog, item_factors: np.ndarray, trained: np.ndarray, regularization: float
) -> ContentModel:
    """Ridge regression attributes -> item vectors over the ``trained`` rows (boolean mask)."""
    rows = np.flatnonzero(trained)
    word_counts: Counter[str] = Counter()
    for title in catalog.titles.tolist():
        word_counts.update(title_words(title))
    words = sorted(word for word, count in word_counts.items() if count >= MIN_WORD_ITEMS)
    words = sorted(words, key=lambda word: (-word_counts[word], word))[:MAX_WORDS]
    brand_counts = Counter(brand for brand in catalog.brands.tolist() if brand)
    brands = sorted(brand_counts, key=lambda brand: (-brand_counts[brand], brand))[:MAX_BRANDS]
    prices = catalog.prices[rows]
    log_prices = np.log(prices[(prices > 0) & ~np.isnan(prices)])
    edges = (
        np.quantile(log_prices, np.linspace(0, 1, PRICE_BANDS + 1)[1:-1])
        if len(log_prices)
        else np.zeros(PRICE_BANDS - 1)
    )
    dim = item_factors.shape[1]
    shell = ContentModel(
        categories=np.array(sorted(set(catalog.categories.tolist())), dtype=str),
        brands=np.array(sorted(brands), dtype=str),
        words=np.array(sorted(words), dtype=str),
        price_edges=edges.astype(np.float64),
        weights=np.zeros((0, dim), np.float32),
        intercept=np.zeros(dim, np.float32),
    )
    if len(rows) == 0:
        return ContentModel(**{**shell.to_arrays(), "weights": np.zeros((shell.n_features, dim), np.float32)})
    attributes = shell.attribute_matrix(
        catalog.titles[rows].tolist(),
        catalog.categories[rows].tolist(),
        catalog.brands[rows].tolist(),
        catalog.prices[rows].tolist(),
    )
    targets = item_factors[rows].astype(np.float64)
    intercept = targets.mean(axis=0)
    gram = (attributes.T @ attributes).toarray() + regularization * np.eye(attributes.shape[1])
    weights = np.linalg.solve(gram, np.asarray(attributes.T @ (targets - intercept)))
    return ContentModel(
        **{
            **shell.to_arrays(),
            "weights": weights.astype(np.float32),
            "intercept": intercept.astype(np.float32),
        }
    )
