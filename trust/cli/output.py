"""Output and exit codes shared by every command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from hsm.errors import (
    HsmError,
    KeyExists,
    KeyFormatError,
    KeyNotFound,
    KeyStoreMisconfigured,
    KeyStorePermissionDenied,
    KeyStoreUnavailable,
    KeyUnavailable,
    WrongPassphrase,
)
from ledger.audit import AuditError
from ledger.config import ConfigError
from ledger.database import DatabaseError

EXIT_OK = 0
EXIT_FAILED = 1        # the command ran and the answer is negative (e.g. a chain does not verify)
EXIT_USAGE = 2         # wrong arguments (typer/click)
EXIT_CONFIG = 3        # configuration, environment (incl. a key store that is sealed or unreachable)
EXIT_NOT_FOUND = 4     # no such key, certificate, ...
EXIT_REFUSED = 5       # the act is not allowed in the current state (exists, revoked, disabled)
EXIT_BAD_INPUT = 6     # an input file or value could not be read
EXIT_CREDENTIALS = 7   # wrong passphrase or password; the key store refused the credentials or policy

console = Console()
errors = Console(stderr=True)


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print ``data`` as JSON, or call ``render`` for people (default: pretty JSON)."""
    if as_json or render is None:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    else:
        render()


def fail(message: str, code: int) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _exit_code(exc: BaseException) -> int | None:
    from keys_dev import DevelopmentMaterialRefused

    table: list[tuple[type[BaseException] | tuple, int]] = [
        ((WrongPassphrase, KeyStorePermissionDenied), EXIT_CREDENTIALS),
        # Vault sealed, unreachable or set up wrongly: the environment, not the command, must change.
        ((KeyStoreUnavailable, KeyStoreMisconfigured), EXIT_CONFIG),
        (KeyNotFound, EXIT_NOT_FOUND),
        ((KeyExists, KeyUnavailable), EXIT_REFUSED),
        (KeyFormatError, EXIT_BAD_INPUT),
        ((ConfigError, DevelopmentMaterialRefused, DatabaseError), EXIT_CONFIG),
        ((HsmError, AuditError), EXIT_FAILED),
    ]
    try:
        from ca.errors import CaError, CertificateNotFound, InvalidRequest

        table[:0] = [(CertificateNotFound, EXIT_NOT_FOUND), (InvalidRequest, EXIT_BAD_INPUT),
                     (CaError, EXIT_REFUSED)]
    except ImportError:
        pass
    try:
        from seals.errors import SealError
        from seals.lifecycle import SealNotFound, SealRefused

        # SealRefused covers illegal transitions and seals not usable now; every other seal
        # error (a malformed file, an unknown kind, a bad picture) is bad input.
        table[:0] = [(SealNotFound, EXIT_NOT_FOUND), (SealRefused, EXIT_REFUSED), (SealError, EXIT_BAD_INPUT)]
    except ImportError:
        pass
    try:
        from ofd.errors import OfdError
        from pdf.errors import PdfError

        table[:0] = [((OfdError, PdfError), EXIT_BAD_INPUT)]
    except ImportError:
        pass
    try:
        from licences.catalogue import CatalogueError, IssuerNotAllowed, LicenceDataError, UnknownLicenceType
        from licences.identifiers import IdentifierError
        from licences.layout import LayoutError
        from licences.lifecycle import LicenceError, LicenceNotFound, LicenceRequestError, LicenceStateError
        from licences.metadata import MetadataError
        from licences.qr_payload import QrPayloadError
        from licences.storage import DocumentError

        table[:0] = [
            ((UnknownLicenceType, LicenceNotFound), EXIT_NOT_FOUND),
            ((IssuerNotAllowed, LicenceStateError), EXIT_REFUSED),
            ((LicenceDataError, IdentifierError, QrPayloadError, LicenceRequestError, MetadataError,
              LayoutError), EXIT_BAD_INPUT),
            (DocumentError, EXIT_FAILED),
            (CatalogueError, EXIT_CONFIG),
            (LicenceError, EXIT_REFUSED),
        ]
    except ImportError:
        pass
    try:
        from trust.approvals import ApprovalError, ApprovalNotFound, ApprovalRefused
        from trust.compromise import CompromiseError

        table[:0] = [(ApprovalNotFound, EXIT_NOT_FOUND), ((ApprovalRefused, CompromiseError), EXIT_REFUSED),
                     (ApprovalError, EXIT_BAD_INPUT)]
    except ImportError:
        pass
    for types, code in table:
        if isinstance(exc, types):
            return code
    return None


def run_guarded(app: typer.Typer) -> None:
    """Run the app; known errors become one line on stderr and their exit code.

    Typer itself handles usage errors (exit 2) and ``typer.Exit``; anything else that
    escapes a command is translated here, so users never see a traceback.
    """
    try:
        app()
    except Exception as exc:  # the one place that turns errors into exit codes
        code = _exit_code(exc)
        if code is None:
            errors.print(f"[bold red]internal error:[/] {exc.__class__.__name__}: {exc}", highlight=False)
            errors.print("this is a bug; please report it with the command you ran", highlight=False)
            raise SystemExit(70) from None
        errors.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise SystemExit(code) from None
