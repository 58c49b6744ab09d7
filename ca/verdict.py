"""The verdict vocabulary every room reports in: checks, and ETSI EN 319 102-1 indications.

A validation is a list of named :class:`Check` results; the verdict on a signature is derived
from them, never set by hand, so a report can always show the checks behind its indication.
The sub-indications are ETSI EN 319 102-1's (§5.1.3), with one zhengyin extension,
``NOT_COVERED``: part of a document that no signature protects (ETSI judges signatures, not
packages; an OFD or PDF verifier also has to say whether what is shown is what was signed).

Which indication a sub-indication implies follows EN 319 102-1: crypto and hash failures and
proven revocation are TOTAL_FAILED; missing chains, missing revocation data and anything that
needs a proof of existence the document does not carry are INDETERMINATE.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

TOTAL_PASSED = "TOTAL_PASSED"
TOTAL_FAILED = "TOTAL_FAILED"
INDETERMINATE = "INDETERMINATE"
NO_SIGNATURE_FOUND = "NO_SIGNATURE_FOUND"

# TOTAL_FAILED sub-indications
FORMAT_FAILURE = "FORMAT_FAILURE"
HASH_FAILURE = "HASH_FAILURE"
SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
REVOKED = "REVOKED"
EXPIRED = "EXPIRED"
NOT_COVERED = "NOT_COVERED"
SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
# INDETERMINATE sub-indications
SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"
NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
REVOKED_NO_POE = "REVOKED_NO_POE"
NOT_YET_VALID = "NOT_YET_VALID"
TRY_LATER = "TRY_LATER"

INDICATION_OF: dict[str, str] = {
    FORMAT_FAILURE: TOTAL_FAILED,
    HASH_FAILURE: TOTAL_FAILED,
    SIG_CRYPTO_FAILURE: TOTAL_FAILED,
    REVOKED: TOTAL_FAILED,
    EXPIRED: TOTAL_FAILED,
    NOT_COVERED: TOTAL_FAILED,
    SIG_CONSTRAINTS_FAILURE: TOTAL_FAILED,
    SIGNED_DATA_NOT_FOUND: INDETERMINATE,
    NO_SIGNING_CERTIFICATE_FOUND: INDETERMINATE,
    NO_CERTIFICATE_CHAIN_FOUND: INDETERMINATE,
    CHAIN_CONSTRAINTS_FAILURE: INDETERMINATE,
    CRYPTO_CONSTRAINTS_FAILURE: INDETERMINATE,
    OUT_OF_BOUNDS_NO_POE: INDETERMINATE,
    REVOKED_NO_POE: INDETERMINATE,
    NOT_YET_VALID: INDETERMINATE,
    TRY_LATER: INDETERMINATE,
}
"""FORMAT_FAILURE is TOTAL_FAILED here, stricter than EN 319 102-1's INDETERMINATE: a
document we cannot parse is never one step from "authentic"."""


@dataclass(frozen=True)
class Check:
    """One check on one object (``subject``: a certificate, a file, a seal) or on the whole.

    ``code`` is the result code this check gives when it is the first to fail; empty for
    checks that passed. Path validation uses its own codes (:mod:`ca.validation`); document
    validation uses the sub-indications above.
    """

    name: str
    ok: bool
    detail: str
    subject: str | None = None
    code: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "subject": self.subject,
        }
        if self.code:
            out["code"] = self.code
        return out


def passed(name: str, detail: str, subject: str | None = None) -> Check:
    return Check(name, True, detail, subject)


def failed(name: str, detail: str, code: str, subject: str | None = None) -> Check:
    if code not in INDICATION_OF:
        raise ValueError(f"unknown sub-indication {code!r}")
    return Check(name, False, detail, subject, code)


def verdict(checks: Iterable[Check]) -> tuple[str, str | None]:
    """(indication, sub-indication) of a signature from its checks.

    The first TOTAL_FAILED check decides; failing that, the first INDETERMINATE one: a hash
    failure is reported as such even when the chain is also missing.
    """
    first_indeterminate = None
    for check in checks:
        if check.ok:
            continue
        indication = INDICATION_OF.get(check.code, TOTAL_FAILED)
        if indication == TOTAL_FAILED:
            return TOTAL_FAILED, check.code or FORMAT_FAILURE
        if first_indeterminate is None:
            first_indeterminate = check.code
    if first_indeterminate is not None:
        return INDETERMINATE, first_indeterminate
    return TOTAL_PASSED, None


class Judged:
    """For results that carry ``checks``: the verdict derived from them, never stored beside them."""

    checks: tuple[Check, ...]

    @property
    def indication(self) -> str:
        return verdict(self.checks)[0]

    @property
    def sub_indication(self) -> str | None:
        return verdict(self.checks)[1]
