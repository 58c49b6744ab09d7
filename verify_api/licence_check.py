"""What the QR landing page and the status API say about a licence.

A QR code is *authentic* when its SM2 signature verifies with an unrevoked department-signer
certificate of the issuer it names (valid on the claimed issue day) and the register holds a
licence with that identifier *and* that 128-bit nonce whose data hashes to the QR's data hash.
Everything else — an unreadable text, a forged or re-signed payload, a revoked signer, an
unknown identifier, a wrong nonce — is one and the same answer, None, rendered from
nothing the request carried, so a page or body never differs by what was guessed. The register
is asked whenever the payload could be read, forged or not, so the time taken does not tell a
bad signature from an unknown licence either (the nonce comparison itself is constant-time in
:meth:`licences.lifecycle.LicenceLibrary.find_by_qr`).

Only the licence type, issuer, status, validity and the *masked* holder name and code leave
this module; the licence data never does.
"""

from __future__ import annotations

import hmac
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from licences.lifecycle import effective_status
from licences.metadata import LicenceStatus
from licences.qr_payload import QrVerification, licence_data_hash, verify_payload
from licences.registry import LicenceRecord
from licences.summary import status_name

from .masking import mask_code, mask_name
from .records import PublicRecords
from .texts import CHINA_TIME

#: The checks of :func:`licences.qr_payload.verify_payload` that make a QR code the issuer's
#: word. ``validity`` is left out on purpose: an expired licence is authentic, and expired.
AUTHENTICITY_CHECKS = frozenset({"format", "signer-known", "signature", "signer-is-issuer",
                                 "certificate-validity"})


#: How many replacements :func:`_successor` follows to reach the current version.
MAX_SUCCESSION = 32


@dataclass(frozen=True)
class Successor:
    """The version that replaces a superseded licence today: the end of its chain of changes
    and renewals (its QR code cannot be formed here, the nonce being the holder's)."""

    identifier: str
    status: str  # a status_name


@dataclass(frozen=True)
class LicenceAnswer:
    """An authentic licence as the public may see it."""

    identifier: str
    status: LicenceStatus
    status_name: str
    type_code: str
    type_name: str
    type_name_en: str | None
    issuer_name: str
    issuer_code: str
    valid_from: date
    valid_until: date | None
    holder_name: str  # masked
    holder_code: str  # masked
    successor: Successor | None = None

    @property
    def valid(self) -> bool:
        return self.status is LicenceStatus.VALID


def _successor(records: PublicRecords, record: LicenceRecord, now: datetime) -> Successor | None:
    """The current version of a superseded licence (following changes of changes), or None."""
    if not record.superseded_by:
        return None
    current: LicenceRecord | None = record
    for _ in range(MAX_SUCCESSION):
        if current is None or not current.superseded_by:
            break
        following = records.licence(current.superseded_by)
        if following is None:
            return Successor(current.superseded_by, "unknown")
        current = following
    assert current is not None
    status = effective_status(current.status, current.valid_until, now)
    return Successor(current.identifier, status_name(status, current.superseded_by))


def answer_for(records: PublicRecords, record: LicenceRecord, now: datetime) -> LicenceAnswer:
    """The public view of a licence row (masked holder, effective status at ``now``)."""
    metadata = record.licence_metadata or {}
    status = effective_status(record.status, record.valid_until, now)
    name, english = records.type_names(record.type_code)
    return LicenceAnswer(
        identifier=record.identifier, status=status, status_name=status_name(status, record.superseded_by),
        type_code=record.type_code, type_name=name or metadata.get("type_name") or record.type_code,
        type_name_en=english, issuer_name=metadata.get("issuer_name") or record.issuer_code,
        issuer_code=record.issuer_code, valid_from=record.valid_from, valid_until=record.valid_until,
        holder_name=mask_name(record.holder_name), holder_code=mask_code(record.holder_code),
        successor=_successor(records, record, now))


class KeptAnswers:
    """Answers this worker worked out, by key, each kept with what it was worked out from — a
    ``source`` object (compared by identity) and a ``version`` (compared by equality) — and given
    back only while both are the same.

    For a QR check the source is the signer-certificate list (the very list
    :meth:`PublicRecords.signer_certificates` gave, which it replaces every ``trust_ttl`` seconds,
    so a revoked signer stops verifying as without this) and the version, where the register can
    say it, the register's (:meth:`PublicRecords.register_version`: any commit at all forgets
    every answer). A phone's page is asked for again and again for the same code (reloads,
    several people checking one licence); working it out once saves most of the page's CPU time.
    At most ``size`` answers are kept (least recently used dropped first), so made-up payloads
    cannot grow it.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[object, Hashable, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, source: object, version: Hashable) -> tuple[bool, Any]:
        """(True, the answer) if one is kept for ``key`` from this source and version."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] is not source or entry[1] != version:
                return False, None
            self._entries.move_to_end(key)
            return True, entry[2]

    def put(self, key: Hashable, source: object, version: Hashable, answer: Any) -> None:
        with self._lock:
            self._entries[key] = (source, version, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


#: QR verifications (decoding, SM2 signature, signer checks) by payload text and China day.
_VERIFIED = KeptAnswers()
#: Whole answers by payload text and China day, while the register is unchanged.
_ANSWERS = KeptAnswers()


def _verify(text: str, signers: list, now: datetime) -> QrVerification:
    key = (text, now.astimezone(CHINA_TIME).date())
    found, result = _VERIFIED.get(key, signers, None)
    if not found:
        result = verify_payload(text, signers, at=now)
        if result.claims is not None:  # unreadable text costs little to refuse again
            _VERIFIED.put(key, signers, None, result)
    return result


def check_qr(records: PublicRecords, text: str, now: datetime) -> LicenceAnswer | None:
    """The licence an authentic QR text names, or None for anything else.

    Kept per payload and China day (an answer depends on the day only: a licence expires at
    China midnight, a certificate is judged on the claimed issue day) while the signer list and
    the register are unchanged; where the register has no version (a database server), the
    register is read on every request."""
    signers = records.signer_certificates()
    version = records.register_version()  # before the look-up: see register_version
    key = (text, now.astimezone(CHINA_TIME).date())
    if version is not None:
        found, answer = _ANSWERS.get(key, signers, version)
        if found:
            return answer
    readable, answer = _check_qr(records, text, signers, now)
    if version is not None and readable:  # unreadable text is refused as cheaply without
        _ANSWERS.put(key, signers, version, answer)
    return answer


def _check_qr(records: PublicRecords, text: str, signers: list, now: datetime
              ) -> tuple[bool, LicenceAnswer | None]:
    """(whether the text could be read as a QR payload at all, the answer)."""
    result = _verify(text, signers, now)
    claims = result.claims
    passed = {check.name for check in result.checks if check.ok}
    authentic = AUTHENTICITY_CHECKS <= passed
    if claims is None:
        return False, None  # unreadable: nothing to look up, and nothing an enumerator learns from it
    record = records.find_by_qr(claims.identifier, claims.nonce.hex())
    if not authentic or record is None:
        return True, None
    if not hmac.compare_digest(licence_data_hash(record.data), claims.data_hash):
        return True, None  # the register's data is not what the issuer signed: do not vouch for either
    return True, answer_for(records, record, now)


def find_for_status(records: PublicRecords, identifier: str, nonce_hex: str, now: datetime
                    ) -> LicenceAnswer | None:
    """The status API's lookup: by identifier and the QR's nonce, None for any mismatch alike."""
    record = records.find_by_qr(identifier, nonce_hex)
    return None if record is None else answer_for(records, record, now)
