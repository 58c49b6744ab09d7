"""Rotating a seal's signer key: a new seal version that signs from now on, the old one kept.

A security officer rotates a seal's key because it has reached its maximum age
(:mod:`seals.rotation_policy`), because the officer suspects it, or as part of a compromise
response. :func:`rotate_seal` does, in this order:

1. a new version of each signer key in the key store (``keys.rotate``);
2. a new department-signer certificate from the issuing CA for each new key version, with
   the old certificate's subject, valid from now to the seal's validity end;
3. a new SESeal for the same esID whose certList lists the new certificates (same name,
   type and picture; made and signed by the seal maker as :meth:`SealOffice.make` does);
4. one transaction: the seal row gets the new DER (the one :meth:`SealOffice.signing_identity`
   and so every new document and licence QR code use), the old version is marked superseded
   in ``seal_version`` and the new one added with its signer links, a ``seal_event`` row
   (status unchanged, the reason says what happened) and the ``seal.rotate`` audit entry with
   the officer, the old and new key versions, certificate serials and seal fingerprints;
5. the old key versions are disabled in the key store (their public keys still verify;
   nothing signs with them any more, so a stale caller fails loudly instead of sealing with a
   superseded seal version) and, with ``revoke_old``, the old certificates revoked.

A failure in steps 1–4 undoes what was made: the new certificates are revoked and the new
key versions disabled, so the seal goes on signing with the version it had and no key signs
without a certificate listed in a seal. The transaction of step 4 is conditional on the seal
still being the version read at the start, so of two concurrent rotations one wins and the
other is undone. Step 5 comes after the commit, and only the winner takes it: the old
version is retired only once the new one signs. Should it fail (the key store or the CA gone
that moment), the rotation stands and :class:`RotationIncomplete` says what is left to do.

The old certificates are kept valid by default, until they expire: documents signed before
the rotation then verify TOTAL_PASSED without any further proof, because their signer was
valid and unrevoked at the signing time and is still unrevoked now. ``revoke_old`` revokes
them (reason ``superseded``, invalidity date the rotation time) after the rotation commits:
stricter — no signature can ever again be made under the old certificate — but a verifier
without a proof of the signing time (a time-stamp, or this registry's record of when a
licence was issued) then sees the old documents as INDETERMINATE (REVOKED_NO_POE).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ca.authority import certificate_of
from ca.profiles import DEPARTMENT_SIGNER
from ca.registry import CertificateRecord
from hsm.errors import KeyNotFound
from hsm.keystore import KeyState
from hsm.sm3 import sm3
from ledger.text import record_text

from .lifecycle import LIVE, SealRefused, SealRequestError
from .make import SealContent, make_seal
from .office import CERTIFICATE_REVOCATION_REASON, MAX_REASON_CHARS, SealOffice
from .registry import SealEvent, SealRecord, SealSigner, SealVersion
from .seal import read_seal

#: The RFC 5280 reason an old certificate is revoked with when the caller asks for it.
SUPERSEDED_REASON = "superseded"


class RotationConflict(SealRefused):
    """Another rotation (or a change of the seal) committed first; nothing of this one is left."""


class RotationIncomplete(SealRefused):
    """The rotation is done (the new version signs), but retiring the old version was not:
    an old key version could not be disabled, or (``revoke_old``) an old certificate revoked.
    ``rotation`` says what was done, ``failures`` (what, why) what is left."""

    def __init__(self, rotation: SealRotation, failures: list[tuple[str, str]]):
        self.rotation, self.failures = rotation, failures
        listed = "; ".join(f"{what}: {why}" for what, why in failures)
        super().__init__(
            f"seal {rotation.es_id} was rotated to version {rotation.new_version}, but retiring the old "
            f"version failed ({listed}); finish with `zhengyin keys disable LABEL VERSION` and, for a "
            "certificate to revoke, `zhengyin ca revoke SERIAL --reason superseded`")


@dataclass(frozen=True)
class SealRotation:
    """What :func:`rotate_seal` did, for the caller, the audit log and the command line."""

    es_id: str
    rotated_at: datetime
    old_version: int
    new_version: int
    old_keys: tuple[str, ...]          # "label/vN", in certList order
    new_keys: tuple[str, ...]
    old_certificates: tuple[str, ...]  # serials (hex), in certList order
    new_certificates: tuple[str, ...]
    old_fingerprint: str               # SM3 of the SESeal DER, hex
    new_fingerprint: str
    valid_start: datetime              # of the new seal version
    valid_end: datetime
    maker_serial: str
    old_keys_disabled: bool
    old_certificates_revoked: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "es_id": self.es_id, "rotated_at": self.rotated_at.isoformat(),
            "old_version": self.old_version, "new_version": self.new_version,
            "old_keys": list(self.old_keys), "new_keys": list(self.new_keys),
            "old_certificates": list(self.old_certificates), "new_certificates": list(self.new_certificates),
            "old_fingerprint_sm3": self.old_fingerprint, "new_fingerprint_sm3": self.new_fingerprint,
            "valid_start": self.valid_start.isoformat(), "valid_end": self.valid_end.isoformat(),
            "maker_serial": self.maker_serial, "old_keys_disabled": self.old_keys_disabled,
            "old_certificates_revoked": self.old_certificates_revoked,
        }


def _key(label: str | None, version: int | None) -> str:
    return f"{label}/v{version}"


def _usable(office: SealOffice, es_id: str, now: datetime) -> SealRecord:
    record = office.find(es_id)
    status = record.status_at(now)
    if status not in LIVE or record.der is None or not record.certificates:
        raise SealRefused(f"seal {record.es_id} is {status.value}: only a made seal that is not revoked or "
                          "expired has a key to rotate")
    for certificate in record.certificates:
        if certificate.key_label is None or certificate.key_version is None:
            raise SealRefused(f"seal {record.es_id}: signer certificate {certificate.serial} has no key in "
                              "this key store, so this service cannot rotate it")
    return record


def rotate_seal(office: SealOffice, es_id: str, *, revoke_old: bool = False,
                reason: str | None = None) -> SealRotation:
    """Rotate the signer key(s) of seal ``es_id`` (see the module docstring for the steps).

    ``office`` acts under its actor (a view of the domain: ``TrustDomain.acting_as(officer)``
    gives one, ``domain.seals`` is it). Raises SealNotFound, SealRefused (not rotatable now,
    no seal maker, RotationConflict), the key store's and the CA's errors — each after undoing
    what was made — or RotationIncomplete after a committed rotation.
    """
    if reason is not None:
        reason = record_text("reason", reason, MAX_REASON_CHARS, SealRequestError)
    instant = datetime.now(UTC)
    # Seals, certificates and signing times say whole seconds: the new version is valid from
    # the second the rotation happens in, and the old one counts as in use to its end, so a
    # document signed in that second, before or after, is judged in use with either version.
    now = instant.replace(microsecond=0)
    in_use_until = now if instant == now else now + timedelta(seconds=1)
    record = _usable(office, es_id, now)
    old_certificates = record.certificates
    old_version = record.version
    assert record.valid_end is not None and record.der is not None and record.fingerprint is not None
    maker = office.maker_certificate(now)
    new_keys: list[tuple[str, int]] = []
    issued: list[CertificateRecord] = []
    try:
        for old in old_certificates:
            assert old.key_label is not None
            version = office.keys.rotate(old.key_label).version
            new_keys.append((old.key_label, version))
            issued.append(office.ca.issue(DEPARTMENT_SIGNER.name, certificate_of(old).subject,
                                          key_label=old.key_label, key_version=version,
                                          not_before=now, not_after=record.valid_end))
        end = min([record.valid_end, maker.not_after, *(c.not_after for c in issued)])
        picture = read_seal(record.der).picture  # a rotation changes the key, not the image
        der = make_seal(SealContent(
            es_id=record.es_id, seal_type=record.seal_type, name=record.name,
            certificates=[c.der for c in issued], create_date=now, valid_start=now, valid_end=end,
            picture_type=picture.type.lower(), picture=picture.data, width_mm=picture.width_mm,
            height_mm=picture.height_mm),
            maker_certificate=maker.der, maker=office.keys.signer(maker.key_label, maker.key_version))
        rotation = SealRotation(
            es_id=record.es_id, rotated_at=now, old_version=old_version, new_version=old_version + 1,
            old_keys=tuple(_key(c.key_label, c.key_version) for c in old_certificates),
            new_keys=tuple(_key(label, version) for label, version in new_keys),
            old_certificates=tuple(c.serial for c in old_certificates),
            new_certificates=tuple(c.serial for c in issued),
            old_fingerprint=record.fingerprint, new_fingerprint=sm3(der).hex(),
            valid_start=now, valid_end=end, maker_serial=maker.serial, old_keys_disabled=True,
            old_certificates_revoked=revoke_old)
        _commit(office, record, rotation, der, issued, reason, revoke_old, in_use_until)
    except BaseException:
        _undo(office, issued, new_keys)
        raise
    failures = _disable_old(office, old_certificates)
    revoked = _revoke_old(office, old_certificates, now, failures) if revoke_old else False
    rotation = replace(rotation, old_keys_disabled=not any(w.startswith("key ") for w, _ in failures),
                       old_certificates_revoked=revoked)
    if failures:
        raise RotationIncomplete(rotation, failures)
    return rotation


def _disable_old(office: SealOffice, certificates: list[CertificateRecord]) -> list[tuple[str, str]]:
    """Disable the old signer key versions that are still active; what could not be done."""
    failures: list[tuple[str, str]] = []
    for certificate in certificates:
        label, version = certificate.key_label, certificate.key_version
        assert label is not None and version is not None
        try:
            states = {v.version: v.state for v in office.keys.versions(label)}
            if states.get(version) is KeyState.ACTIVE:
                office.keys.disable(label, version)
        except KeyNotFound:
            continue
        except Exception as exc:  # reported, never swallowed: the rotation itself stands
            failures.append((f"key {label}/v{version}", f"{exc.__class__.__name__}: {exc}"))
    return failures


def _commit(office: SealOffice, record: SealRecord, rotation: SealRotation, der: bytes,
            issued: list[CertificateRecord], reason: str | None, revoke_old: bool,
            superseded_at: datetime) -> None:
    details = rotation.as_dict() | {"reason": reason, "revoke_old": revoke_old}
    for done_later in ("old_keys_disabled", "old_certificates_revoked", "es_id"):
        details.pop(done_later)  # step 5 is audited by the key store and the CA themselves
    now = rotation.rotated_at
    try:
        with office.db.transaction() as s:
            # First statement, conditional: the write lock is taken here (SQLite) or the row
            # waited for (PostgreSQL), and a rotation that committed meanwhile makes it miss.
            moved = s.execute(update(SealRecord).where(
                SealRecord.id == record.id, SealRecord.fingerprint == rotation.old_fingerprint,
            ).values(der=der, fingerprint=rotation.new_fingerprint, valid_start=rotation.valid_start,
                     valid_end=rotation.valid_end))
            if moved.rowcount != 1:
                raise RotationConflict(f"seal {record.es_id} changed while it was being rotated (another "
                                       "rotation committed first); nothing of this rotation was kept")
            s.execute(update(SealVersion).where(SealVersion.seal_id == record.id,
                                                SealVersion.version == rotation.old_version)
                      .values(superseded_at=superseded_at))
            s.add(SealVersion(seal_id=record.id, version=rotation.new_version, der=der,
                              fingerprint=rotation.new_fingerprint, made_at=now,
                              valid_start=rotation.valid_start, valid_end=rotation.valid_end))
            for position, certificate in enumerate(issued):
                s.add(SealSigner(seal_id=record.id, version=rotation.new_version, position=position,
                                 certificate_id=certificate.id))
            why = f"key rotation to seal version {rotation.new_version}" + (f": {reason}" if reason else "")
            s.add(SealEvent(seal_id=record.id, from_status=record.status, to_status=record.status,
                            actor=office.actor, at=now, reason=why))
            s.flush()
            office.audit.record("seal.rotate", actor=office.actor, subject=f"seal:{record.es_id}",
                                details=details, session=s)
    except IntegrityError:  # the version number taken by a concurrent rotation
        raise RotationConflict(f"seal {record.es_id} was rotated by someone else at the same time; "
                               "nothing of this rotation was kept") from None


def _undo(office: SealOffice, issued: list[CertificateRecord], new_keys: list[tuple[str, int]]) -> None:
    """Best effort, each step on its own: what a failed rotation made must not sign."""
    for certificate in issued:
        with contextlib.suppress(Exception):
            office.ca.revoke(certificate.serial, CERTIFICATE_REVOCATION_REASON)
    for label, version in new_keys:
        with contextlib.suppress(Exception):
            office.keys.disable(label, version)


def _revoke_old(office: SealOffice, certificates: list[CertificateRecord], now: datetime,
                failures: list[tuple[str, str]]) -> bool:
    """Revoke the old certificates (superseded, invalid from the rotation's second: CRL times
    are whole seconds), then publish each issuing key's CRL that lists one (an old certificate
    may have been signed by an issuing CA key rotated since). True if none is left valid;
    what failed is added to ``failures``."""
    issuers: set[int] = set()
    left = 0
    for certificate in certificates:
        serial = certificate.serial
        try:
            old = office.ca.find(serial)
            if old.revoked:
                continue  # e.g. already revoked after a compromise
            office.ca.revoke(serial, SUPERSEDED_REASON, invalidity_date=now)
            if old.issuer_id is not None:
                issuers.add(old.issuer_id)
        except Exception as exc:  # reported, never swallowed: the rotation itself stands
            left += 1
            failures.append((f"certificate {serial}", f"{exc.__class__.__name__}: {exc}"))
    for issuer_id in sorted(issuers):
        try:
            with office.db.transaction() as s:
                issuer = s.get(CertificateRecord, issuer_id)
            office.ca.publish_crl("issuing", issuer=issuer)
        except Exception as exc:
            failures.append(("CRL", f"{exc.__class__.__name__}: {exc}; run `zhengyin ca crl`"))
    return left == 0
