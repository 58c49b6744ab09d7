"""Pre-produced OCSP responses (RFC 5019), made by ``zhengyin publish`` for the public service.

The public verification service holds no private key, so it cannot sign an OCSP answer when a
client asks. It answers instead with bytes signed here, on the internal side, at every publish:
one response per certificate and CertID hash (SHA-1, what RFC 5019 clients send, and SM3), at

``ocsp/<sha1|sm3>/<issuerKeyHash, hex>/<serial, lower-case hex>.der``

under ``<home>/public``. Which certificates: every unexpired certificate a live issuing-CA key
signed (after a CA rotation the old key still answers for what it signed) — the department
signers, seal makers, trust-list and data-service signers the trust list vouches for, and the
time-stamping units — except OCSP responders themselves (they carry id-pkix-ocsp-nocheck).
The issuing CA's own certificate is the root's to speak for, through ``crl/root.crl``: the root
signs nothing online.

Who signs: for the current issuing-CA key a delegated responder (profile ``ocsp-responder``:
id-kp-OCSPSigning, id-pkix-ocsp-nocheck), certified through the CA — and so audited — when none
is usable beyond :data:`RENEW_BEFORE`; a responder key any of whose certificates was revoked is
rotated before it is certified again. An older issuing-CA key signs with a responder it
delegated while one is still valid, else with its own key (RFC 6960 §4.2.2.2 allows the CA).

When: thisUpdate = producedAt = the publish time, nextUpdate = the nextUpdate of the CRL of the
same CA key, so a response never says more, or for longer, than the CRL published beside it.
:func:`lasting_crls` makes sure that CRL does not lapse before the next scheduled publish.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from asn1crypto import x509

from ca.authority import certificate_of, crl_file_name
from ca.ocsp import CertificateStatus, is_delegated_responder, issuer_hashes, pre_produce
from ca.profiles import ISSUING_CA, OCSP_RESPONDER, ROOT_CA
from ca.registry import CertificateRecord, CrlRecord
from hsm.errors import HsmError

from .domain import TrustDomain

OCSP_DIR = "ocsp"
#: The CertID hash algorithms a response is pre-produced for.
CERT_ID_HASHES = ("sha1", "sm3")
RESPONDER_KEY_LABEL = "ocsp-responder"
RENEW_BEFORE = timedelta(days=30)


def response_file(hash_algorithm: str, issuer_key_hash: bytes, serial: int) -> str:
    """Where (under ``<home>/public``) the response for one CertID is kept."""
    return f"{OCSP_DIR}/{hash_algorithm}/{issuer_key_hash.hex()}/{serial:x}.der"


def lasting_crls(td: TrustDomain, now: datetime, until: datetime) -> dict[str, CrlRecord]:
    """The current CRL of every live CA key by file name (as ``live_crls``), re-signed now when
    it would lapse before ``until`` (the trust list's next update, when the next publish is due),
    so neither it nor the OCSP responses aligned with it run out between two publishes."""
    crls = td.ca.live_crls(now=now)
    for which, profile in (("root", ROOT_CA), ("issuing", ISSUING_CA)):
        seen: set[str] = set()
        for ca in td.ca.live_ca_certificates(which, now=now):
            name = crl_file_name(profile, ca.key_version)
            if name in seen:
                continue
            seen.add(name)
            if crls[name].next_update < until:
                crls[name] = td.ca.publish_crl(which, now=now, issuer=ca)
    return crls


def _status(record: CertificateRecord) -> CertificateStatus:
    if record.revoked:
        return CertificateStatus("revoked", revoked_at=record.revoked_at, reason=record.revocation_reason,
                                 invalidity_date=record.invalidity_date)
    return CertificateStatus("good")


def _usable_responders(td: TrustDomain, ca_cert: x509.Certificate, now: datetime, until: datetime
                       ) -> list[CertificateRecord]:
    """Unrevoked responder certificates ``ca_cert``'s key delegated, valid from now to
    ``until``, whose key version was never condemned and is in this key store; newest last."""
    records = td.ca.certificates(profile=OCSP_RESPONDER.name)
    condemned = {(r.key_label, r.key_version) for r in records if r.revoked}
    usable = []
    for record in records:
        if (record.revoked or record.key_label is None or (record.key_label, record.key_version) in condemned
                or not record.not_before <= now or record.not_after < until):
            continue
        if not is_delegated_responder(certificate_of(record), ca_cert):
            continue
        try:
            td.keys.signer(record.key_label, record.key_version)
        except HsmError:
            continue  # a disabled or missing key version signs nothing
        usable.append(record)
    return usable


def ensure_responder(td: TrustDomain, now: datetime, until: datetime) -> CertificateRecord:
    """The current issuing CA's delegated OCSP responder, certified through the CA (audited)
    when none is usable for :data:`RENEW_BEFORE` more (and at least until ``until``)."""
    issuing = td.ca.issuing(now)
    if issuing is None:
        from .trust_list import TrustListError

        raise TrustListError("this home has no issuing CA to sign OCSP responses: run `zhengyin init`")
    usable = _usable_responders(td, certificate_of(issuing), now, max(until, now + RENEW_BEFORE))
    if usable:
        return usable[-1]
    from .service_signers import certify_service_key

    return certify_service_key(td, label=RESPONDER_KEY_LABEL, profile=OCSP_RESPONDER.name,
                               common_name="证印OCSP响应器 (OCSP responder)", organisation_of=issuing,
                               records=td.ca.certificates(profile=OCSP_RESPONDER.name), now=now)


def _issuing_keys(td: TrustDomain, now: datetime) -> list[tuple[CertificateRecord, set[int]]]:
    """Each live issuing-CA key once (its newest certificate), with the ids of every certificate
    of that key (a root rotation re-certifies the key: what it signed hangs off either)."""
    every = td.ca.certificates(profile=ISSUING_CA.name)
    keys: dict[tuple[str | None, int | None], tuple[CertificateRecord, set[int]]] = {}
    for ca in td.ca.live_ca_certificates("issuing", now=now):
        key = (ca.key_label, ca.key_version)
        if key not in keys:
            keys[key] = (ca, {r.id for r in every if (r.key_label, r.key_version) == key})
    return list(keys.values())


def produce_responses(td: TrustDomain, now: datetime, crls: dict[str, CrlRecord]) -> list[tuple[str, bytes]]:
    """(file name under ``<home>/public``, DER OCSPResponse) for every certificate a live
    issuing-CA key signed and that has not expired (responders excepted), for each hash of
    :data:`CERT_ID_HASHES`; ``crls`` are the CRLs published with them (:func:`lasting_crls`)."""
    current = td.ca.issuing(now)
    skipped = {OCSP_RESPONDER.name, ISSUING_CA.name, ROOT_CA.name}
    certificates = [r for r in td.ca.certificates() if r.profile not in skipped and r.not_after > now]
    files: list[tuple[str, bytes]] = []
    for ca, key_ids in _issuing_keys(td, now):
        ca_cert = certificate_of(ca)
        next_update = crls[crl_file_name(ISSUING_CA, ca.key_version)].next_update
        if current is not None and (ca.key_label, ca.key_version) == (current.key_label, current.key_version):
            responder = ensure_responder(td, now, next_update)
        else:
            delegated = _usable_responders(td, ca_cert, now, next_update)
            responder = delegated[-1] if delegated else ca
        responder_cert = certificate_of(responder)
        signer = td.keys.signer(responder.key_label, responder.key_version)
        key_hashes = {alg: issuer_hashes(ca_cert, alg)[1] for alg in CERT_ID_HASHES}
        for record in certificates:
            if record.issuer_id not in key_ids:
                continue
            cert, status = certificate_of(record), _status(record)
            for alg in CERT_ID_HASHES:
                files.append((response_file(alg, key_hashes[alg], record.serial_number), pre_produce(
                    cert, issuer=ca_cert, responder=responder_cert, responder_signer=signer, status=status,
                    this_update=now, next_update=next_update, hash_algorithm=alg)))
    return files


def prune_responses(directory: Path, kept: Iterable[str]) -> None:
    """Remove stored responses (and emptied issuer folders) that the last publish did not write:
    an expired certificate, or a CA key no longer live, then gets ``unauthorized``."""
    root = directory / OCSP_DIR
    if not root.is_dir():
        return
    keep = {directory / name for name in kept}
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file() and path not in keep and not path.name.startswith("."):
            path.unlink(missing_ok=True)
        elif path.is_dir():
            try:
                os.rmdir(path)  # only when empty
            except OSError:
                pass
