"""What an experiment is: surfaces it covers and variants that split its shoppers.

```json
{"name": "home-vs-popularity", "surfaces": ["home"],
 "variants": [{"name": "personalized", "share": 0.5},
              {"name": "holdout", "share": 0.5, "policy": "popularity"}]}
```

A variant serves production's page unless it pins something:
- ``model_version``: the model bundle that ranks its pages;
- ``source_shares``: the candidate sources' shares of the candidate list (source name → share);
- ``rules``: page-rule settings (fields of ``merchandiser.settings.RetailerRules``) over the retailer's;
- ``policy``: a simple list (``popularity``, ``trending``) instead of the personalized page: a holdout;
- ``order``: ``"ranker"`` (the learned ranker, production's) or ``"als"`` (the ALS inner product, the
  order serving falls back to without a ranker);
- ``kind: "interleaving"`` with ``rankers``: two rankers interleaved on one page by team draft
  (``merchandiser.experiments.interleaving``); ranker A is the first, B the second.

``parse_experiment`` turns a JSON body into an ``Experiment`` or raises ``ExperimentDefinitionError``
whose message names each problem (the admin route answers 422 with it).
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from merchandiser.experiments.errors import ExperimentDefinitionError
from merchandiser.retrieval import POPULARITY, SOURCE_NAMES, TRENDING
from merchandiser.settings import RetailerRules

# The surfaces a response names (``surface`` in merchandiser.serving): one list for definitions,
# assignment and the report.
SURFACES: tuple[str, ...] = ("home", "category", "similar", "bought-together", "rank", "popular")
Surface = Literal["home", "category", "similar", "bought-together", "rank", "popular"]
# A holdout serves one of these non-personalized lists.
Policy = Literal["popularity", "trending"]
POLICIES: tuple[str, ...] = (POPULARITY, TRENDING)
# How the candidates are ordered: the learned ranker (production) or the ALS inner product.
Order = Literal["ranker", "als"]

# Names travel in URLs (/experiments/{name}), DynamoDB keys, metric dimensions and, as literals, in the
# report's SQL: lower-case letters, digits, '-' and '_' keep them safe everywhere.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
# What a response says when no experiment covers its surface: no variant may take that name.
PRODUCTION = "production"
BASELINE_NAMES: tuple[str, ...] = ("holdout", "control")
SHARE_TOLERANCE = 1e-6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_source_shares(shares: dict[str, float] | None) -> None:
    if shares is None:
        return
    unknown = sorted(set(shares) - set(SOURCE_NAMES))
    if unknown:
        raise ValueError(f"unknown candidate sources {unknown}; known: {list(SOURCE_NAMES)}")
    if any(share < 0 for share in shares.values()):
        raise ValueError("source shares must not be negative")
    total = sum(shares.values())
    if not 0 < total <= 1 + SHARE_TOLERANCE:
        raise ValueError(f"source shares sum to {total:g}; they must sum to more than 0 and at most 1")


class Ranker(_Strict):
    """One side of an interleaving: a model version, source shares and an order, or a simple list."""

    name: Name
    model_version: str | None = Field(default=None, min_length=1, max_length=128)
    source_shares: dict[str, float] | None = None
    policy: Policy | None = None
    order: Order = "ranker"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_source_shares(self.source_shares)
        if self.policy is not None and (self.model_version or self.source_shares or self.order != "ranker"):
            raise ValueError(
                f"ranker {self.name!r}: a policy list takes no model_version, source_shares or order"
            )
        return self


class Variant(_Strict):
    name: Name
    share: float = Field(ge=0.0, le=1.0)
    kind: Literal["list", "interleaving"] = "list"
    model_version: str | None = Field(default=None, min_length=1, max_length=128)
    source_shares: dict[str, float] | None = None
    # Only the fields the variant pins, validated against RetailerRules; serving lays them over the
    # retailer's own rules (``rules_over``).
    rules: dict[str, Any] | None = None
    policy: Policy | None = None
    order: Order = "ranker"
    rankers: tuple[Ranker, ...] | None = None  # exactly two: A, then B

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.name == PRODUCTION:
            raise ValueError(f"{PRODUCTION!r} is what a page says outside experiments: name the variant else")
        _check_source_shares(self.source_shares)
        if self.rules is not None:
            try:
                RetailerRules.model_validate(self.rules)
            except ValidationError as exc:
                raise ValueError(f"variant {self.name!r} rules: {_describe(exc)}") from None
        if self.policy is not None and (self.model_version or self.source_shares or self.order != "ranker"):
            raise ValueError(
                f"variant {self.name!r}: a policy list takes no model_version, source_shares or order"
            )
        if self.kind == "interleaving":
            if self.rankers is None or len(self.rankers) != 2:
                given = 0 if self.rankers is None else len(self.rankers)
                raise ValueError(
                    f"variant {self.name!r}: an interleaving variant needs exactly two rankers, got {given}"
                )
            if self.policy or self.model_version or self.source_shares or self.order != "ranker":
                raise ValueError(
                    f"variant {self.name!r}: an interleaving variant pins policy, model_version, "
                    "source_shares and order on its rankers"
                )
            if self.rankers[0].name == self.rankers[1].name:
                raise ValueError(f"variant {self.name!r}: the two rankers need distinct names")
        elif self.rankers is not None:
            raise ValueError(f"variant {self.name!r}: rankers belong to kind 'interleaving' only")
        return self

    def rules_over(self, retailer: RetailerRules) -> RetailerRules:
        """The retailer's rules with this variant's pinned fields laid over them."""
        if not self.rules:
            return retailer
        return RetailerRules.model_validate({**retailer.model_dump(), **self.rules})


class Experiment(_Strict):
    name: Name
    surfaces: tuple[Surface, ...] = Field(min_length=1)
    variants: tuple[Variant, ...] = Field(min_length=1)
    # A stopped experiment keeps its definition (the report needs the declared shares) but assigns nobody.
    status: Literal["running", "stopped"] = "running"
    description: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        repeated = sorted(name for name, count in Counter(v.name for v in self.variants).items() if count > 1)
        if repeated:
            raise ValueError(f"duplicate variant names {repeated}")
        surfaces = sorted(name for name, count in Counter(self.surfaces).items() if count > 1)
        if surfaces:
            raise ValueError(f"duplicate surfaces {surfaces}")
        total = sum(variant.share for variant in self.variants)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"variant shares sum to {total:.6g}; they must sum to 1")
        return self

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def baseline(self) -> Variant:
        """What the others are compared with: the variant named holdout or control, else the first."""
        for name in BASELINE_NAMES:
            for variant in self.variants:
                if variant.name == name:
                    return variant
        return self.variants[0]

    def variant(self, name: str) -> Variant:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(f"experiment {self.name!r} has no variant {name!r}")

    def shares(self) -> dict[str, float]:
        return {variant.name: variant.share for variant in self.variants}


def _describe(exc: ValidationError) -> str:
    problems = exc.errors()
    parts = []
    for problem in problems:
        loc = tuple(problem.get("loc", ()))
        # A tuple whose only element failed is also "too short": the element's own error says more.
        if problem.get("type") == "too_short" and any(
            len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc for other in problems
        ):
            continue
        where = ".".join(str(part) for part in problem.get("loc", ()))
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts[:5])


def parse_experiment(data: Any, name: str | None = None) -> Experiment:
    """Validates a definition (a dict or JSON text); ``name``, when given (the route's path), must match."""
    try:
        experiment = (
            Experiment.model_validate_json(data)
            if isinstance(data, str | bytes)
            else Experiment.model_validate(data)
        )
    except ValidationError as exc:
        raise ExperimentDefinitionError(_describe(exc)) from None
    if name is not None and experiment.name != name:
        raise ExperimentDefinitionError(f"name {experiment.name!r} differs from the path's {name!r}")
    return experiment
