"""moto's request routing without a directory listing per request (installed in moto's process).

moto 5.2's server finds the backend of every request with ``host in backends.list_of_moto_modules()``,
and that function lists moto's package directory and calls ``isdir`` on each of its ~170 entries, every
time: about 0.5 ms of each AWS call the twin makes (several per page). The installed package does not
change while moto runs, so ``register`` replaces it with the same names, listed once.
``tests/unit/test_moto_fast_routing.py`` checks that both give the same names.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from moto import backends

_listed_by_moto = backends.list_of_moto_modules


@cache
def list_of_moto_modules() -> tuple[str, ...]:
    """moto's own ``list_of_moto_modules``, read once."""
    return tuple(_listed_by_moto())


def register() -> None:
    backends.list_of_moto_modules = list_of_moto_modules  # the name the server's dispatcher calls


def moto_modules() -> Iterable[str]:
    """What moto itself lists now (for the test)."""
    return _listed_by_moto()
