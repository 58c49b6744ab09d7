"""Certificate profiles: what each kind of certificate in the hierarchy may do.

Root CA → issuing CA → end entities (seal maker 制章人, department signer 签章人, time-stamping
unit, OCSP responder). The profile, not the caller, fixes the extensions, so a seal signer can
never be issued a certificate that signs certificates, and a CA never gets an end-entity EKU.
Key usages follow GM/T 0015-2012 and RFC 5280 §4.2.1.3: keyCertSign and cRLSign on CAs,
digitalSignature + nonRepudiation (contentCommitment) for signatures that bind a department.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from .errors import InvalidRequest

#: asn1crypto KeyUsage bit names.
KEY_USAGE_NAMES = frozenset({
    "digital_signature", "non_repudiation", "key_encipherment", "data_encipherment", "key_agreement",
    "key_cert_sign", "crl_sign", "encipher_only", "decipher_only",
})


@dataclass(frozen=True)
class Profile:
    """One kind of certificate.

    ``name`` is the short name stored in the registry and typed on the command line.
    ``path_length`` is basicConstraints pathLenConstraint (None: unlimited; only for CAs).
    ``extended_key_usage`` holds asn1crypto KeyPurposeId names; ``eku_critical`` marks it
    critical (RFC 3161 §2.3 requires that for time-stamping). ``ocsp_no_check`` adds
    id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1) so clients do not ask the responder about itself.
    """

    name: str
    title: str
    is_ca: bool
    key_usage: frozenset[str]
    validity: timedelta
    path_length: int | None = None
    extended_key_usage: tuple[str, ...] = ()
    eku_critical: bool = False
    ocsp_no_check: bool = False

    def __post_init__(self) -> None:
        unknown = self.key_usage - KEY_USAGE_NAMES
        if unknown:
            raise ValueError(f"profile {self.name}: unknown key usages {sorted(unknown)}")
        if self.is_ca and not {"key_cert_sign", "crl_sign"} <= self.key_usage:
            raise ValueError(f"profile {self.name}: a CA needs keyCertSign and cRLSign")
        signs_certs = bool({"key_cert_sign", "crl_sign"} & self.key_usage)
        if not self.is_ca and (signs_certs or self.path_length is not None):
            raise ValueError(f"profile {self.name}: an end entity may not sign certificates or CRLs")


_YEAR = timedelta(days=365)

ROOT_CA = Profile(
    name="root-ca", title="根CA", is_ca=True, path_length=1,
    key_usage=frozenset({"key_cert_sign", "crl_sign"}), validity=20 * _YEAR + timedelta(days=5))
ISSUING_CA = Profile(
    # digitalSignature as well, so the issuing CA may sign OCSP responses itself (RFC 6960 §4.2.2.2).
    name="issuing-ca", title="签发CA", is_ca=True, path_length=0,
    key_usage=frozenset({"key_cert_sign", "crl_sign", "digital_signature"}),
    validity=10 * _YEAR + timedelta(days=3))
SEAL_MAKER = Profile(
    name="seal-maker", title="制章人", is_ca=False,
    key_usage=frozenset({"digital_signature", "non_repudiation"}), validity=5 * _YEAR + timedelta(days=1))
DEPARTMENT_SIGNER = Profile(
    name="department-signer", title="签章人", is_ca=False,
    key_usage=frozenset({"digital_signature", "non_repudiation"}), validity=3 * _YEAR + timedelta(days=1))
TIME_STAMPING = Profile(
    name="time-stamping", title="时间戳服务", is_ca=False,
    key_usage=frozenset({"digital_signature", "non_repudiation"}), validity=5 * _YEAR + timedelta(days=1),
    extended_key_usage=("time_stamping",), eku_critical=True)
OCSP_RESPONDER = Profile(
    name="ocsp-responder", title="OCSP响应器", is_ca=False,
    key_usage=frozenset({"digital_signature"}), validity=_YEAR,
    extended_key_usage=("ocsp_signing",), ocsp_no_check=True)
#: ETSI TS 119 612 §5.7.1 id-tsl-kp-tslSigning: the key signs trust lists and nothing else.
TSL_SIGNING_OID = "0.4.0.2231.3.0"
TRUST_LIST_SIGNER = Profile(
    # Its own key and EKU, so a verifier can tell the trust-list signer from every other
    # certificate under the root (any of which could sign a CMS).
    name="trust-list-signer", title="信任列表签名", is_ca=False,
    key_usage=frozenset({"digital_signature"}), validity=3 * _YEAR + timedelta(days=1),
    extended_key_usage=(TSL_SIGNING_OID,))

DATA_SERVICE_SIGNER = Profile(
    # The one key of the data-reuse service (verify_api.reuse_app): it signs the answers
    # departments keep as evidence, so nonRepudiation; the trust list names its role.
    name="data-service-signer", title="数据共享服务签名", is_ca=False,
    key_usage=frozenset({"digital_signature", "non_repudiation"}), validity=2 * _YEAR + timedelta(days=1))

PROFILES: dict[str, Profile] = {p.name: p for p in (
    ROOT_CA, ISSUING_CA, SEAL_MAKER, DEPARTMENT_SIGNER, TIME_STAMPING, OCSP_RESPONDER,
    TRUST_LIST_SIGNER, DATA_SERVICE_SIGNER)}


def profile_named(name: str) -> Profile:
    """The profile called ``name``; InvalidRequest listing the valid names otherwise."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise InvalidRequest(
            f"unknown certificate profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
