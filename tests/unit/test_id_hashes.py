"""Item id hashes settle ties the same way in every process: FNV-1a over the UTF-8 bytes, zero-padded."""

from __future__ import annotations

import numpy as np

from merchandiser.catalog import id_hashes

MASK = (1 << 64) - 1


def reference(ids: list[str]) -> list[int]:
    width = max(1, *(len(item.encode()) for item in ids))
    hashes = []
    for item in ids:
        value = 1469598103934665603
        for byte in item.encode().ljust(width, b"\0"):
            value = ((value ^ byte) * 1099511628211) & MASK
        hashes.append(value)
    return hashes


def test_ascii_and_other_ids_hash_as_their_utf8_bytes() -> None:
    ascii_ids = ["sku-1", "A", "", "85123A", "x" * 17]
    assert id_hashes(np.array(ascii_ids)).tolist() == reference(ascii_ids)
    other = ["café", "sku-1", "日本-7", ""]
    assert id_hashes(np.array(other)).tolist() == reference(other)
    assert id_hashes(np.array([], dtype=str)).tolist() == []
