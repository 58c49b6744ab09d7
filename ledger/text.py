"""Text that a caller puts into a record (a name, a reason): one rule for every registry."""

from __future__ import annotations


def record_text(what: str, value: object, limit: int, error: type[Exception]) -> str:
    """``value`` stripped; ``error`` (the registry's own request error) when it is not a
    non-empty text of at most ``limit`` characters free of control characters."""
    if not isinstance(value, str) or not value.strip():
        raise error(f"the {what} must be a non-empty text")
    value = value.strip()
    if len(value) > limit:
        raise error(f"the {what} is {len(value)} characters; at most {limit} are allowed")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise error(f"the {what} contains control characters; remove them")
    return value
