"""The certificate authority as a service: keys from a key store, rows in the registry,
every act in the audit log.

The pure functions in :mod:`ca.certificates`, :mod:`ca.crl` and :mod:`ca.ocsp` build and
sign; this module decides *what* to sign and keeps the record. Each issuance, renewal,
revocation and CRL is written together with its audit entry in one transaction, so the
registry never holds a certificate the audit log does not know about (and vice versa).

Hierarchy: one root CA (self-signed) and one issuing CA under it; end-entity certificates
come from the issuing CA. The newest valid certificate of each CA profile is the one in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from hsm.keystore import KeyStore
from hsm.sm2 import SM2PublicKey
from hsm.sm3 import sm3
from ledger.audit import AuditLog
from ledger.database import Database

from .certificates import build_certificate, new_serial
from .crl import REASONS, RevokedEntry, build_crl
from .csr import load_csr
from .errors import CaError, CertificateNotFound, InvalidRequest
from .names import credit_code_of
from .ocsp import CertificateStatus, respond
from .profiles import ISSUING_CA, ROOT_CA, Profile, profile_named
from .registry import CertificateRecord, CrlRecord
from .signatures import certificate_public_key

CRL_VALIDITY = timedelta(days=7)
#: RFC 5280 reasons we revoke with: revocation here is final, so no hold and no removal.
REVOCATION_REASONS = tuple(r for r in REASONS if r not in ("certificate_hold", "remove_from_crl"))


def utc_now() -> datetime:
    """Now, to the second: certificates and CRLs carry no fractions of a second."""
    return datetime.now(UTC).replace(microsecond=0)


def parse_serial(value: str | int) -> str:
    """A serial as the registry stores it (lower-case hex) from ``int``, hex, ``0x..`` or ``aa:bb``."""
    if isinstance(value, int):
        number = value
    else:
        text = value.strip().lower().replace(":", "").removeprefix("0x")
        try:
            number = int(text, 16)
        except ValueError:
            raise InvalidRequest(f"{value!r} is not a certificate serial number (hexadecimal)") from None
    if number <= 0:
        raise InvalidRequest("certificate serial numbers are positive")
    return format(number, "x")


def certificate_of(record: CertificateRecord) -> x509.Certificate:
    return x509.Certificate.load(record.der)


@dataclass(frozen=True)
class AuthorityPolicy:
    """Where relying parties find revocation data, and how long a CRL stays current.

    Each CA publishes its own CRL: the root's lists revoked issuing CAs (and is what an
    issuing CA certificate points to), the issuing CA's lists revoked end entities.
    """

    crl_base_url: str | None = None
    ocsp_url: str | None = None
    policy_oid: str | None = None
    crl_validity: timedelta = CRL_VALIDITY

    def crl_url(self, issuer_profile: Profile, key_version: int | None = 1) -> str | None:
        """The CRL distribution point of certificates issued by a CA of ``issuer_profile``
        whose key is at ``key_version`` (each CA key publishes its own CRL: see crl_file_name)."""
        if self.crl_base_url is None:
            return None
        return f"{self.crl_base_url}/{crl_file_name(issuer_profile, key_version)}"


def crl_file_name(profile: Profile, key_version: int | None) -> str:
    """``root.crl`` / ``issuing.crl`` for a CA's first key, ``issuing-v2.crl`` after a rotation.

    A CRL is signed by one CA key and lists what that key certified. After ``rotate_ca`` the
    old key still answers for the certificates it signed, so both CRLs are published, each at
    the URL its certificates name. The first key keeps the unversioned name, so homes made
    before rotation existed keep their URLs.
    """
    which = "root" if profile is ROOT_CA else "issuing"
    return f"{which}.crl" if key_version in (None, 1) else f"{which}-v{key_version}.crl"


@dataclass(frozen=True)
class CaRotation:
    """What :meth:`CertificateAuthority.rotate_ca` did: the CA's old and new certificate, and for a
    root rotation the issuing CA's certificate re-signed under the new root."""

    which: str
    old: CertificateRecord
    new: CertificateRecord
    recertified_issuing: CertificateRecord | None = None

    def as_dict(self) -> dict[str, object]:
        def cert(r: CertificateRecord) -> dict[str, object]:
            return {"serial": r.serial, "key": f"{r.key_label}/v{r.key_version}",
                    "not_after": r.not_after.isoformat()}
        out: dict[str, object] = {"ca": self.which, "old": cert(self.old), "new": cert(self.new)}
        if self.recertified_issuing is not None:
            out["recertified_issuing"] = cert(self.recertified_issuing)
        return out


class CertificateAuthority:
    def __init__(self, db: Database, keys: KeyStore, audit: AuditLog, *, actor: str,
                 policy: AuthorityPolicy | None = None):
        self.db, self.keys, self.audit, self.actor = db, keys, audit, actor
        self.policy = policy or AuthorityPolicy()

    # ---- lookups ---------------------------------------------------------------------------
    def _current(self, s: Session, profile: Profile, now: datetime) -> CertificateRecord | None:
        return s.scalars(
            select(CertificateRecord)
            .where(CertificateRecord.profile == profile.name, CertificateRecord.revoked_at.is_(None),
                   CertificateRecord.not_after > now)
            .order_by(CertificateRecord.id.desc()).limit(1)).first()

    def root(self, now: datetime | None = None) -> CertificateRecord | None:
        with self.db.transaction() as s:
            return self._current(s, ROOT_CA, now or utc_now())

    def issuing(self, now: datetime | None = None) -> CertificateRecord | None:
        with self.db.transaction() as s:
            return self._current(s, ISSUING_CA, now or utc_now())

    def find(self, serial: str | int) -> CertificateRecord:
        key = parse_serial(serial)
        with self.db.transaction() as s:
            rows = list(s.scalars(select(CertificateRecord).where(CertificateRecord.serial == key)))
        if not rows:
            raise CertificateNotFound(f"no certificate with serial {key} was issued by this CA")
        if len(rows) > 1:
            raise CaError(f"serial {key} is ambiguous: issued by {len(rows)} CAs of this home")
        return rows[0]

    def certificates(self, *, profile: str | None = None, include_revoked: bool = True
                     ) -> list[CertificateRecord]:
        with self.db.transaction() as s:
            q = select(CertificateRecord).order_by(CertificateRecord.id)
            if profile:
                q = q.where(CertificateRecord.profile == profile_named(profile).name)
            if not include_revoked:
                q = q.where(CertificateRecord.revoked_at.is_(None))
            return list(s.scalars(q))

    def chain(self) -> list[x509.Certificate]:
        """Issuing CA then root: what a relying party needs beside a leaf."""
        issuing, root = self.issuing(), self.root()
        if issuing is None or root is None:
            raise CaError("this home has no CA yet: run `zhengyin init`")
        return [certificate_of(issuing), certificate_of(root)]

    # ---- issuance --------------------------------------------------------------------------
    def create_root(self, key_label: str, subject: x509.Name, *, now: datetime | None = None
                    ) -> CertificateRecord:
        """A self-signed root certificate for the key ``key_label`` (its current version)."""
        return self._issue(ROOT_CA, subject, key_label=key_label, issuer=None, now=now or utc_now())

    def create_issuing(self, key_label: str, subject: x509.Name, *, now: datetime | None = None
                       ) -> CertificateRecord:
        now = now or utc_now()
        with self.db.transaction() as s:
            root = self._current(s, ROOT_CA, now)
        if root is None:
            raise CaError("there is no valid root CA certificate to sign the issuing CA")
        return self._issue(ISSUING_CA, subject, key_label=key_label, issuer=root, now=now)

    def issue(self, profile: str, subject: x509.Name | None = None, *, key_label: str | None = None,
              key_version: int | None = None, csr: bytes | None = None,
              not_before: datetime | None = None, not_after: datetime | None = None
              ) -> CertificateRecord:
        """An end-entity certificate from the issuing CA, for a store key or a CSR's key.

        With a CSR, the subject is the CSR's unless ``subject`` is given (the CA has the last
        word on names); the CSR's own signature must verify, proving possession of the key.
        """
        chosen = profile_named(profile)
        if chosen.is_ca:
            raise InvalidRequest(f"profile {chosen.name!r} is a CA profile; CAs are made by `zhengyin init`")
        if (key_label is None) == (csr is None):
            raise InvalidRequest("give exactly one of a key-store label or a CSR")
        public_key = None
        if csr is not None:
            request = load_csr(csr)
            public_key, subject = request.public_key, subject or request.subject
        if subject is None:
            raise InvalidRequest("a subject name is needed")
        now = utc_now()
        with self.db.transaction() as s:
            issuer = self._current(s, ISSUING_CA, now)
        if issuer is None:
            raise CaError("there is no valid issuing CA certificate: run `zhengyin init`")
        return self._issue(chosen, subject, key_label=key_label, key_version=key_version,
                           public_key=public_key, issuer=issuer, now=now,
                           not_before=not_before, not_after=not_after)

    def renew(self, serial: str | int) -> CertificateRecord:
        """A new certificate for the same subject, profile and key holder, valid from now.

        A store key is taken at its *current* version, so renewing after ``keys rotate``
        certifies the new key; a CSR-issued certificate is renewed for the same public key.
        The old certificate stays valid until it expires or is revoked.
        """
        old = self.find(serial)
        if old.revoked:
            raise InvalidRequest(f"certificate {old.serial} is revoked; issue a new one instead")
        profile = profile_named(old.profile)
        if profile.is_ca:
            raise InvalidRequest("CA certificates are not renewed from here")
        cert = certificate_of(old)
        public_key = None if old.key_label else certificate_public_key(cert)
        now = utc_now()
        with self.db.transaction() as s:
            issuer = self._current(s, ISSUING_CA, now)
        if issuer is None:
            raise CaError("there is no valid issuing CA certificate")
        return self._issue(profile, cert.subject, key_label=old.key_label, public_key=public_key,
                           issuer=issuer, now=now, renews=old)

    def _issue(self, profile: Profile, subject: x509.Name, *, issuer: CertificateRecord | None,
               now: datetime, key_label: str | None = None, key_version: int | None = None,
               public_key: SM2PublicKey | None = None, not_before: datetime | None = None,
               not_after: datetime | None = None, renews: CertificateRecord | None = None
               ) -> CertificateRecord:
        if key_label is not None:
            ref = self.keys.signer(key_label, key_version)
            public_key, key_version = ref.public_key(), ref.version
        assert public_key is not None
        if issuer is None:
            signer, issuer_cert = self.keys.signer(key_label, key_version), None
        else:
            signer = self.keys.signer(issuer.key_label, issuer.key_version)
            issuer_cert = certificate_of(issuer)
        cert = build_certificate(
            profile=profile, subject=subject, subject_key=public_key, signer=signer, issuer=issuer_cert,
            serial=new_serial(), not_before=not_before or now, not_after=not_after,
            crl_url=None if issuer is None else self.policy.crl_url(profile_named(issuer.profile),
                                                                     issuer.key_version),
            ocsp_url=None if profile.is_ca else self.policy.ocsp_url, policy_oid=self.policy.policy_oid)
        der = cert.dump()
        tbs = cert["tbs_certificate"]
        record = CertificateRecord(
            serial=format(tbs["serial_number"].native, "x"), profile=profile.name,
            subject=cert.subject.human_friendly, credit_code=credit_code_of(cert.subject),
            key_label=key_label, key_version=key_version if key_label else None,
            key_id=public_key.key_identifier().hex(),
            not_before=tbs["validity"]["not_before"].native,
            not_after=tbs["validity"]["not_after"].native,
            fingerprint=sm3(der).hex(), der=der, issued_at=now,
            issuer_id=issuer.id if issuer else None, renews_id=renews.id if renews else None)
        with self.db.transaction() as s:
            s.add(record)
            s.flush()
            details = {"profile": profile.name, "subject": record.subject, "serial": record.serial,
                       "not_after": record.not_after.isoformat(), "fingerprint_sm3": record.fingerprint,
                       "issuer_serial": issuer.serial if issuer else None}
            if key_label:
                details["key"] = f"{key_label}/v{key_version}"
            if renews:
                details["renews"] = renews.serial
            self.audit.record("ca.renew" if renews else "ca.issue", actor=self.actor,
                              subject=f"cert:{record.serial}", details=details, session=s)
        return record

    # ---- revocation ------------------------------------------------------------------------
    def revoke(self, serial: str | int, reason: str = "unspecified", *,
               invalidity_date: datetime | None = None) -> CertificateRecord:
        """Revoke for good (RFC 5280 reasons; no certificate hold, no un-revoking)."""
        if reason not in REVOCATION_REASONS:
            raise InvalidRequest(f"unknown or unsupported revocation reason {reason!r}; "
                                 f"use one of: {', '.join(REVOCATION_REASONS)}")
        now = utc_now()
        if invalidity_date is not None:
            if invalidity_date.tzinfo is None:
                raise InvalidRequest("the invalidity date needs a time zone (e.g. 2026-01-02T03:04:05Z)")
            if invalidity_date > now:
                raise InvalidRequest("the invalidity date cannot be in the future")
        key = self.find(serial).serial
        with self.db.transaction() as s:
            record = s.scalars(select(CertificateRecord).where(CertificateRecord.serial == key)
                               .with_for_update()).one()
            if record.revoked:
                raise InvalidRequest(f"certificate {record.serial} was already revoked on "
                                     f"{record.revoked_at.isoformat()} ({record.revocation_reason})")
            if record.profile == ROOT_CA.name:
                raise InvalidRequest("the root certificate cannot be revoked by its own CRL; "
                                     "replace the trust anchor instead")
            record.revoked_at, record.revocation_reason = now, reason
            record.invalidity_date = invalidity_date.astimezone(UTC) if invalidity_date else None
            self.audit.record("ca.revoke", actor=self.actor, subject=f"cert:{record.serial}", details={
                "reason": reason, "subject": record.subject,
                "invalidity_date": record.invalidity_date.isoformat() if record.invalidity_date else None,
            }, session=s)
        return record

    def _ca_profile(self, which: str) -> Profile:
        if which not in ("root", "issuing"):
            raise InvalidRequest(f"CRLs are published by the root or the issuing CA, not {which!r}")
        return ROOT_CA if which == "root" else ISSUING_CA

    @staticmethod
    def _siblings(s: Session, ca: CertificateRecord) -> list[int]:
        """The ids of every certificate of ``ca``'s key (a root rotation re-certifies the issuing
        key under the new root): one CRL and one CRL number sequence per CA key."""
        return list(s.scalars(select(CertificateRecord.id).where(
            CertificateRecord.profile == ca.profile, CertificateRecord.key_label == ca.key_label,
            CertificateRecord.key_version == ca.key_version)))

    def publish_crl(self, which: str = "issuing", *, now: datetime | None = None,
                    issuer: CertificateRecord | None = None) -> CrlRecord:
        """A new CRL of the ``which`` CA (or ``issuer``) listing every certificate its key revoked."""
        now = now or utc_now()
        profile = self._ca_profile(which)
        with self.db.transaction() as s:
            ca = issuer or self._current(s, profile, now)
            if ca is None:
                raise CaError(f"there is no valid {which} CA certificate to sign a CRL")
            siblings = self._siblings(s, ca)
            revoked = s.scalars(select(CertificateRecord).where(
                CertificateRecord.issuer_id.in_(siblings), CertificateRecord.id.not_in(siblings),
                CertificateRecord.revoked_at.is_not(None))
                .order_by(CertificateRecord.revoked_at)).all()
            last = s.scalars(select(CrlRecord.number).where(CrlRecord.issuer_id.in_(siblings))
                             .order_by(CrlRecord.number.desc()).limit(1)).first()
        entries: Sequence[RevokedEntry] = [
            RevokedEntry(serial=r.serial_number, revoked_at=r.revoked_at, reason=r.revocation_reason,
                         invalidity_date=r.invalidity_date) for r in revoked]
        number = (last or 0) + 1
        next_update = now + self.policy.crl_validity
        crl = build_crl(issuer=certificate_of(ca), signer=self.keys.signer(ca.key_label, ca.key_version),
                        entries=entries, number=number, this_update=now, next_update=next_update)
        record = CrlRecord(issuer_id=ca.id, number=number, this_update=now, next_update=next_update,
                           der=crl.dump())
        with self.db.transaction() as s:
            s.add(record)
            s.flush()
            self.audit.record("ca.crl", actor=self.actor, subject=f"crl:{ca.serial}/{number}", details={
                "entries": len(entries), "this_update": now.isoformat(),
                "next_update": next_update.isoformat(), "key": f"{ca.key_label}/v{ca.key_version}"},
                session=s)
        return record

    def _latest_of(self, s: Session, ca: CertificateRecord) -> CrlRecord | None:
        return s.scalars(select(CrlRecord).where(CrlRecord.issuer_id.in_(self._siblings(s, ca)))
                         .order_by(CrlRecord.number.desc()).limit(1)).first()

    def latest_crl(self, which: str = "issuing") -> CrlRecord | None:
        """The newest CRL the ``which`` CA's current key has published, current or not."""
        profile = self._ca_profile(which)
        with self.db.transaction() as s:
            ca = self._current(s, profile, utc_now())
            return None if ca is None else self._latest_of(s, ca)

    def current_crl(self, which: str = "issuing", *, now: datetime | None = None,
                    issuer: CertificateRecord | None = None) -> CrlRecord:
        """The newest CRL of the ``which`` CA (or of ``issuer``'s key), publishing a fresh one
        when none is current (none yet, past its nextUpdate, or older than its latest revocation)."""
        now = now or utc_now()
        profile = self._ca_profile(which)
        with self.db.transaction() as s:
            ca = issuer or self._current(s, profile, now)
            if ca is None:
                raise CaError(f"there is no valid {which} CA certificate")
            siblings = self._siblings(s, ca)
            latest = self._latest_of(s, ca)
            newest_revocation = s.scalars(
                select(CertificateRecord.revoked_at).where(CertificateRecord.issuer_id.in_(siblings),
                                                           CertificateRecord.id.not_in(siblings),
                                                           CertificateRecord.revoked_at.is_not(None))
                .order_by(CertificateRecord.revoked_at.desc()).limit(1)).first()
        stale = latest is None or latest.next_update <= now or (
            newest_revocation is not None and newest_revocation >= latest.this_update)
        return self.publish_crl(which, now=now, issuer=ca) if stale else latest

    def current_crls(self, *, now: datetime | None = None) -> list[CrlRecord]:
        """Both CAs' current CRLs for their current keys: what a relying party needs to check a
        path issued today. :meth:`live_crls` adds those of older keys after a rotation."""
        return [self.current_crl("issuing", now=now), self.current_crl("root", now=now)]

    def live_ca_certificates(self, which: str, *, now: datetime | None = None) -> list[CertificateRecord]:
        """Every unexpired, unrevoked certificate of the ``which`` CA, newest first: after a
        rotation the old ones still vouch for what they signed until they expire."""
        now = now or utc_now()
        profile = self._ca_profile(which)
        with self.db.transaction() as s:
            return list(s.scalars(select(CertificateRecord).where(
                CertificateRecord.profile == profile.name, CertificateRecord.revoked_at.is_(None),
                CertificateRecord.not_after > now).order_by(CertificateRecord.id.desc())))

    def live_crls(self, *, now: datetime | None = None) -> dict[str, CrlRecord]:
        """The current CRL of every live CA key, by its file name (:func:`crl_file_name`)."""
        now = now or utc_now()
        crls: dict[str, CrlRecord] = {}
        for which in ("root", "issuing"):
            for ca in self.live_ca_certificates(which, now=now):
                name = crl_file_name(self._ca_profile(which), ca.key_version)
                if name not in crls:  # the newest certificate of each key signs its CRL
                    crls[name] = self.current_crl(which, now=now, issuer=ca)
        return crls

    def latest_crls(self, *, now: datetime | None = None) -> list[CrlRecord]:
        """The newest published CRL of every live CA key, current or not (nothing is signed:
        what a read-only verifier on this home uses)."""
        found: dict[tuple[str, str | None, int | None], CrlRecord] = {}
        for which in ("issuing", "root"):
            for ca in self.live_ca_certificates(which, now=now):
                key = (ca.profile, ca.key_label, ca.key_version)
                if key not in found:
                    with self.db.transaction() as s:
                        latest = self._latest_of(s, ca)
                    if latest is not None:
                        found[key] = latest
        return list(found.values())

    # ---- rotation --------------------------------------------------------------------------
    def rotate_ca(self, which: str, *, now: datetime | None = None) -> CaRotation:
        """A new key version for the ``which`` CA and its certificate; the old one stays.

        Issuing CA: the new certificate (same name, new key, signed by the root) is the one that
        signs from now on; the old key keeps signing the CRL of what it certified until that
        expires. Root: a new self-signed root, and the issuing CA's current key re-certified under
        it, so new paths end at the new root while every old path still ends at the old one —
        relying parties trust both for the overlap (the trust list lists both). A failure after
        the new key version exists disables that version, so nothing signs with a key no
        certificate vouches for.
        """
        now = now or utc_now()
        profile = self._ca_profile(which)
        with self.db.transaction() as s:
            old = self._current(s, profile, now)
            issuing = self._current(s, ISSUING_CA, now)
        if old is None or old.key_label is None:
            raise CaError(f"there is no valid {which} CA certificate (with a key in this store) to rotate")
        subject = certificate_of(old).subject
        version = self.keys.rotate(old.key_label).version
        try:
            if profile is ISSUING_CA:
                new = self.create_issuing(old.key_label, subject, now=now)
                return self._rotated(CaRotation(which, old, new))
            new = self._issue(ROOT_CA, subject, key_label=old.key_label, issuer=None, now=now)
            recertified = None
            if issuing is not None and issuing.key_label is not None:
                recertified = self._issue(ISSUING_CA, certificate_of(issuing).subject,
                                          key_label=issuing.key_label, key_version=issuing.key_version,
                                          issuer=new, now=now)
            return self._rotated(CaRotation(which, old, new, recertified))
        except BaseException:
            self.keys.disable(old.key_label, version)
            raise

    def _rotated(self, rotation: CaRotation) -> CaRotation:
        details = rotation.as_dict()
        self.audit.record("ca.rotate", actor=self.actor, subject=f"cert:{rotation.new.serial}",
                          details=details)
        return rotation

    # ---- status ----------------------------------------------------------------------------
    def status(self, serial: int) -> CertificateStatus:
        """What OCSP says about ``serial`` among the issuing CA's certificates."""
        with self.db.transaction() as s:
            ca = self._current(s, ISSUING_CA, utc_now())
            record = None if ca is None else s.scalars(select(CertificateRecord).where(
                CertificateRecord.issuer_id.in_(self._siblings(s, ca)),
                CertificateRecord.serial == format(serial, "x"))).first()
        if record is None:
            return CertificateStatus("unknown")
        if record.revoked:
            return CertificateStatus("revoked", revoked_at=record.revoked_at, reason=record.revocation_reason,
                                     invalidity_date=record.invalidity_date)
        return CertificateStatus("good")

    def respond_ocsp(self, request: bytes, *, now: datetime | None = None) -> bytes:
        """An RFC 6960 response, signed by the OCSP responder certificate (or the issuing CA)."""
        now = now or utc_now()
        with self.db.transaction() as s:
            ca = self._current(s, ISSUING_CA, now)
            responder = s.scalars(
                select(CertificateRecord)
                .where(CertificateRecord.profile == profile_named("ocsp-responder").name,
                       CertificateRecord.issuer_id == (ca.id if ca else None),
                       CertificateRecord.revoked_at.is_(None), CertificateRecord.not_after > now)
                .order_by(CertificateRecord.id.desc()).limit(1)).first()
        if ca is None:
            raise CaError("there is no valid issuing CA certificate")
        signer_record = responder or ca
        return respond(request, issuer=certificate_of(ca), responder=certificate_of(signer_record),
                       responder_signer=self.keys.signer(signer_record.key_label, signer_record.key_version),
                       status_of=self.status, now=now)
