"""``zhengyin licence holder-credential``: handing a licence's holder the credential their app
uses with the public service (live presentation, consent, usage log), and taking it back.

The issuing side runs this (the public service only checks credentials). The token is printed
once — on stdout, the only copy: hand it to the holder through the channel that delivers the
licence itself — and only its hash is kept (:mod:`licences.holders`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from licences.holders import (
    HolderCredentialError,
    HolderCredentialNotFound,
    HolderCredentialRefused,
    HolderCredentials,
)

from ..domain import TrustDomain
from .output import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_REFUSED, console, emit, fail
from .params import HOME, JSON


def holder_credential(
    identifier: Annotated[str, typer.Argument(help="the licence identifier (any version of the licence)")],
    revoke: Annotated[str | None, typer.Option("--revoke", metavar="ID",
                                               help="revoke this credential of the licence instead")] = None,
    list_: Annotated[bool, typer.Option("--list",
                                        help="list the licence's credentials (no secrets)")] = False,
    home: HOME = None,
    json_: JSON = False,
) -> None:
    """Issue a holder credential for a licence (the token is shown once), revoke one, or list them."""
    td = TrustDomain.open(home)
    try:
        credentials = HolderCredentials(td.db, td.audit)
        try:
            if list_:
                listed = credentials.credentials_of(identifier)
                emit(listed, json_, lambda: [console.print(
                    f"{c['credential_id']}  {'revoked ' + c['revoked_at'] if c['revoked_at'] else 'active'}"
                    f"  issued {c['created_at']} by {c['created_by']}", highlight=False) for c in listed])
                return
            if revoke is not None:
                _revoke(credentials, identifier, revoke, td.actor, json_)
                return
            credential_id, token = credentials.issue(identifier, actor=td.actor)
        except HolderCredentialNotFound as exc:
            raise fail(str(exc), EXIT_NOT_FOUND) from None
        except HolderCredentialRefused as exc:
            raise fail(str(exc), EXIT_REFUSED) from None
        except HolderCredentialError as exc:  # e.g. no unused credential id drawn: try again
            raise fail(str(exc), EXIT_FAILED) from None
    finally:
        td.close()
    result = {"credential_id": credential_id, "licence": identifier, "token": token}
    emit(result, json_, lambda: console.print(
        f"holder credential [bold]{credential_id}[/] for licence {identifier}\n"
        f"token (shown once, hand it to the holder): {token}", highlight=False, soft_wrap=True))


def _revoke(credentials: HolderCredentials, identifier: str, credential_id: str, actor: str,
            json_: bool) -> None:
    """Revoke ``credential_id``, which must be one of this licence's (a typo in either refuses)."""
    ours = {c["credential_id"] for c in credentials.credentials_of(identifier)}
    if credential_id.strip() not in ours:
        raise HolderCredentialNotFound(credential_id.strip())
    credentials.revoke(credential_id, actor=actor)
    result = {"credential_id": credential_id.strip(), "licence": identifier, "revoked": True,
              "at": datetime.now(UTC).isoformat()}
    emit(result, json_, lambda: console.print(f"revoked holder credential {result['credential_id']}",
                                              highlight=False))


def register(licence_app: typer.Typer) -> None:
    licence_app.command("holder-credential")(holder_credential)
