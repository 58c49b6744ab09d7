"""Options shared by every command."""

from __future__ import annotations

from typing import Annotated

import typer

HOME = Annotated[str | None, typer.Option("--home", envvar="ZHENGYIN_HOME",
                                           help="home directory (default ./.zhengyin)")]
JSON = Annotated[bool, typer.Option("--json", help="print one JSON document")]
