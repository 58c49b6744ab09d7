"""Options shared by every command."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

HOME = Annotated[str | None, typer.Option("--home", envvar="ZHENGYIN_HOME",
                                           help="home directory (default ./.zhengyin)")]
JSON = Annotated[bool, typer.Option("--json", help="print one JSON document")]
AT = Annotated[str | None, typer.Option("--at", help="ISO 8601 time with a zone (default: now)")]


def parse_time_option(value: str | None, option: str) -> datetime | None:
    """An aware datetime from an ISO 8601 option value; a usage error (exit 2) otherwise."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint=option) from None
    if parsed.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2026-01-02T03:04:05Z", param_hint=option)
    return parsed
