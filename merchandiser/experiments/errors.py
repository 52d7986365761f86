"""What can go wrong with an experiment, as exceptions the admin routes map to HTTP statuses."""

from __future__ import annotations


class ExperimentDefinitionError(ValueError):
    """A definition that cannot run (maps to 422); the message names the problem."""


class SurfaceConflictError(ExperimentDefinitionError):
    """Another running experiment already covers one of the surfaces (a 422 too, or 409 if the route
    prefers: the definition is valid on its own, it conflicts with what is running)."""


class UnknownExperimentError(LookupError):
    """No experiment of that name (maps to 404)."""
