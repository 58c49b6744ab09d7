"""The trust list and the published files the public verification service serves.

The public service faces the internet and holds no private key, so everything signed that it
serves is made here, on the internal side, and written into ``<home>/public/`` by
``zhengyin publish``:

``trust-list.json``
    the certificates this service vouches for — root, issuing CA, seal makers, the issuers'
    department signers (the keys of QR codes and seal signatures) and the trust-list signer
    itself — each with its role, SM3 fingerprint, subject, validity, status and DER; with a
    ``version`` that only grows, the ``issued_at`` time and ``next_update``. The bytes served
    are the bytes signed (sorted keys, UTF-8).
``trust-list.p7s``
    a detached SM2 CMS SignedData (RFC 5652 OIDs, so any CMS reader parses it) over those bytes,
    by the dedicated trust-list signing key (key store label ``trust-list-signer``) with a
    ``trust-list-signer`` certificate whose EKU is ETSI's id-tsl-kp-tslSigning. The signer is
    certified through the CA (and so audited) on first publish, and again when its certificate
    is revoked or within 30 days of expiry. A verifier checks it offline with the root as its
    only anchor: :func:`verify_trust_list`.
``crl/root.crl``, ``crl/issuing.crl``
    the CAs' current CRLs (DER), fresh ones published first if they are stale.

``ocsp/<sha1|sm3>/<issuer key hash>/<serial>.der``
    pre-produced OCSP responses (RFC 5019) for the certificates the issuing CA signed, so the
    public service answers OCSP without a key: :mod:`trust.ocsp_publish`.

``trust-list-<version>.json``, ``trust-list-<version>.p7s``
    the same two files under their version's name, never rewritten: the stable names are
    replaced one after the other, so a client that read ``trust-list.json`` fetches the
    signature of exactly that list as ``trust-list-<its version>.p7s``. The newest
    :data:`KEEP_VERSIONS` pairs are kept.

Each publish is one audit entry (``trust.publish``) naming the version, the SM3 of the list
and the CRL numbers. The version is one more than the larger of the last audited version and
the version in the file on disk, so neither a lost file nor a fresh database makes it repeat.

Publishes exclude each other: the whole of one (the signer check, the version, signing,
writing) runs under an exclusive ``fcntl`` lock on ``<home>/public/.lock``, and the database
guarantees the order across hosts too: the audit entry is appended (appends are serialised,
on PostgreSQL by an advisory lock) and then compared with the publish entry before it — a
version that is not greater than the last one recorded is rolled back and nothing is renamed
into place.

A trust-list signer whose certificate was revoked (for any reason: a revocation is the
security officer saying the key is no longer to be trusted) is never certified again: the
next publish rotates the key (a new key-store version) and certifies that.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509
from sqlalchemy import select

from ca.authority import utc_now
from ca.cms import verify_signed_data
from ca.profiles import PROFILES, TSL_SIGNING_OID
from ca.registry import CertificateRecord
from ca.validation import Purpose, load_certificates, validate_path
from ca.verdict import (
    EXPIRED,
    FORMAT_FAILURE,
    NO_CERTIFICATE_CHAIN_FOUND,
    NOT_YET_VALID,
    REVOKED,
    SIG_CONSTRAINTS_FAILURE,
    TRY_LATER,
    Check,
    Judged,
    failed,
    passed,
)
from hsm.sm3 import sm3
from ledger.audit import AuditRecord
from ledger.config import Settings

from .domain import TrustDomain
from .service_signers import certify_service_key, usable_certificates

FORMAT = "zhengyin-trust-list"
FORMAT_VERSION = 1
SIGNER_KEY_LABEL = "trust-list-signer"
SIGNER_PROFILE = "trust-list-signer"
PUBLIC_DIR = "public"
TRUST_LIST_FILE = "trust-list.json"
SIGNATURE_FILE = "trust-list.p7s"
CRL_FILES = {"root": "crl/root.crl", "issuing": "crl/issuing.crl"}
#: The per-version names (``trust-list-7.json``, ``trust-list-7.p7s``).
VERSIONED_FILE = re.compile(r"trust-list-([1-9][0-9]{0,17})\.(json|p7s)")
KEEP_VERSIONS = 20
LOCK_FILE = ".lock"
LOCK_TIMEOUT = 120.0  # seconds a publish waits for another to finish
#: How far a list's issued_at may be ahead of the verifier's clock.
MAX_CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_VALIDITY = timedelta(hours=24)
MAX_VALIDITY = timedelta(days=7)  # never promise beyond the CRLs' own validity
RENEW_BEFORE = timedelta(days=30)
AUDIT_ACTION = "trust.publish"

#: CA profile -> role in the trust list, in the order the list gives them.
ROLES = {
    "root-ca": "root",
    "issuing-ca": "issuing-ca",
    "seal-maker": "seal-maker",
    "department-signer": "department-signer",
    SIGNER_PROFILE: "trust-list-signer",
    "data-service-signer": "data-service-signer",  # signs data-reuse answers (trust.reuse_signing)
}
#: What a trust-list signer certificate must allow (keyUsage bit and the ETSI EKU).
TRUST_LIST_SIGNING = Purpose("trust_list_signing", frozenset({"digital_signature"}),
                             extended_key_usage=TSL_SIGNING_OID)


class TrustListError(Exception):
    """The trust list cannot be published (no CA yet, unwritable directory, bad validity)."""


def public_dir(settings: Settings) -> Path:
    """Where ``zhengyin publish`` writes and the public service reads: ``<home>/public``."""
    return settings.home / PUBLIC_DIR


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """A trust list time (``2026-01-02T03:04:05Z``) as an aware datetime; ValueError if malformed."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no zone")
    return moment


def _status(record: CertificateRecord, now: datetime) -> str:
    if record.revoked:
        return "revoked"
    if record.not_after <= now:
        return "expired"
    if record.not_before > now:
        return "not-yet-valid"
    return "valid"


def certificate_entry(record: CertificateRecord, now: datetime) -> dict[str, Any]:
    """One certificate of the list (what a relying party needs to pin or to look it up)."""
    from licences.qr_payload import key_id_of

    entry: dict[str, Any] = {
        "role": ROLES[record.profile],
        "role_name": PROFILES[record.profile].title,
        "subject": record.subject,
        "serial": record.serial,
        "sm3_fingerprint": sm3(record.der).hex(),
        "not_before": _iso(record.not_before),
        "not_after": _iso(record.not_after),
        "status": _status(record, now),
        "certificate": base64.b64encode(record.der).decode("ascii"),
    }
    if record.credit_code:
        entry["credit_code"] = record.credit_code
    if record.profile == "department-signer":
        entry["qr_key_id"] = key_id_of(record.der).hex()  # what a licence QR code names its signer by
    if record.revoked:
        entry["revoked_at"] = _iso(record.revoked_at)
        entry["revocation_reason"] = record.revocation_reason
    return entry


def build_trust_list(td: TrustDomain, *, version: int, now: datetime, next_update: datetime,
                     ) -> dict[str, Any]:
    """The trust list as a JSON-ready dict (nothing is signed or written here)."""
    entries = [certificate_entry(record, now)
               for profile in ROLES for record in td.ca.certificates(profile=profile)]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": version,
        "issued_at": _iso(now),
        "next_update": _iso(next_update),
        "public_url": td.settings.public_url,
        "certificates": entries,
    }


def encode(trust_list: dict[str, Any]) -> bytes:
    """The exact bytes signed and served: sorted keys, UTF-8, indented for people."""
    return (json.dumps(trust_list, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")


def versioned_names(version: int) -> tuple[str, str]:
    """The per-version file names of trust list ``version``: (list, signature)."""
    return f"trust-list-{version}.json", f"trust-list-{version}.p7s"


def ensure_signer(td: TrustDomain, now: datetime | None = None) -> CertificateRecord:
    """The trust-list signer's current certificate, made through the CA (key generated in the
    key store, certificate issued, both audited) when there is none usable for 30 more days.

    A key version any of whose certificates was revoked is never used or certified again: the
    key is rotated first. The new certificate's notBefore is ``now`` (the publish's own time),
    so the list it signs never names its signer "not yet valid" when the CA's clock ticked a
    second further than the caller's.
    """
    now = now or utc_now()
    records = td.ca.certificates(profile=SIGNER_PROFILE)
    usable = usable_certificates(records, SIGNER_KEY_LABEL, now, RENEW_BEFORE)
    if usable:
        return usable[-1]
    root = td.ca.root(now)
    if root is None or td.ca.issuing(now) is None:
        raise TrustListError("this home has no CA yet to certify the trust-list signer: run `zhengyin init`")
    return certify_service_key(td, label=SIGNER_KEY_LABEL, profile=SIGNER_PROFILE,
                               common_name="证印信任列表签名 (trust list signer)", organisation_of=root,
                               records=records, now=now)


def _file_version(directory: Path) -> int:
    try:
        value = json.loads((directory / TRUST_LIST_FILE).read_bytes()).get("version", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _audited_version(td: TrustDomain) -> int:
    last = td.audit.entries(action=AUDIT_ACTION, limit=1)
    value = last[0].details.get("version", 0) if last else 0
    return value if isinstance(value, int) else 0


@dataclass(frozen=True)
class PublishReport:
    directory: Path
    version: int
    issued_at: datetime
    next_update: datetime
    certificates: int
    sm3: str
    signer_serial: str
    crl_numbers: dict[str, int]
    files: tuple[str, ...] = field(default_factory=tuple)  # the CRLs and trust-list files
    ocsp_responses: int = 0  # pre-produced OCSP responses written under ocsp/

    def as_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "version": self.version, "issued_at": _iso(self.issued_at),
                "next_update": _iso(self.next_update), "certificates": self.certificates,
                "trust_list_sm3": self.sm3, "signer_serial": self.signer_serial,
                "crl_numbers": self.crl_numbers, "files": list(self.files),
                "ocsp_responses": self.ocsp_responses}


def _stage(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` next to its final place (same file system, so the rename is atomic)."""
    target = directory / name
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(temp, 0o644)  # public material, read by the public service's own user
    return Path(temp)


@contextmanager
def exclusive_publish(directory: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold ``<directory>/.lock`` exclusively (``flock``): one publish at a time on this host.
    TrustListError if another publish holds it for ``timeout`` seconds."""
    try:
        directory.mkdir(exist_ok=True)  # inside an existing home only: a mistyped --home is not created
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise TrustListError(f"cannot write into {directory}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TrustListError(f"another `zhengyin publish` has held {directory / LOCK_FILE} for "
                                         f"{timeout:.0f} s; try again when it has finished") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _check_order(session, seq: int, version: int) -> None:
    """The database's word on the order of publishes: the publish entry recorded just before
    ours (appends are serialised) must carry a smaller version, else ours is rolled back."""
    previous = session.scalars(select(AuditRecord).where(AuditRecord.action == AUDIT_ACTION,
                                                         AuditRecord.seq < seq)
                               .order_by(AuditRecord.seq.desc()).limit(1)).first()
    last = previous.details.get("version", 0) if previous is not None else 0
    if isinstance(last, int) and last >= version:
        raise TrustListError(f"trust list version {last} was published meanwhile (by another host?): "
                             f"version {version} is not newer; nothing was published, run publish again")


def _prune(directory: Path, newest: int) -> None:
    """Drop per-version files older than the newest :data:`KEEP_VERSIONS` versions."""
    for path in directory.iterdir():
        match = VERSIONED_FILE.fullmatch(path.name)
        if match and int(match[1]) <= newest - KEEP_VERSIONS:
            path.unlink(missing_ok=True)


def publish(td: TrustDomain, *, validity: timedelta = DEFAULT_VALIDITY,
            now: datetime | None = None) -> PublishReport:
    """Write the current CRLs and a newly signed trust list into ``<home>/public``.

    The whole publish holds the publish lock (:func:`exclusive_publish`); its time is taken
    once the lock is held. Every file is staged first; the audit entry is written next (and
    checked against the previous publish, :func:`_check_order`), and only then are the files
    renamed into place (CRLs first, then the per-version pair, then the stable list and
    signature), so a published version always has its audit entry and a failure leaves the
    previous files as they were.
    """
    if not timedelta(minutes=5) <= validity <= MAX_VALIDITY:
        raise TrustListError(f"the trust list's validity must be from 5 minutes to {MAX_VALIDITY.days} days, "
                             f"not {validity}")
    directory = public_dir(td.settings)
    with exclusive_publish(directory, LOCK_TIMEOUT):
        return _publish_locked(td, directory, validity, now)


def _publish_locked(td: TrustDomain, directory: Path, validity: timedelta, now: datetime | None
                    ) -> PublishReport:
    from .ocsp_publish import lasting_crls, produce_responses, prune_responses

    now = (now or utc_now()).replace(microsecond=0)
    next_update = now + validity
    # One CRL per live CA key (after a CA rotation the old key's CRL is still the one its
    # certificates name), each at crl/<ca.authority.crl_file_name>; one that would lapse before
    # the next publish is due is re-signed (the OCSP responses run to their CRL's nextUpdate).
    crl_files = lasting_crls(td, now, next_update)
    crls = {name.removesuffix(".crl"): record for name, record in crl_files.items()}
    signer_record = ensure_signer(td, now)
    ocsp_responses = produce_responses(td, now, crl_files)
    version = max(_audited_version(td), _file_version(directory)) + 1
    document = build_trust_list(td, version=version, now=now, next_update=next_update)
    content = encode(document)
    from ca.cms import sign_signed_data

    signature = sign_signed_data(
        signer=td.keys.signer(SIGNER_KEY_LABEL, signer_record.key_version), certificate=signer_record.der,
        chain=[c.dump() for c in td.ca.chain()], content=content, detached=True, flavour="rfc5652",
        signing_time=now)
    list_name, signature_name = versioned_names(version)
    outputs = [(f"crl/{which}.crl", record.der) for which, record in sorted(crls.items())]
    outputs += ocsp_responses
    outputs += [(list_name, content), (signature_name, signature)]
    outputs += [(TRUST_LIST_FILE, content), (SIGNATURE_FILE, signature)]
    try:
        staged = [(_stage(directory, name, data), directory / name) for name, data in outputs]
    except OSError as exc:
        raise TrustListError(f"cannot write into {directory}: {exc.strerror or exc}") from None
    report = PublishReport(directory, version, now, next_update, len(document["certificates"]),
                           sm3(content).hex(), signer_record.serial,
                           {which: record.number for which, record in crls.items()},
                           tuple(name for name, _ in outputs if not name.startswith("ocsp/")),
                           len(ocsp_responses))
    try:
        with td.db.transaction() as session:
            entry = td.audit.record(AUDIT_ACTION, actor=td.actor, subject=f"trust-list:{version}", details={
                "version": version, "issued_at": _iso(now), "next_update": _iso(next_update),
                "certificates": report.certificates, "trust_list_sm3": report.sm3,
                "signer_serial": report.signer_serial, "crl_numbers": report.crl_numbers,
                "ocsp_responses": report.ocsp_responses},
                session=session)
            _check_order(session, entry.seq, version)
    except BaseException:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise
    for temp, final in staged:
        os.replace(temp, final)
    _prune(directory, version)
    prune_responses(directory, [name for name, _ in ocsp_responses])
    return report


# ---- verifying (offline, what any relying party does) ------------------------------------------

@dataclass(frozen=True)
class TrustListVerification(Judged):
    """The checks on a trust list and its signature; ``document`` is set once it parsed.

    ``revocation_checked`` says whether the signer's certificates were checked against CRLs:
    False only when the caller asked for ``revocation="off"``, and then :attr:`warnings` says
    so in words — a verification that skipped revocation never looks like a full one.
    """

    checks: tuple[Check, ...]
    document: dict[str, Any] | None = None
    signer: x509.Certificate | None = None
    revocation_checked: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def warnings(self) -> tuple[str, ...]:
        if self.revocation_checked:
            return ()
        return ("the trust-list signer's revocation was NOT checked (no CRLs): a revoked or compromised "
                "signer would pass; fetch crl/root.crl and crl/issuing.crl and verify with them",)

    def certificates(self, role: str | None = None, *,
                     status: str | None = "valid") -> list[x509.Certificate]:
        """The listed certificates (of ``role``; by default only those listed as valid)."""
        if not self.ok or self.document is None:
            return []
        return [x509.Certificate.load(base64.b64decode(e["certificate"]))
                for e in self.document["certificates"]
                if (role is None or e["role"] == role) and (status is None or e["status"] == status)]


def _document_checks(content: bytes, at: datetime, min_version: int | None
                     ) -> tuple[list[Check], dict[str, Any] | None]:
    try:
        document = json.loads(content.decode("utf-8"))
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} document")
        version, entries = document["version"], document["certificates"]
        issued, next_update = parse_time(document["issued_at"]), parse_time(document["next_update"])
        if not isinstance(version, int) or isinstance(version, bool) or not isinstance(entries, list):
            raise ValueError("version must be a number and certificates a list")
        for entry in entries:
            der = base64.b64decode(entry["certificate"], validate=True)
            if sm3(der).hex() != entry["sm3_fingerprint"]:
                raise ValueError(f"the SM3 fingerprint of {entry.get('subject')!r} is not its certificate's")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return [failed("format", f"the trust list cannot be read: {exc}", FORMAT_FAILURE)], None
    checks = [passed("format", f"trust list version {version}, {len(entries)} certificates, "
                               f"issued {_iso(issued)}")]
    if issued > at + MAX_CLOCK_SKEW:
        checks.append(failed("issued-at", f"the trust list claims to be issued at {_iso(issued)}, after the "
                             f"time it is checked at ({_iso(at)}): a list from the future is not trusted",
                             NOT_YET_VALID))
    if min_version is not None and version < min_version:
        checks.append(failed("version", f"version {version} is older than version {min_version} already "
                             "seen: an old list replayed (it may still vouch for revoked certificates)",
                             EXPIRED))
    if at >= next_update:
        checks.append(failed("freshness", f"the trust list's next update {_iso(next_update)} has passed "
                             f"(checked at {_iso(at)}): fetch a newer one", EXPIRED))
    else:
        checks.append(passed("freshness", f"current until {_iso(next_update)}"))
    return checks, document


def _chain_failure(result) -> Check:
    failure = result.failed
    why = failure.detail if failure else result.code
    if failure is not None and failure.name == "revocation":
        code = REVOKED if failure.code == REVOKED else TRY_LATER
        return failed("signer-revocation", f"the trust list's signer cannot be trusted: {why}", code)
    code = SIG_CONSTRAINTS_FAILURE if "usage" in why.lower() else NO_CERTIFICATE_CHAIN_FOUND
    return failed("signer-chain", "the trust list's signer is not a trust-list signer under the anchor: "
                  f"{why}", code)


def verify_trust_list(content: bytes, signature: bytes, anchors: Iterable[bytes | x509.Certificate], *,
                      at: datetime | None = None, crls: Iterable[asn1_crl.CertificateList] = (),
                      revocation: str = "require", min_version: int | None = None,
                      ) -> TrustListVerification:
    """Check a trust list offline: the CMS signature over ``content``, the signer's path to one
    of ``anchors`` (the root) with the trust-list-signing EKU and, by default, its revocation
    against ``crls`` (the published root and issuing CRLs: without them the list does not
    verify — ``revocation="off"`` skips the check, and the result says so), then the document:
    readable, not issued in the future (beyond :data:`MAX_CLOCK_SKEW`), not older than
    ``min_version`` (the newest version the caller has seen: no rollback), not past its next
    update."""
    if revocation not in ("require", "off"):
        raise ValueError(f"revocation must be 'require' or 'off', not {revocation!r}")
    at = at or datetime.now(UTC)
    crl_list = list(crls)
    checking = revocation == "require"
    anchor_certs = [c for a in anchors
                    for c in ([a] if isinstance(a, x509.Certificate) else load_certificates(bytes(a)))]
    cms = verify_signed_data(signature, content=content)
    checks = list(cms.checks)
    if not cms.ok or cms.signer_certificate is None:
        return TrustListVerification(tuple(checks), revocation_checked=checking)
    signer_cert = x509.Certificate.load(cms.signer_certificate)
    from ca.cms import read_signed_data

    carried = [x509.Certificate.load(der) for der in read_signed_data(signature).certificates]
    result = validate_path(signer_cert, trust_anchors=anchor_certs, intermediates=carried, at=at,
                           crls=crl_list, purpose=TRUST_LIST_SIGNING,
                           revocation="require" if checking and crl_list else "off")
    if not result.ok:
        checks.append(_chain_failure(result))
        return TrustListVerification(tuple(checks), signer=signer_cert, revocation_checked=checking)
    checks.append(passed("signer-chain", "the signer chains to the trust anchor with the trust-list-"
                         "signing EKU: " + " <- ".join(c.subject.human_friendly for c in result.path)))
    if checking and not crl_list:
        checks.append(failed("signer-revocation", "no CRLs were given, so the signer's revocation cannot be "
                             "checked: fetch crl/root.crl and crl/issuing.crl from the same service",
                             TRY_LATER))
    elif checking:
        checks.append(passed("signer-revocation", "the signer and its CA are not revoked in the CRLs given"))
    document_checks, document = _document_checks(content, at, min_version)
    checks.extend(document_checks)
    return TrustListVerification(tuple(checks), document, signer_cert, revocation_checked=checking)
