"""The shopper as one request sees them: history, session, purchases and segments folded into a state."""

from merchandiser.shopper.state import (
    UserState,
    from_record,
    segment_keys,
    session_weight,
    state_from_rows,
    user_state,
)

__all__ = ["UserState", "from_record", "segment_keys", "session_weight", "state_from_rows", "user_state"]
