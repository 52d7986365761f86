"""The catalogue the job trains on: the items channel's files with the items table laid over them.

The items table is the catalogue's source of truth (``PUT /items`` writes it); the training trigger scans it
into ``items-table.jsonl.gz`` in the items channel. Its records name only the fields ever given for an
item, so they win field by field: a record holding only ``in_stock`` keeps the title of the other files,
and an item only the table knows (added by PUT, never interacted with) joins the catalogue.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TABLE_MARK = "_table"  # rows read from the items table's snapshot
TABLE_BOOKKEEPING = ("revision", "updated_at", "first_stored_at")
# Staff's merchandising, applied by serving from the overlay: not an attribute the models learn from.
TABLE_SERVING_ONLY = ("promoted",)


def marked_as_table(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(**{TABLE_MARK: True}) if len(frame) else frame


def merge_items_table(frame: pd.DataFrame | None) -> tuple[pd.DataFrame | None, int]:
    """The channel's rows (``item_id`` already text) with the items table's fields laid over them (rows of
    the table's snapshot carry ``_table``); returns the frame and how many items the table holds."""
    if frame is None or TABLE_MARK not in frame.columns:
        return frame, 0
    from_table = frame[TABLE_MARK].fillna(False).astype(bool)
    table = frame[from_table].drop(columns=TABLE_MARK)
    rest = frame[~from_table].drop(columns=TABLE_MARK)
    table = table.drop_duplicates("item_id", keep="last")
    rest = rest.drop_duplicates("item_id", keep="last")
    # a table record names only the fields ever given for it: missing ones are NaN and keep the channel's
    merged = table.set_index("item_id").combine_first(rest.set_index("item_id")).reset_index()
    if "first_stored_at" in merged.columns:
        # an item first stored by PUT /items has no created_at of its own: it was created when stored
        created = (
            merged["created_at"] if "created_at" in merged.columns else pd.Series(np.nan, index=merged.index)
        )
        empty = created.isna() | (created.astype(str).str.strip() == "")
        merged["created_at"] = created.where(~empty, merged["first_stored_at"])
    bookkeeping = [column for column in (*TABLE_BOOKKEEPING, *TABLE_SERVING_ONLY) if column in merged.columns]
    merged = merged.drop(columns=bookkeeping).astype(object)
    # what neither side has is empty, as in a CSV cell (not NaN, which would read as the text "nan")
    return merged.where(merged.notna(), ""), len(table)
