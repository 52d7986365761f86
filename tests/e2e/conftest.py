"""One twin for every end-to-end test: deployed, trained on a small synthetic shop, serving over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_twin.twin import Twin
from training.datasets.synthetic_shop import generate


@pytest.fixture(scope="session")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    work = tmp_path_factory.mktemp("twin")
    generate(work / "shop", n_users=300, n_items=150, n_days=40, seed=11)
    twin = Twin(work)
    try:
        twin.start()
        twin.load_data(work / "shop")
        twin.train_and_publish()
        twin.serve()
        yield twin
    finally:
        twin.stop()
