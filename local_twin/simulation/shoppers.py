"""How a simulated shopper reacts to a page: a position-based click model with a known funnel.

Position ``p`` (0 = first) is examined with probability ``e(p)``, independently of the other positions;
an examined item attracts with probability ``r(user, item)``, its true relevance; a click happens iff
the item is examined and attracts (so P(click at p) = e(p) r). After a click the item goes to the cart
with ``cart_probability``, and a carted item is bought at checkout with ``purchase_probability``, in a
quantity drawn from a geometric distribution (1 most often). Every draw comes from the shopper's own
seeded ``numpy.random.Generator``, a fixed number of draws per page, so a page of the same length
always consumes the same stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

ExaminationCurve = Callable[[np.ndarray], np.ndarray]

EXAMINATION_CURVES: dict[str, ExaminationCurve] = {
    "inverse_sqrt": lambda position: 1.0 / np.sqrt(1.0 + position),
    "inverse": lambda position: 1.0 / (1.0 + position),
    "exponential": lambda position: 0.85**position,
    "flat": lambda position: np.ones_like(position, dtype=np.float64),
}
DEFAULT_CURVE = "inverse_sqrt"


def examination_curve(curve: str | ExaminationCurve) -> ExaminationCurve:
    """A named curve (``EXAMINATION_CURVES``) or a callable of positions, checked to give probabilities."""
    if isinstance(curve, str):
        if curve not in EXAMINATION_CURVES:
            raise ValueError(f"unknown examination curve {curve!r}; known: {', '.join(EXAMINATION_CURVES)}")
        return EXAMINATION_CURVES[curve]
    probe = np.asarray(curve(np.arange(100, dtype=np.float64)), dtype=np.float64)
    if probe.shape != (100,) or not np.all((probe >= 0) & (probe <= 1)):
        raise ValueError("an examination curve maps an array of positions to probabilities in [0, 1]")
    return curve


@dataclass(frozen=True)
class Behaviour:
    """The known behaviour of every simulated shopper."""

    curve: str | ExaminationCurve = DEFAULT_CURVE
    cart_probability: float = 0.3  # P(add_to_cart | click)
    purchase_probability: float = 0.5  # P(purchase | add_to_cart), at checkout
    quantity_success: float = 0.75  # quantity ~ Geometric(this): 1 with this probability
    home_pages: tuple[int, int] = (1, 4)  # home pages a session opens, uniform between the two
    similar_probability: float = 0.3  # after a page with clicks, P(open similar items of one clicked)
    dwell_seconds: float = 30.0  # mean time on a page before the next one (simulated clock)
    _examine: ExaminationCurve = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("cart_probability", "purchase_probability", "similar_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if not 0.0 < self.quantity_success <= 1.0:
            raise ValueError("quantity_success must be in (0, 1]")
        low, high = self.home_pages
        if not 1 <= low <= high <= 50:
            raise ValueError("home_pages must be (low, high) with 1 <= low <= high <= 50")
        if self.dwell_seconds <= 0:
            raise ValueError("dwell_seconds must be positive")
        object.__setattr__(self, "_examine", examination_curve(self.curve))  # checked once, kept

    @property
    def curve_name(self) -> str:
        return self.curve if isinstance(self.curve, str) else getattr(self.curve, "__name__", "custom")

    def examination(self, positions: np.ndarray) -> np.ndarray:
        return np.asarray(self._examine(positions.astype(np.float64)), dtype=np.float64)


@dataclass(frozen=True)
class Reaction:
    """One page's outcome per position; ``purchased`` is decided now and happens at checkout."""

    examined: np.ndarray
    clicked: np.ndarray
    carted: np.ndarray
    purchased: np.ndarray
    quantity: np.ndarray


def react(relevance: np.ndarray, behaviour: Behaviour, rng: np.random.Generator) -> Reaction:
    """The shopper's reaction to a page whose items have these true relevances, in page order."""
    n = len(relevance)
    examined = rng.random(n) < behaviour.examination(np.arange(n))
    attracted = rng.random(n) < relevance
    clicked = examined & attracted
    carted = clicked & (rng.random(n) < behaviour.cart_probability)
    purchased = carted & (rng.random(n) < behaviour.purchase_probability)
    quantity = rng.geometric(behaviour.quantity_success, size=n)
    return Reaction(examined, clicked, carted, purchased, np.where(purchased, quantity, 0))
