"""The ``zhengyin`` command line.

Every command prints readable output by default and one JSON document with ``--json``, and
exits with a meaningful code (see :mod:`trust.cli.output`). Errors are one clear line on
stderr, never a traceback.
"""

from __future__ import annotations

import typer

from . import audit, ca, keys, licence, publish, seal, serve, serve_verify, setup, sign, verify
from . import batch as batch_cli
from .output import run_guarded

app = typer.Typer(name="zhengyin", no_args_is_help=True, add_completion=False,
                  help="证印 zhengyin: e-licences, e-seals and OFD/PDF trust service (SM2/SM3/SM4).")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(ca.app, name="ca")
app.add_typer(seal.app, name="seal")
app.add_typer(licence.app, name="licence")
setup.register(app)
sign.register(app)
verify.register(app)
licence.register(app)
serve.register(app)
publish.register(app)
serve_verify.register(app)
licence.app.command("batch")(batch_cli.batch)


def main() -> None:
    run_guarded(app)
