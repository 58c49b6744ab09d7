"""Which keys must rotate: each seal's and each CA's key in use against its maximum age.

The policy (:class:`ledger.config.RotationPolicy`, ``[rotation]`` in ``zhengyin.toml``) gives
a maximum age per seal and per CA. A key's age is counted from the creation of the key
version in use, as the key store records it — the seal's current signer key version(s), the
current root and issuing CA certificate's key version — so renewing a certificate for the
same key does not reset it, and a rotation does. Should the key store not know the version
(a key kept elsewhere), the certificate's start stands in for it.

Only what can still sign is looked at: made seals that are not revoked or expired, and the
CAs' current certificates. Suspended seals count: a suspension is lifted with the key it had.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ca.authority import utc_now
from ca.registry import CertificateRecord
from hsm.errors import KeyNotFound
from ledger.config import RotationPolicy

from .lifecycle import LIVE
from .office import SealOffice


@dataclass(frozen=True)
class KeyAge:
    """One seal's or CA's key in use, its age and what the policy allows."""

    kind: str              # "seal" or "ca"
    subject: str           # the esID, or "root" / "issuing"
    name: str              # the seal's name, or the CA certificate's subject
    keys: tuple[str, ...]  # "label/vN" of the key version(s) in use
    created: datetime      # of the oldest of them
    max_age_days: int
    now: datetime

    @property
    def due_at(self) -> datetime:
        return self.created + timedelta(days=self.max_age_days)

    @property
    def age_days(self) -> float:
        return (self.now - self.created).total_seconds() / 86400

    @property
    def overdue(self) -> bool:
        return self.due_at <= self.now

    def due_within(self, days: int) -> bool:
        return self.due_at <= self.now + timedelta(days=days)

    @property
    def command(self) -> str:
        """What a security officer runs to rotate it."""
        if self.kind == "seal":
            return f"zhengyin keys rotate --seal {self.subject}"
        return f"zhengyin ca rotate {self.subject}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "subject": self.subject, "name": self.name, "keys": list(self.keys),
            "created": self.created.isoformat(), "age_days": round(self.age_days, 1),
            "max_age_days": self.max_age_days, "due_at": self.due_at.isoformat(),
            "days_left": round((self.due_at - self.now).total_seconds() / 86400, 1),
            "overdue": self.overdue, "command": self.command,
        }


def _created(office: SealOffice, certificate: CertificateRecord) -> datetime:
    """When the certificate's key version was made (the key store's word), else its start."""
    if certificate.key_label is not None and certificate.key_version is not None:
        try:
            for version in office.keys.versions(certificate.key_label):
                if version.version == certificate.key_version:
                    return version.created
        except KeyNotFound:
            pass
    return certificate.not_before


def _key(certificate: CertificateRecord) -> str:
    return f"{certificate.key_label}/v{certificate.key_version}" if certificate.key_label else \
        f"certificate {certificate.serial} (key not in this store)"


def key_ages(office: SealOffice, policy: RotationPolicy, *, now: datetime | None = None) -> list[KeyAge]:
    """Every key that can still sign: the CAs' (root, then issuing), then each live seal's."""
    now = now or utc_now()
    ages: list[KeyAge] = []
    for which, current in (("root", office.ca.root(now)), ("issuing", office.ca.issuing(now))):
        if current is not None:
            ages.append(KeyAge("ca", which, current.subject, (_key(current),), _created(office, current),
                               policy.ca_limit(which), now))
    for record in office.seals(now=now):
        certificates = record.certificates
        if record.status_at(now) not in LIVE or record.der is None or not certificates:
            continue
        oldest = min(_created(office, c) for c in certificates)
        ages.append(KeyAge("seal", record.es_id, record.name, tuple(_key(c) for c in certificates), oldest,
                           policy.seal_limit(record.es_id), now))
    return ages


def keys_due(office: SealOffice, policy: RotationPolicy, *, within_days: int = 0,
             now: datetime | None = None) -> list[KeyAge]:
    """The keys older than the policy allows, or that will be within ``within_days``; the most
    overdue first."""
    if isinstance(within_days, bool) or not isinstance(within_days, int) or within_days < 0:
        raise ValueError(f"within_days must be a whole number of days >= 0, not {within_days!r}")
    due = [age for age in key_ages(office, policy, now=now) if age.due_within(within_days)]
    return sorted(due, key=lambda age: age.due_at)
