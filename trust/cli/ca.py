"""``zhengyin ca``: export, issue, revoke, crl."""

from __future__ import annotations

import typer

app = typer.Typer(help="The SM2 certificate authority of the home.", no_args_is_help=True)
