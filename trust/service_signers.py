"""Keys the trust domain signs with on its own behalf — the trust-list signer, the OCSP
responder, the data-service signer: one key label each, certified by the issuing CA.

One rule for all three: a key version any of whose certificates was revoked is never certified
again (the key is rotated first), and a new certificate starts at the caller's ``now`` so what it
signs at once never names its signer "not yet valid" when the CA's clock ticked a second further.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from ca.authority import certificate_of
from ca.registry import CertificateRecord

from .domain import TrustDomain


def usable_certificates(records: Iterable[CertificateRecord], label: str, now: datetime,
                        margin: timedelta) -> list[CertificateRecord]:
    """The certificates of key ``label`` valid from ``now`` for ``margin`` more, whose key
    version was never condemned by a revocation; oldest first."""
    mine = [r for r in records if r.key_label == label]
    condemned = {r.key_version for r in mine if r.revoked}
    return [r for r in mine if not r.revoked and r.key_version not in condemned
            and r.not_before <= now and r.not_after > now + margin]


def certify_service_key(td: TrustDomain, *, label: str, profile: str, common_name: str,
                        organisation_of: CertificateRecord, records: Iterable[CertificateRecord],
                        now: datetime) -> CertificateRecord:
    """A new certificate for key ``label`` (generated if absent, rotated if its current version
    was condemned among ``records``), named ``common_name`` of ``organisation_of``'s organisation."""
    from ca.names import subject_name

    condemned = {r.key_version for r in records if r.key_label == label and r.revoked}
    if not td.keys.exists(label):
        td.keys.generate(label)
    elif td.keys.signer(label).version in condemned:
        td.keys.rotate(label)  # audited as a key event; the revoked version stays revoked
    organisation = certificate_of(organisation_of).subject.native.get("organization_name")
    name = subject_name(common_name, organisation=organisation or None)
    return td.ca.issue(profile, name, key_label=label, not_before=now)
