"""moto's routing with its module list read once gives the names moto lists itself."""

from __future__ import annotations

from moto import backends

from local_twin import moto_fast_routing


def test_the_cached_module_list_is_moto_s_own() -> None:
    # Given moto's own listing of its service modules
    listed = list(moto_fast_routing.moto_modules())
    # When the cached listing is read twice
    first, second = moto_fast_routing.list_of_moto_modules(), moto_fast_routing.list_of_moto_modules()
    # Then it holds the same names in the same order, and the services the twin routes to
    assert list(first) == listed and second is first
    assert {"dynamodb", "kinesis", "s3", "apigateway"} <= set(first)


def test_register_makes_the_dispatcher_read_the_cached_list() -> None:
    # Given moto's backends module before the twin's routing is installed
    original = backends.list_of_moto_modules
    try:
        # When it is installed
        moto_fast_routing.register()
        # Then the name the dispatcher calls answers the cached list
        assert backends.list_of_moto_modules() is moto_fast_routing.list_of_moto_modules()
    finally:
        backends.list_of_moto_modules = original
