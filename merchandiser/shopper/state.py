"""A shopper's state for one request: history and session folded into one ALS vector and row sets.

Serving builds it from the stored profile and session (ids), training from its histories (rows); both
fold the vector in with the same closed-form ALS user step, so a shopper gets the same vector either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from merchandiser.catalog import ItemModel, fold_in
from merchandiser.schemas import EVENT_WEIGHTS
from merchandiser.store import HISTORIES_AT, ShopperRecord, history_at_model


@dataclass(frozen=True)
class UserState:
    vector: np.ndarray | None  # folded-in user vector, None when nothing known
    history: dict[int, float]  # item row -> weight (long-term + session)
    recent: list[int]  # item rows, most recent first (session, then the profile's latest)
    purchased: frozenset[int]
    category_seen: dict[str, float] = field(default_factory=dict)  # category -> last touch, epoch s
    segments: tuple[str, ...] = ()  # e.g. ("country=France",), most specific first
    # item row -> summed event weight at the stream's event weights, undecayed (profile + session): the
    # cells a served personal anchor was fitted on (``retrieval.item_anchor``); empty for an older profile
    raw_history: dict[int, float] = field(default_factory=dict)


def segment_keys(attributes: Mapping[str, str]) -> tuple[str, ...]:
    """``{"country": "France"}`` -> ``("country=France",)``, in a stable order."""
    return tuple(f"{name}={value}" for name, value in sorted(attributes.items()) if value not in ("", "nan"))


def user_state(
    items: ItemModel,
    history: Mapping[str, float],
    session: Sequence[tuple[str, float]],
    purchased: Iterable[str],
    recent: Sequence[str] = (),
    category_seen: Mapping[str, float] | None = None,
    attributes: Mapping[str, str] | None = None,
    session_times: Sequence[float] = (),
    raw_history: Mapping[str, float] | None = None,
    session_raw: Sequence[float] = (),
) -> UserState:
    """Ids to rows: ``session`` (most recent first) adds to the history and leads ``recent``;
    ``session_times`` (epoch s, same order) refresh ``category_seen``; ``raw_history`` (the profile's) and
    ``session_raw`` (each session event's weight as the stream stored it, same order) make
    ``raw_history``, unless the profile has a history without raw weights."""
    row_of = items.catalog.row_of
    weights = _rows_summed(row_of, history.items())
    raw = _rows_summed(row_of, (raw_history or {}).items())
    # a profile without raw weights (a model that served no personal anchor) leaves them out altogether
    with_raw = bool(raw_history) or not history
    latest: list[int] = []
    seen = dict(category_seen or {})
    for position, (item_id, weight) in enumerate(session):
        if item_id in row_of:
            row = row_of[item_id]
            weights[row] = weights.get(row, 0.0) + float(weight)
            if with_raw and position < len(session_raw):
                raw[row] = raw.get(row, 0.0) + float(session_raw[position])
            if row not in latest:
                latest.append(row)
            if position < len(session_times):
                category = str(items.catalog.categories[row])
                seen[category] = max(seen.get(category, 0.0), float(session_times[position]))
    for item_id in recent:
        if item_id in row_of and row_of[item_id] not in latest:
            latest.append(row_of[item_id])
    bought = frozenset(row_of[item_id] for item_id in purchased if item_id in row_of)
    return state_from_rows(items, weights, latest, bought, seen, segment_keys(attributes or {}), raw)


def _rows_summed(row_of: Mapping[str, int], weights: Iterable[tuple[str, float]]) -> dict[int, float]:
    rows: dict[int, float] = {}
    for item_id, weight in weights:
        if item_id in row_of:
            rows[row_of[item_id]] = rows.get(row_of[item_id], 0.0) + float(weight)
    return rows


def state_from_rows(
    items: ItemModel,
    history: dict[int, float],
    recent: list[int],
    purchased: frozenset[int],
    category_seen: dict[str, float] | None = None,
    segments: tuple[str, ...] = (),
    raw_history: dict[int, float] | None = None,
) -> UserState:
    """``user_state`` once ids are rows (training builds states this way)."""
    positive = {row: weight for row, weight in history.items() if weight > 0}
    vector = None
    if positive:
        rows = np.fromiter(positive, dtype=np.int64, count=len(positive))
        values = np.fromiter(positive.values(), dtype=np.float64, count=len(positive))
        vector = fold_in(items.item_factors, items.gram, rows, values, items.regularization, items.alpha)
    return UserState(
        vector=vector,
        history=history,
        recent=recent,
        purchased=purchased,
        category_seen=category_seen or {},
        segments=segments,
        raw_history=raw_history or {},
    )


def from_record(
    items: ItemModel, shopper: ShopperRecord, context: Mapping[str, str] | None = None
) -> UserState:
    """A stored shopper (profile + session) as a state; the request's ``context`` (country, device...)
    adds to and overrides the profile's attributes, which pick the popularity segment. The session's
    events are weighted with the model's event weights (the profile's history already is); the profile's
    history, stored decayed to the shopper's latest event, is decayed to the model's ``histories_at``."""
    tuned = items.manifest.get("event_weights") or {}
    histories_at = items.manifest.get(HISTORIES_AT)
    return user_state(
        items,
        history_at_model(
            shopper.history,
            shopper.history_at,
            shopper.half_life_days,
            None if histories_at is None else float(histories_at),
        ),
        [(event.item_id, session_weight(event.event_type, event.weight, tuned)) for event in shopper.session],
        shopper.purchased,
        recent=shopper.recent,
        category_seen=shopper.category_seen,
        attributes={**shopper.attributes, **(context or {})},
        session_times=[event.ts for event in shopper.session],
        raw_history=shopper.raw_history,
        session_raw=[event.weight for event in shopper.session],
    )


def session_weight(event_type: str, stored: float, tuned: Mapping[str, float]) -> float:
    """A session event's weight under the model's event weights: the stream stored it with the default
    weights (``schemas.EVENT_WEIGHTS``, a rating's scaled by its value), so it is rescaled by the tuned
    weight of its type over the default one."""
    default = EVENT_WEIGHTS.get(event_type)
    if not default or event_type not in tuned:
        return stored
    return stored * float(tuned[event_type]) / default
