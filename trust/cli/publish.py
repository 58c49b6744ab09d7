"""``zhengyin publish``: sign the trust list and write it, with the current CRLs and pre-produced OCSP
responses (RFC 5019: one per certificate the issuing CA signed, SHA-1 and SM3 CertIDs), for the
public service.

Run on the internal side (it uses the CA and the trust-list signing key); the public
verification service only reads what this writes into ``<home>/public``. Run it on a schedule
well inside the list's validity (default 24 hours), and after any revocation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from ..domain import TrustDomain
from .output import EXIT_BAD_INPUT, EXIT_REFUSED, console, emit, fail
from .params import HOME, JSON


def register(app: typer.Typer) -> None:
    @app.command("publish")
    def publish(
        validity_hours: Annotated[
            float, typer.Option("--validity-hours", help="hours until the trust list's next_update (max 168)")
        ] = 24.0,
        home: HOME = None,
        json_: JSON = False,
    ) -> None:
        """Write the CRLs, OCSP responses and a newly signed trust list into <home>/public (audited)."""
        from ..trust_list import TrustListError
        from ..trust_list import publish as publish_files

        if not 0 < validity_hours <= 168:
            raise fail("--validity-hours must be more than 0 and at most 168", EXIT_BAD_INPUT)
        td = TrustDomain.open(home)
        try:
            report = publish_files(td, validity=timedelta(hours=validity_hours))
        except TrustListError as exc:
            raise fail(str(exc), EXIT_REFUSED) from None
        finally:
            td.close()
        emit(report.as_dict(), json_, lambda: console.print(
            f"published trust list version [bold]{report.version}[/] ({report.certificates} certificates, "
            f"next update {report.next_update.isoformat()}), CRLs and {report.ocsp_responses} OCSP responses "
            f"into {report.directory}",
            highlight=False))
