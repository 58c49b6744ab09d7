"""Build, encode and load X.509 v3 certificates with SM2 keys and SM2-with-SM3 signatures.

:func:`build_certificate` is a pure function: the profile decides the extensions, the caller
decides who, which key, which serial and when. It checks what would otherwise yield a
certificate no verifier accepts — a signer that does not hold the issuer's key, an issuer that
is not a CA, a validity outside the issuer's — and raises :class:`~ca.errors.InvalidRequest`.

Extensions (GM/T 0015-2012 / RFC 5280 §4.2): basicConstraints (critical), keyUsage
(critical), extendedKeyUsage (per profile), subjectKeyIdentifier, authorityKeyIdentifier,
CRL distribution point, authorityInfoAccess (OCSP), certificatePolicies, id-pkix-ocsp-nocheck
for OCSP responders, and the GM/T 0015 OrganizationCode extension when the subject carries a
unified social credit code (see :mod:`ca.names`).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from asn1crypto import core, x509
from asn1crypto import pem as pem_armor

from hsm.errors import HsmError
from hsm.keystore import Signer
from hsm.sm2 import SM2PublicKey

from .errors import CaError, InvalidRequest
from .names import credit_code_of
from .profiles import Profile
from .signatures import certificate_public_key, sign_structure, sm2_with_sm3, verify_certificate_signature

#: GM/T 0015-2012 OrganizationCode (企业组织机构代码) subject-identifier extension.
GMT0015_ORGANIZATION_CODE = "1.2.156.10260.4.1.4"
MAX_CERTIFICATE_BYTES = 64 * 1024
SERIAL_BITS = 159  # RFC 5280 §4.1.2.2: at most 20 octets, positive


def new_serial() -> int:
    """A random positive serial of at most 159 bits (fits RFC 5280's 20 octets), from secrets."""
    while True:
        serial = secrets.randbits(SERIAL_BITS)
        if serial.bit_length() > 64:  # at least 64 bits of entropy show in the number
            return serial


def asn1_time(when: datetime) -> x509.Time:
    """UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5); whole seconds, UTC."""
    when = utc(when, "time")
    if 1950 <= when.year < 2050:
        return x509.Time(name="utc_time", value=when)
    return x509.Time(name="general_time", value=when)


def utc(when: datetime, what: str) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise InvalidRequest(f"{what} must be a timezone-aware datetime (e.g. datetime.now(UTC))")
    return when.astimezone(UTC).replace(microsecond=0)


def _extension(name: str, value: object, critical: bool = False) -> x509.Extension:
    return x509.Extension({"extn_id": name, "critical": critical, "extn_value": value})


def is_ca_certificate(cert: x509.Certificate) -> bool:
    bc = cert.basic_constraints_value
    ku = cert.key_usage_value
    return bool(bc is not None and bc["ca"].native and ku is not None and "key_cert_sign" in ku.native)


def issuer_key_identifier(issuer: x509.Certificate, issuer_key: SM2PublicKey) -> bytes:
    """The issuer's own subjectKeyIdentifier when it has one, so AKI matches it byte for byte."""
    ski = issuer.key_identifier
    return ski if ski else issuer_key.key_identifier()


def build_certificate(*, profile: Profile, subject: x509.Name, subject_key: SM2PublicKey, signer: Signer,
                      issuer: x509.Certificate | None, serial: int, not_before: datetime,
                      not_after: datetime | None = None, crl_url: str | None = None,
                      ocsp_url: str | None = None, policy_oid: str | None = None) -> x509.Certificate:
    """Build and sign a certificate; return it parsed from its own DER.

    ``issuer=None`` makes a self-signed certificate (then ``signer`` must hold ``subject_key``);
    otherwise ``signer`` must hold the issuer certificate's key. ``not_after`` defaults to
    ``not_before + profile.validity`` and is clipped to the issuer's notAfter, because a
    certificate must not outlive the one that vouches for it.
    """
    if not isinstance(serial, int) or serial <= 0 or serial.bit_length() > SERIAL_BITS:
        raise InvalidRequest("serial must be a positive integer of at most 159 bits; use new_serial()")
    if not isinstance(subject_key, SM2PublicKey):
        raise InvalidRequest("subject_key must be an SM2PublicKey")
    start = utc(not_before, "not_before")
    end = utc(not_after, "not_after") if not_after is not None else start + profile.validity
    signer_key = signer.public_key()

    if issuer is None:
        if not profile.is_ca:
            raise InvalidRequest(f"profile {profile.name!r} is not a CA profile; "
                                 "only a CA may be self-signed")
        if signer_key != subject_key:
            raise InvalidRequest("a self-signed certificate must be signed with the subject's own key; "
                                 "pass the signer of the key being certified")
        issuer_name, issuer_key = subject, subject_key
        authority_key_id = subject_key.key_identifier()
    else:
        try:
            issuer_key = certificate_public_key(issuer)
        except HsmError as exc:
            raise InvalidRequest(f"issuer certificate has no usable SM2 key: {exc}") from exc
        if signer_key != issuer_key:
            raise InvalidRequest("the signer's key is not the issuer certificate's key; "
                                 "use the key-store key the issuing CA was certified for")
        if not is_ca_certificate(issuer):
            raise InvalidRequest("the issuer certificate is not a CA (basicConstraints cA and "
                                 "keyCertSign are required); issue from the issuing CA")
        path_len = issuer.basic_constraints_value["path_len_constraint"].native
        if profile.is_ca and path_len is not None and path_len < 1:
            raise InvalidRequest("the issuer's pathLenConstraint forbids issuing another CA under it")
        issuer_name = issuer.subject
        authority_key_id = issuer_key_identifier(issuer, issuer_key)
        issuer_end = issuer["tbs_certificate"]["validity"]["not_after"].native
        issuer_start = issuer["tbs_certificate"]["validity"]["not_before"].native
        if start >= issuer_end:
            raise InvalidRequest(f"the issuer certificate expires {issuer_end:%Y-%m-%d %H:%M:%S}Z, before "
                                 "the requested start; renew the issuing CA first")
        if start < issuer_start:
            raise InvalidRequest(f"the requested start precedes the issuer's validity "
                                 f"({issuer_start:%Y-%m-%d %H:%M:%S}Z); start later")
        end = min(end, issuer_end)
    if end <= start:
        raise InvalidRequest("not_after must be later than not_before")

    constraints = {"ca": True, "path_len_constraint": profile.path_length} if profile.is_ca else {"ca": False}
    extensions = [
        _extension("basic_constraints", constraints, critical=True),
        _extension("key_usage", set(profile.key_usage), critical=True),
    ]
    if profile.extended_key_usage:
        extensions.append(_extension("extended_key_usage", list(profile.extended_key_usage),
                                     critical=profile.eku_critical))
    extensions.append(_extension("key_identifier", subject_key.key_identifier()))
    extensions.append(_extension("authority_key_identifier", {"key_identifier": authority_key_id}))
    if crl_url:
        uri = x509.GeneralName(name="uniform_resource_identifier", value=crl_url)
        extensions.append(_extension("crl_distribution_points", [
            {"distribution_point": x509.DistributionPointName(name="full_name", value=[uri])}]))
    if ocsp_url:
        extensions.append(_extension("authority_information_access", [
            {"access_method": "ocsp",
             "access_location": x509.GeneralName(name="uniform_resource_identifier", value=ocsp_url)}
        ]))
    if policy_oid:
        extensions.append(_extension("certificate_policies", [{"policy_identifier": policy_oid}]))
    if profile.ocsp_no_check:
        extensions.append(_extension("ocsp_no_check", core.Null()))
    code = credit_code_of(subject)
    if code is not None:
        extensions.append(x509.Extension({
            "extn_id": GMT0015_ORGANIZATION_CODE, "critical": False,
            "extn_value": core.ParsableOctetString(core.PrintableString(code).dump())}))

    tbs = x509.TbsCertificate({
        "version": "v3",
        "serial_number": serial,
        "signature": sm2_with_sm3(),
        "issuer": issuer_name,
        "validity": {"not_before": asn1_time(start), "not_after": asn1_time(end)},
        "subject": subject,
        "subject_public_key_info": subject_key.to_spki(),
        "extensions": extensions,
    })
    signed_tbs, algorithm, signature = sign_structure(signer, tbs)
    der = x509.Certificate({
        "tbs_certificate": signed_tbs,
        "signature_algorithm": algorithm,
        "signature_value": signature,
    }).dump()
    cert = x509.Certificate.load(der)
    # A signer that answers with a wrong signature (faulty HSM, wrong key version) must not
    # produce a certificate nobody can verify.
    if not verify_certificate_signature(cert, issuer_key):
        raise CaError("the signer produced a signature that does not verify with the issuer's key; "
                      "check the key store and the key version in use")
    return cert


def pem(cert: x509.Certificate) -> bytes:
    """PEM ``CERTIFICATE`` block."""
    return pem_armor.armor("CERTIFICATE", cert.dump())


def load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER; InvalidRequest on garbage, truncation or trailing data."""
    der = unarmor(data, "CERTIFICATE", "certificate")
    try:
        cert = x509.Certificate.load(der, strict=True)
        cert.native  # noqa: B018  (parse every field now, so malformed input fails here)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRequest(f"not a readable X.509 certificate ({exc}); supply a PEM or DER certificate") \
            from exc
    return cert


def unarmor(data: bytes, kind: str, what: str) -> bytes:
    """DER from PEM (one block of type ``kind``) or DER as given; shared by the loaders."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise InvalidRequest(f"no {what} data given")
    if len(data) > MAX_CERTIFICATE_BYTES * 16:
        raise InvalidRequest(f"{what} data is too large")
    data = bytes(data)
    if pem_armor.detect(data):
        try:
            found, _, der = pem_armor.unarmor(data)
        except ValueError as exc:
            raise InvalidRequest(f"malformed PEM {what}: {exc}") from exc
        if found != kind:
            raise InvalidRequest(f"expected a PEM {kind} block, found {found!r}")
        return der
    return data
