"""One twin for the end-to-end tests: deployed, trained on a small synthetic shop, serving over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from local_twin.twin import Twin
from training.datasets.synthetic_shop import generate


def serving_twin(work: Path) -> Twin:
    """A twin serving a model trained on a small synthetic shop under ``work``; stop it when done."""
    generate(work / "shop", n_users=300, n_items=150, n_days=40, seed=11)
    twin = Twin(work)
    try:
        twin.start()
        twin.load_data(work / "shop")
        twin.train_and_publish()
        twin.serve()
    except BaseException:
        twin.stop()
        raise
    return twin


# Package scope: the twin (its poller thread swaps os.environ around each handler call) stops before the
# integration and unit tests run in the same process.
@pytest.fixture(scope="package")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    twin = serving_twin(tmp_path_factory.mktemp("twin"))
    try:
        yield twin
    finally:
        twin.stop()


def api(twin: Twin) -> str:
    return str(twin.state()["api_url"])


def twin_item(twin: Twin) -> str:
    return str(pd.read_csv(twin.workdir / "shop" / "items.csv", dtype=str)["item_id"].iloc[0])
