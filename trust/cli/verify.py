"""``zhengyin verify FILE``: the validation report of a signed document.

Exit codes are the verdict's, so scripts can branch on them: 0 TOTAL_PASSED, 1 TOTAL_FAILED,
2 INDETERMINATE, 3 NO_SIGNATURE_FOUND, 4 unreadable input (not a document, hostile or
damaged package), 6 an unreadable trust option (a ``--trust-anchor``, ``--cert``, ``--seal-maker``
or ``--crl`` file that cannot be read or parsed: it must not pass for an INDETERMINATE verdict).
Trust comes from ``--trust-anchor`` files and, unless ``--no-home``, from the home's own
CA (its root as anchor, its issuing CA and current CRLs); CRLs can be added with ``--crl``.
Nothing is fetched from addresses inside the document.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from ca.authority import utc_now
from ca.crl import load_crl
from ca.errors import CaError
from ca.validation import load_certificates
from ca.verdict import INDETERMINATE, NO_SIGNATURE_FOUND, TOTAL_FAILED, TOTAL_PASSED
from ledger.config import CONFIG_FILE, load_settings

from ..domain import TrustDomain
from ..report import printable
from ..validation import TrustContext, UnsupportedDocument, validate_document
from .output import EXIT_BAD_INPUT, console, errors, fail
from .params import AT, HOME, JSON, parse_time_option

EXIT_CODES = {TOTAL_PASSED: 0, TOTAL_FAILED: 1, INDETERMINATE: 2, NO_SIGNATURE_FOUND: 3}
EXIT_UNREADABLE = 4
MAX_DOCUMENT = 512 * 1024 * 1024

FILES = Annotated[list[Path] | None, typer.Option(help="may be given several times")]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {what} {path}: {exc.strerror}", EXIT_BAD_INPUT) from None


def _home_trust(home: str | None) -> TrustContext:
    """The home's CA as trust, if the home has been initialised. Read-only: the CRLs are the
    ones the CA has published (a revocation publishes at once), no key is touched."""
    settings = load_settings(home)
    if not (settings.home / CONFIG_FILE).is_file():
        return TrustContext()
    td = TrustDomain.open(home)
    try:
        return td.verification_trust()
    finally:
        td.close()


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        document: Annotated[Path, typer.Argument(help="the signed OFD or PDF file")],
        trust_anchor: FILES = None,
        crl: FILES = None,
        cert: Annotated[
            list[Path] | None,
            typer.Option(
                "--cert",
                help="other certificates: intermediates, or the signer of a signature that carries none",
            ),
        ] = None,
        seal_maker: Annotated[
            list[Path] | None,
            typer.Option("--seal-maker", help="a seal maker (制章人) certificate whose seals to accept"),
        ] = None,
        at: AT = None,
        no_home: Annotated[bool, typer.Option("--no-home", help="do not trust the home's CA")] = False,
        html: Annotated[bool, typer.Option("--html", help="print the report as HTML")] = False,
        home: HOME = None,
        json_: JSON = False,
    ) -> None:
        """Validate every signature of a document; the exit code is the verdict."""
        given = parse_time_option(at, "--at")
        context = TrustContext() if no_home else _home_trust(home)
        try:
            anchors = [c for p in trust_anchor or [] for c in load_certificates(_read(p, "trust anchor"))]
            extra = [c for p in cert or [] for c in load_certificates(_read(p, "certificate"))]
            makers = [c for p in seal_maker or [] for c in load_certificates(_read(p, "seal maker"))]
            crls = [load_crl(_read(p, "CRL")) for p in crl or []]
        except CaError as exc:
            raise fail(printable(str(exc)), EXIT_BAD_INPUT) from None
        context = dataclasses.replace(
            context,
            anchors=(*context.anchors, *anchors),
            intermediates=(*context.intermediates, *extra),
            crls=(*context.crls, *crls),
            seal_makers=(*context.seal_makers, *makers),
        )
        when = given or utc_now()  # after the trust is loaded: CRLs published meanwhile are current
        if not document.is_file():
            errors.print(f"[bold red]error:[/] {document} is not a file", highlight=False)
            raise typer.Exit(EXIT_UNREADABLE)
        if document.stat().st_size > MAX_DOCUMENT:
            errors.print(
                f"[bold red]error:[/] {document} is larger than {MAX_DOCUMENT} bytes", highlight=False
            )
            raise typer.Exit(EXIT_UNREADABLE)
        data = document.read_bytes()
        from ofd.errors import OfdError
        from pdf.errors import PdfError

        try:
            report = validate_document(data, context, when)
        except (OfdError, PdfError, UnsupportedDocument) as exc:
            errors.print(f"[bold red]unreadable:[/] {document}: {printable(str(exc))}", highlight=False,
                         markup=False)
            raise typer.Exit(EXIT_UNREADABLE) from None
        if json_:
            import json

            sys.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n")
        elif html:
            sys.stdout.write(report.as_html() + "\n")
        else:
            console.print(report.as_text(), highlight=False, markup=False)
        raise typer.Exit(EXIT_CODES[report.indication])
