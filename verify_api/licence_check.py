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
from dataclasses import dataclass
from datetime import date, datetime

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


class VerifiedPayloads:
    """The QR verifications this worker made (decoding, SM2 signature, signer checks), by
    payload text and China day, kept while the signer certificates they were checked against
    are still the ones :meth:`PublicRecords.signer_certificates` gives (that list is re-read
    every ``trust_ttl`` seconds: a revoked signer then stops verifying, as without this cache).

    A phone's page is asked for again and again for the same code (reloads, several people
    checking one licence); verifying it once saves most of the page's CPU time. The register is
    still read on every request, so a licence's status is always current. At most ``size``
    payloads are kept (least recently used dropped first), so made-up payloads cannot grow it.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self._entries: OrderedDict[tuple[str, date], tuple[object, QrVerification]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, text: str, signers: list, now: datetime) -> QrVerification:
        key = (text, now.astimezone(CHINA_TIME).date())
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is signers:
                self._entries.move_to_end(key)
                return entry[1]
        result = verify_payload(text, signers, at=now)
        if result.claims is not None:  # unreadable text costs little to refuse again
            with self._lock:
                self._entries[key] = (signers, result)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return result


_VERIFIED = VerifiedPayloads()


def check_qr(records: PublicRecords, text: str, now: datetime) -> LicenceAnswer | None:
    """The licence an authentic QR text names, or None for anything else."""
    result = _VERIFIED.verify(text, records.signer_certificates(), now)
    claims = result.claims
    passed = {check.name for check in result.checks if check.ok}
    authentic = AUTHENTICITY_CHECKS <= passed
    if claims is None:
        return None  # unreadable: nothing to look up, and nothing an enumerator learns from it
    record = records.find_by_qr(claims.identifier, claims.nonce.hex())
    if not authentic or record is None:
        return None
    if not hmac.compare_digest(licence_data_hash(record.data), claims.data_hash):
        return None  # the register's data is not what the issuer signed: do not vouch for either
    return answer_for(records, record, now)


def find_for_status(records: PublicRecords, identifier: str, nonce_hex: str, now: datetime
                    ) -> LicenceAnswer | None:
    """The status API's lookup: by identifier and the QR's nonce, None for any mismatch alike."""
    record = records.find_by_qr(identifier, nonce_hex)
    return None if record is None else answer_for(records, record, now)
