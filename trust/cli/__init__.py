"""The ``zhengyin`` command line.

Every command prints readable output by default and one JSON document with ``--json``, and
exits with a meaningful code (see :mod:`trust.cli.output`). Errors are one clear line on
stderr, never a traceback.
"""

from __future__ import annotations

import typer

from . import approvals as approvals_cli
from . import audit, ca, keys, licence, publish, seal, serve, serve_verify, setup, sign, verify
from . import batch as batch_cli
from . import keys_compromise as compromise_cli
from . import licence_holder as holder_cli
from . import reuse as reuse_cli
from . import serve_reuse as serve_reuse_cli
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
holder_cli.register(licence.app)
app.add_typer(reuse_cli.app, name="reuse")
reuse_cli.register(app)
serve_reuse_cli.register(app)
app.add_typer(approvals_cli.app, name="approvals")
compromise_cli.register(keys.app)


def main() -> None:
    run_guarded(app)
