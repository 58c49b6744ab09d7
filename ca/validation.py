"""Certificate path building and validation (RFC 5280 §6, for SM2 certificates).

One call, :func:`validate_path`, answers "may this certificate be relied on at time ``at``
for this purpose?" and says why not. Like pyHanko's validation status, the answer is a single
:class:`PathResult` that carries every check that was done, in order, the path it was done on
and the first check that failed; a verdict of ``VALID`` is only given when every check passed.
The same code validates chains this CA issued and chains it did not (tax-bureau and ofdrw
certificates), so nothing here assumes our own profiles beyond what RFC 5280 requires.

Choices that a reader of a result must know (each is also stated in the check's detail):

* Trust anchors are certificates we were told to trust; the path ends at one. Its own
  signature is not checked (it is trusted by configuration, RFC 5280 §6.1.1(d)), but its
  validity period, basicConstraints, keyUsage, pathLenConstraint and critical extensions are,
  as OpenSSL does: an anchor whose keyUsage lacks keyCertSign cannot issue certificates
  (OpenSSL error 32; the ofdrw ROOT is such a certificate), and we report ``KEY_USAGE`` on it.
  A version 1 anchor, which cannot carry basicConstraints, is accepted as a CA (as OpenSSL).
* Checks are ordered so that the first failure names the most fundamental problem:
  algorithm and signature of every link, then the CA constraints, critical extensions,
  validity of every certificate (anchor included), the leaf's purpose, and revocation.
* keyUsage absent means "any usage" (RFC 5280 §4.2.1.3). An extended key usage that a
  purpose names (time stamping, OCSP signing) must be present: RFC 3161 §2.3 and RFC 6960
  §4.2.2.2 require the delegation to be explicit.
* Certificate policies are accepted as a known extension with RFC 5280's default inputs
  (any policy acceptable, no explicit policy required); any other unrecognised critical
  extension fails the path (RFC 5280 §4.2).
* Revocation uses CRLs only (no URL found in a certificate is ever fetched). A CRL counts for
  a certificate if its issuer name (and, when both carry one, its key identifier) is the
  certificate issuer's, its signature verifies with the issuer's key, the issuer may sign
  CRLs, it is a complete, direct CRL whose scope covers the certificate, and it carries no
  critical extension we do not understand.
  A "not revoked" answer needs such a CRL that is current at ``at``
  (thisUpdate <= at <= nextUpdate). A "revoked" answer may come from any authentic CRL,
  even a stale or later one: the issuer's signed statement that the certificate was revoked
  on a date does not expire.
* ``revocation="require"`` asks this of every certificate below the anchor (intermediates
  too, so pass the root's CRL as well as the issuing CA's); the anchor's own status is a
  matter of configuration and is not checked. ``"if_available"`` passes, and says so, when no
  usable CRL is at hand; ``"off"`` does no revocation check at all.
* A revocation is effective from its revocation date, or from the invalidity date when that
  is earlier. A certificate revoked after ``at`` was still good at ``at`` (the check passes
  and says so), except for the compromise reasons (keyCompromise, cACompromise,
  aACompromise): those are effective whatever ``at`` is, because ``at`` usually comes from a
  claim made with the very key that leaked (a signing time inside the signed data), which
  whoever holds the key can backdate; neither the revocation date nor the invalidity date is
  a bound on when the key was first misused. Only when ``at`` is *proven* (``at_proven``: a
  proof of existence the key holder cannot forge, such as this service's own registry record
  of the document, or a time-stamp) does a compromise revocation count from its invalidity
  date (or revocation date) like any other: a document proven to exist before the key was
  compromised keeps its signature.
* Malformed input never raises and never passes: an unreadable leaf gives ``MALFORMED``;
  an unreadable candidate issuer or CRL is left out and the result says how many were.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from asn1crypto import crl as asn1_crl
from asn1crypto import pem, x509

import hsm.oids  # noqa: F401  (registers the SM OIDs with asn1crypto)
from ca.errors import CaError
from ca.signatures import bit_string_bytes, certificate_public_key, tbs_bytes, verify_tbs
from ca.verdict import Check
from hsm.errors import ASN1_PARSE_ERRORS, HsmError, InvalidSignature, UnsupportedAlgorithm
from hsm.sm2 import SM2PublicKey

# ---- result codes -----------------------------------------------------------------------------
VALID = "VALID"
NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
SIGNATURE_INVALID = "SIGNATURE_INVALID"
EXPIRED = "EXPIRED"
NOT_YET_VALID = "NOT_YET_VALID"
NOT_A_CA = "NOT_A_CA"
PATH_LENGTH_EXCEEDED = "PATH_LENGTH_EXCEEDED"
KEY_USAGE = "KEY_USAGE"
EXTENDED_KEY_USAGE = "EXTENDED_KEY_USAGE"
REVOKED = "REVOKED"
REVOCATION_UNKNOWN = "REVOCATION_UNKNOWN"
UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
MALFORMED = "MALFORMED"

CODES = frozenset({
    VALID, NO_CERTIFICATE_CHAIN_FOUND, SIGNATURE_INVALID, EXPIRED, NOT_YET_VALID, NOT_A_CA,
    PATH_LENGTH_EXCEEDED, KEY_USAGE, EXTENDED_KEY_USAGE, REVOKED, REVOCATION_UNKNOWN,
    UNSUPPORTED_ALGORITHM, MALFORMED,
})

RevocationMode = Literal["require", "if_available", "off"]

MAX_DEPTH = 8
"""Most issuers above the leaf a path may have; real SM2 hierarchies have two or three."""
MAX_PATHS = 32
"""Most complete candidate paths evaluated (each costs signature checks)."""
MAX_STEPS = 256
"""Most issuer candidates expanded while searching, so a crafted bundle stays cheap."""

# What asn1crypto's parser may raise on bytes that are not what they claim to be.
_PARSE_ERRORS = ASN1_PARSE_ERRORS

_KNOWN_CERT_EXTENSIONS = frozenset({
    "basic_constraints", "key_usage", "extended_key_usage", "key_identifier",
    "authority_key_identifier", "subject_alt_name", "issuer_alt_name", "certificate_policies",
    "crl_distribution_points", "authority_information_access", "subject_information_access",
    "freshest_crl",
})
_KNOWN_CRL_EXTENSIONS = frozenset({
    "authority_key_identifier", "crl_number", "issuing_distribution_point",
    "authority_information_access", "issuer_alt_name", "freshest_crl",
})
_KNOWN_CRL_ENTRY_EXTENSIONS = frozenset({"crl_reason", "invalidity_date"})
_COMPROMISE_REASONS = frozenset({"key_compromise", "ca_compromise", "aa_compromise"})


# ---- purposes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Purpose:
    """What the leaf is being relied on for.

    ``key_usage_any`` holds asn1crypto keyUsage bit names; one of them suffices (an empty set
    asks nothing). ``extended_key_usage`` is an asn1crypto EKU name or dotted OID that must be
    present in the leaf's extendedKeyUsage. ``excluded_usages``: a leaf whose extendedKeyUsage
    is made only of these is dedicated to another job (a time-stamping or OCSP key must not
    sign documents or make seals, whatever its keyUsage bits say).
    """

    name: str
    key_usage_any: frozenset[str] = frozenset()
    extended_key_usage: str | None = None
    excluded_usages: frozenset[str] = frozenset()


_SIGNING_BITS = frozenset({"digital_signature", "non_repudiation"})
_SERVICE_USAGES = frozenset({"time_stamping", "ocsp_signing"})
SEAL_SIGNING = Purpose("seal_signing", _SIGNING_BITS, excluded_usages=_SERVICE_USAGES)
SEAL_MAKING = Purpose("seal_making", _SIGNING_BITS, excluded_usages=_SERVICE_USAGES)
TIME_STAMPING = Purpose("time_stamping", extended_key_usage="time_stamping")
OCSP_SIGNING = Purpose("ocsp_signing", extended_key_usage="ocsp_signing")
ANY = Purpose("any")


# ---- results ----------------------------------------------------------------------------------
@dataclass
class PathResult:
    """The verdict on one leaf: ``ok`` only when ``code`` is ``VALID`` and every check passed."""

    ok: bool
    code: str
    checks: list[Check] = field(default_factory=list)
    path: list[x509.Certificate] = field(default_factory=list)
    failed: Check | None = None

    @classmethod
    def from_checks(cls, checks: list[Check], path: list[x509.Certificate]) -> PathResult:
        failed = next((c for c in checks if not c.ok), None)
        if failed is None:
            return cls(ok=True, code=VALID, checks=checks, path=path)
        return cls(ok=False, code=failed.code or MALFORMED, checks=checks, path=path, failed=failed)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view; names are readable strings with CJK intact (use ensure_ascii=False)."""
        return {
            "ok": self.ok,
            "code": self.code,
            "failed": self.failed.as_dict() if self.failed else None,
            "checks": [c.as_dict() for c in self.checks],
            "path": [_describe(c) for c in self.path],
        }


# ---- names ------------------------------------------------------------------------------------
_SHORT_NAMES = {
    "common_name": "CN", "organization_name": "O", "organizational_unit_name": "OU",
    "country_name": "C", "state_or_province_name": "ST", "locality_name": "L",
    "street_address": "street", "domain_component": "DC", "serial_number": "serialNumber",
    "email_address": "emailAddress", "given_name": "GN", "surname": "SN", "title": "title",
    "organization_identifier": "organizationIdentifier",
}


def _escape(value: str) -> str:
    out = "".join("\\" + ch if ch in ',+"\\<>;=' else ch for ch in value)
    if out[:1] in ("#", " "):
        out = "\\" + out
    return out


def name_text(name: x509.Name) -> str:
    """RFC 4514 style text (most specific RDN first), keeping Chinese characters as they are."""
    try:
        rdns = []
        for rdn in reversed(list(name.chosen)):
            parts = []
            for atv in rdn:
                kind = atv["type"].native
                label = _SHORT_NAMES.get(kind, atv["type"].dotted if kind == atv["type"].dotted else kind)
                value = atv["value"].native
                text = value if isinstance(value, str) else "#" + atv["value"].dump().hex()
                parts.append(f"{label}={_escape(text)}")
            rdns.append("+".join(parts))
        return ",".join(rdns)
    except _PARSE_ERRORS:
        return "<unreadable name>"


def _describe(cert: x509.Certificate) -> dict[str, Any]:
    try:
        tbs = cert["tbs_certificate"]
        return {
            "subject": name_text(tbs["subject"]),
            "issuer": name_text(tbs["issuer"]),
            "serial": format(tbs["serial_number"].native, "X"),
            "not_before": tbs["validity"]["not_before"].native.isoformat(),
            "not_after": tbs["validity"]["not_after"].native.isoformat(),
            "sha256": hashlib.sha256(cert.dump()).hexdigest(),
        }
    except _PARSE_ERRORS:
        return {"subject": "<unreadable certificate>"}


# ---- loading ----------------------------------------------------------------------------------
class CertificateLoadError(CaError, ValueError):
    """Bytes that are not a certificate or a PEM bundle of certificates."""


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, or the one certificate of a DER file.

    PEM blocks other than CERTIFICATE (keys, CRLs) are skipped; each certificate must parse
    completely and DER input must have no trailing bytes.
    """
    if pem.detect(data):
        try:
            blocks = [der for kind, _, der in pem.unarmor(data, multiple=True) if kind == "CERTIFICATE"]
        except _PARSE_ERRORS as exc:
            raise CertificateLoadError(f"unreadable PEM: {exc}") from exc
        if not blocks:
            raise CertificateLoadError("no CERTIFICATE block in PEM data")
    else:
        blocks = [data]
    certs = []
    for der in blocks:
        try:
            cert = x509.Certificate.load(der, strict=True)
            _Node.of(cert)
        except (*_PARSE_ERRORS, _Malformed) as exc:
            raise CertificateLoadError(f"not a readable X.509 certificate: {exc}") from exc
        certs.append(cert)
    return certs


# ---- one parsed certificate -------------------------------------------------------------------
class _Malformed(Exception):
    """A certificate or CRL field asn1crypto could not read (the detail says which)."""


def _extensions(exts: Any, known: frozenset[str], what: str) -> tuple[dict[str, Any], list[str]]:
    """Known extension values (parsed) and the unknown critical ones; duplicates are malformed."""
    values: dict[str, Any] = {}
    unknown_critical: list[str] = []
    seen: set[str] = set()
    for ext in exts or ():
        oid = ext["extn_id"].dotted
        if oid in seen:
            raise _Malformed(f"{what} has extension {oid} twice")
        seen.add(oid)
        name = ext["extn_id"].native
        if name in known:
            values[name] = ext["extn_value"].parsed
            values[name].native  # noqa: B018  (forces a full parse here)
        elif ext["critical"].native:
            unknown_critical.append(name)
    return values, unknown_critical


@dataclass(frozen=True, eq=False)
class _Node:
    """The fields of a certificate that validation reads, read once and checked to parse."""

    cert: x509.Certificate
    fingerprint: bytes
    subject: x509.Name
    issuer: x509.Name
    subject_text: str
    spki: bytes
    serial: int
    version: str
    not_before: datetime
    not_after: datetime
    tbs: bytes
    signature: bytes
    exts: dict[str, Any]
    unknown_critical: tuple[str, ...]

    @classmethod
    def of(cls, cert: x509.Certificate) -> _Node:
        try:
            return cls._read(cert)
        except (*_PARSE_ERRORS, CaError) as exc:
            raise _Malformed(f"unreadable certificate: {exc}") from exc

    @classmethod
    def _read(cls, cert: x509.Certificate) -> _Node:
        if not isinstance(cert, x509.Certificate):
            raise _Malformed(f"expected an X.509 certificate, got {type(cert).__name__}")
        tbs = cert["tbs_certificate"]
        subject, issuer = tbs["subject"], tbs["issuer"]
        subject.hashable  # noqa: B018  (forces the names to parse)
        issuer.hashable  # noqa: B018
        not_before = tbs["validity"]["not_before"].native
        not_after = tbs["validity"]["not_after"].native
        if not isinstance(not_before, datetime) or not isinstance(not_after, datetime):
            raise _Malformed("validity dates outside the datetime range")
        if cert["signature_algorithm"].dump() != tbs["signature"].dump():
            raise _Malformed("signatureAlgorithm differs from tbsCertificate.signature (RFC 5280 §4.1.1.2)")
        exts, unknown = _extensions(tbs["extensions"], _KNOWN_CERT_EXTENSIONS, "certificate")
        der = cert.dump()
        return cls(
            cert=cert, fingerprint=hashlib.sha256(der).digest(), subject=subject, issuer=issuer,
            subject_text=name_text(subject), spki=tbs["subject_public_key_info"].dump(),
            serial=tbs["serial_number"].native, version=tbs["version"].native,
            not_before=not_before, not_after=not_after, tbs=tbs_bytes(tbs),
            signature=bit_string_bytes(cert["signature_value"]), exts=exts, unknown_critical=tuple(unknown),
        )

    # identity: a name and a key; a path never needs the same one twice
    @property
    def entity(self) -> tuple[Any, bytes]:
        return self.subject.hashable, self.spki

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    @property
    def ski(self) -> bytes | None:
        value = self.exts.get("key_identifier")
        return value.native if value is not None else None

    @property
    def aki(self) -> bytes | None:
        value = self.exts.get("authority_key_identifier")
        return value["key_identifier"].native if value is not None else None

    @property
    def basic_constraints(self) -> tuple[bool, int | None] | None:
        value = self.exts.get("basic_constraints")
        if value is None:
            return None
        return bool(value["ca"].native), value["path_len_constraint"].native

    @property
    def key_usage(self) -> frozenset[str] | None:
        value = self.exts.get("key_usage")
        return frozenset(value.native) if value is not None else None

    @property
    def extended_key_usage(self) -> frozenset[str] | None:
        value = self.exts.get("extended_key_usage")
        return frozenset(value.native) if value is not None else None

    @property
    def crl_distribution_names(self) -> set[bytes]:
        value = self.exts.get("crl_distribution_points")
        names: set[bytes] = set()
        for point in value or ():
            dp = point["distribution_point"]
            if dp.name == "full_name":
                names.update(general.dump() for general in dp.chosen)
        return names


def _node_or_none(cert: Any) -> _Node | None:
    try:
        return _Node.of(_as_certificate(cert))
    except _Malformed:
        return None


def _as_certificate(cert: Any) -> x509.Certificate:
    if isinstance(cert, bytes | bytearray):
        try:
            loaded = load_certificates(bytes(cert))
        except CertificateLoadError as exc:
            raise _Malformed(str(exc)) from exc
        if len(loaded) != 1:
            raise _Malformed("expected one certificate, got a bundle")
        return loaded[0]
    return cert


# ---- path building ----------------------------------------------------------------------------
class _Pool:
    """Anchors and intermediates indexed by subject name, for issuer lookup."""

    def __init__(self, anchors: list[_Node], intermediates: list[_Node]):
        self.anchor_entities = {a.entity for a in anchors}
        self.by_subject: dict[Any, list[tuple[bool, _Node]]] = {}
        for node in anchors:
            self.by_subject.setdefault(node.subject.hashable, []).append((True, node))
        for node in intermediates:
            if node.entity not in self.anchor_entities:  # the trusted copy wins
                self.by_subject.setdefault(node.subject.hashable, []).append((False, node))

    def issuers(self, child: _Node) -> list[tuple[bool, _Node]]:
        """Candidate issuers of ``child``: name match, key identifier when both have one.

        Key-identifier matches and anchors come first, so the likely path is tried first.
        """
        aki = child.aki
        found = []
        for is_anchor, cand in self.by_subject.get(child.issuer.hashable, ()):
            ski = cand.ski
            if aki is not None and ski is not None and aki != ski:
                continue
            found.append((aki is None or ski is None, not is_anchor, is_anchor, cand))
        found.sort(key=lambda item: (item[0], item[1]))
        return [(is_anchor, cand) for _, _, is_anchor, cand in found]


def _paths(leaf: _Node, pool: _Pool,
           link_ok: Callable[[_Node, _Node], bool] | None = None) -> Iterator[list[_Node]]:
    """Paths from ``leaf`` up to an anchor, shortest first, never repeating a name+key.

    Breadth first, so a short path is not hidden behind a deep thicket of same-name CAs;
    ``link_ok`` (when given) prunes links whose signature does not verify. At most
    :data:`MAX_STEPS` issuer candidates are expanded, so a crafted bundle stays cheap.
    """
    if leaf.entity in pool.anchor_entities:
        yield [leaf]
        return
    budget = MAX_STEPS
    queue: deque[list[_Node]] = deque([[leaf]])
    while queue:
        path = queue.popleft()
        if len(path) > MAX_DEPTH:
            continue
        seen = {node.entity for node in path}
        for is_anchor, cand in pool.issuers(path[-1]):
            if cand.entity in seen:
                continue
            budget -= 1
            if budget < 0:
                return
            if link_ok is not None and not link_ok(path[-1], cand):
                continue
            if is_anchor:
                yield [*path, cand]
            else:
                queue.append([*path, cand])


# ---- checks -----------------------------------------------------------------------------------
class _Validator:
    def __init__(self, at: datetime, crls: list[asn1_crl.CertificateList], purpose: Purpose,
                 revocation: RevocationMode, skipped_crls: int, crl_time: datetime | None = None,
                 at_proven: bool = False):
        self.at = at
        self.at_proven = at_proven
        self.crl_time = crl_time or at
        self.crls = crls
        self.purpose = purpose
        self.revocation = revocation
        self.skipped_crls = skipped_crls
        self._keys: dict[bytes, SM2PublicKey | Exception] = {}
        self._links: dict[tuple[bytes, bytes], list[Check]] = {}

    # -- keys and signatures
    def key_of(self, node: _Node) -> SM2PublicKey:
        cached = self._keys.get(node.fingerprint)
        if cached is None:
            try:
                cached = certificate_public_key(node.cert)
            except (HsmError, CaError, *_PARSE_ERRORS) as exc:
                cached = exc
            self._keys[node.fingerprint] = cached
        if isinstance(cached, Exception):
            raise cached
        return cached

    def _verify(self, issuer: _Node, tbs: bytes, algorithm: Any, signature: bytes) -> tuple[str, str]:
        """("ok" | code, detail) for a signature by ``issuer``'s key."""
        try:
            key = self.key_of(issuer)
        except UnsupportedAlgorithm as exc:
            return UNSUPPORTED_ALGORITHM, f"issuer key is not SM2: {exc}"
        except (HsmError, CaError, *_PARSE_ERRORS) as exc:
            return MALFORMED, f"issuer public key unreadable: {exc}"
        try:
            ok = verify_tbs(key, tbs, algorithm, signature)
        except UnsupportedAlgorithm as exc:
            return UNSUPPORTED_ALGORITHM, f"signature algorithm not accepted: {exc}"
        except InvalidSignature as exc:
            return SIGNATURE_INVALID, str(exc)
        except (HsmError, CaError, *_PARSE_ERRORS) as exc:
            return MALFORMED, f"signature unreadable: {exc}"
        if not ok:
            return SIGNATURE_INVALID, "SM2 signature does not verify with the issuer's key"
        return "ok", ""

    def link_checks(self, child: _Node, issuer: _Node) -> list[Check]:
        """The algorithm and signature checks of one link, computed once per (child, issuer)."""
        key = (child.fingerprint, issuer.fingerprint)
        if key not in self._links:
            self._links[key] = self._link_checks(child, issuer)
        return list(self._links[key])

    def link_ok(self, child: _Node, issuer: _Node) -> bool:
        return all(check.ok for check in self.link_checks(child, issuer))

    def _link_checks(self, child: _Node, issuer: _Node) -> list[Check]:
        algo = child.cert["signature_algorithm"]
        algo_name = algo["algorithm"].native
        status, detail = self._verify(issuer, child.tbs, algo, child.signature)
        subject = child.subject_text
        if status in (UNSUPPORTED_ALGORITHM, MALFORMED):
            return [Check("algorithm", False, detail, subject, status)]
        checks = [Check("algorithm", True, f"{algo_name}, SM2 key of {issuer.subject_text}", subject)]
        if status == "ok":
            checks.append(Check("signature", True, f"signed by {issuer.subject_text}", subject))
        else:
            checks.append(Check("signature", False, f"{detail} ({issuer.subject_text})", subject, status))
        return checks

    # -- the path
    def evaluate(self, path: list[_Node]) -> list[Check]:
        leaf, anchor = path[0], path[-1]
        checks = [Check("chain", True, " <- ".join(n.subject_text for n in path) + " (anchor)",
                        leaf.subject_text)]
        for i in range(len(path) - 2, -1, -1):  # from the anchor down, as RFC 5280 §6.1
            checks += self.link_checks(path[i], path[i + 1])
        selfsig = "self-issued" if anchor.self_issued else f"issued by {name_text(anchor.issuer)}"
        checks.append(Check("trust_anchor", True, f"trusted by configuration ({selfsig}); "
                            "its own signature is not checked", anchor.subject_text))
        for i in range(len(path) - 1, 0, -1):
            checks += self.ca_checks(path, i)
        for node in reversed(path):
            checks.append(self.extension_check(node))
        for node in reversed(path):
            checks.append(self.validity_check(node))
        checks += self.purpose_checks(leaf)
        if self.revocation != "off":
            for i in range(len(path) - 2, -1, -1):
                checks.append(self.revocation_check(path[i], path[i + 1]))
        return checks

    def ca_checks(self, path: list[_Node], i: int) -> list[Check]:
        node = path[i]
        subject = node.subject_text
        role = "trust anchor" if i == len(path) - 1 else "intermediate CA"
        checks = []
        bc = node.basic_constraints
        if bc is None and node.version == "v1" and i == len(path) - 1:
            checks.append(Check("basic_constraints", True, "version 1 trust anchor, taken as a CA", subject))
        elif bc is None or not bc[0]:
            why = "no basicConstraints" if bc is None else "basicConstraints cA is FALSE"
            checks.append(Check("basic_constraints", False, f"{role} issues certificates but has {why}",
                                subject, NOT_A_CA))
        else:
            checks.append(Check("basic_constraints", True, "cA=TRUE", subject))
        ku = node.key_usage
        if ku is not None and "key_cert_sign" not in ku:
            checks.append(Check("key_usage", False, f"{role} keyUsage {sorted(ku)} lacks keyCertSign "
                                "(OpenSSL error 32)", subject, KEY_USAGE))
        else:
            checks.append(Check("key_usage", True, "keyCertSign" if ku is not None else "no keyUsage",
                                subject))
        if bc is not None and bc[1] is not None:
            below = sum(1 for n in path[1:i] if not n.self_issued)
            if below > bc[1]:
                checks.append(Check("path_length", False, f"pathLenConstraint {bc[1]} but {below} "
                                    "intermediate CA certificate(s) below", subject, PATH_LENGTH_EXCEEDED))
            else:
                checks.append(Check("path_length", True, f"{below} <= pathLenConstraint {bc[1]}", subject))
        return checks

    @staticmethod
    def extension_check(node: _Node) -> Check:
        if node.unknown_critical:
            return Check("critical_extensions", False, "unrecognised critical extension(s) "
                         f"{', '.join(node.unknown_critical)} (RFC 5280 §4.2)", node.subject_text, MALFORMED)
        return Check("critical_extensions", True, "all critical extensions understood", node.subject_text)

    def validity_check(self, node: _Node) -> Check:
        span = f"{node.not_before.isoformat()} .. {node.not_after.isoformat()}"
        at = self.at.isoformat()
        if self.at < node.not_before:
            return Check("validity", False, f"not yet valid at {at} ({span})", node.subject_text,
                         NOT_YET_VALID)
        if self.at > node.not_after:
            return Check("validity", False, f"expired at {at} ({span})", node.subject_text, EXPIRED)
        return Check("validity", True, f"valid at {at} ({span})", node.subject_text)

    def purpose_checks(self, leaf: _Node) -> list[Check]:
        purpose, subject, checks = self.purpose, leaf.subject_text, []
        if purpose.key_usage_any:
            ku = leaf.key_usage
            wanted = sorted(purpose.key_usage_any)
            if ku is None:
                checks.append(Check("key_usage", True, f"no keyUsage: any usage ({purpose.name})", subject))
            elif ku & purpose.key_usage_any:
                checks.append(Check("key_usage", True, f"{sorted(ku & purpose.key_usage_any)} "
                                    f"for {purpose.name}", subject))
            else:
                checks.append(Check("key_usage", False, f"keyUsage {sorted(ku)} has none of {wanted} "
                                    f"needed for {purpose.name}", subject, KEY_USAGE))
        if purpose.extended_key_usage:
            eku = leaf.extended_key_usage
            if eku is not None and purpose.extended_key_usage in eku:
                checks.append(Check("extended_key_usage", True, purpose.extended_key_usage, subject))
            else:
                have = "no extendedKeyUsage" if eku is None else f"extendedKeyUsage {sorted(eku)}"
                checks.append(Check("extended_key_usage", False, f"{have}; {purpose.name} needs "
                                    f"{purpose.extended_key_usage}", subject, EXTENDED_KEY_USAGE))
        if purpose.excluded_usages:
            eku = leaf.extended_key_usage
            if eku and eku <= purpose.excluded_usages:
                checks.append(Check("extended_key_usage", False, f"extendedKeyUsage {sorted(eku)} dedicates "
                                    f"this key to another service; not for {purpose.name}", subject,
                                    EXTENDED_KEY_USAGE))
        return checks

    # -- revocation
    def revocation_check(self, cert: _Node, issuer: _Node) -> Check:
        subject = cert.subject_text
        current, later, rejected = None, "", []
        for crl in self.crls:
            reason = self._crl_unusable(crl, cert, issuer)
            if reason:
                if reason != "other issuer":
                    rejected.append(reason)
                continue
            try:
                entry = _revoked_entry(crl, cert.serial, self.at, proven=self.at_proven)
            except (*_PARSE_ERRORS, _Malformed) as exc:
                rejected.append(f"unreadable CRL entry: {exc}")
                continue
            if entry is not None and entry[0]:
                return Check("revocation", False, entry[1], subject, REVOKED)
            if not self._current(crl):
                tbs = crl["tbs_cert_list"]
                nxt = tbs["next_update"].native
                rejected.append(f"CRL of {tbs['this_update'].native.isoformat()} .. "
                                f"{nxt.isoformat() if nxt else 'no nextUpdate'} is not current")
                continue
            if entry is not None:
                later = entry[1]
            if current is None:
                current = crl
        if current is not None:
            tbs = current["tbs_cert_list"]
            span = f"{tbs['this_update'].native.isoformat()} .. {tbs['next_update'].native.isoformat()}"
            if later:
                return Check("revocation", True, f"not revoked at {self.at.isoformat()}: {later}", subject)
            return Check("revocation", True, f"not listed in the CRL of {issuer.subject_text} ({span})",
                         subject)
        why = "; ".join(rejected) or f"no CRL from {issuer.subject_text}"
        if self.skipped_crls:
            why += f"; {self.skipped_crls} unreadable CRL(s) ignored"
        if self.revocation == "require":
            return Check("revocation", False, f"no usable CRL current at {self.crl_time.isoformat()}: {why}",
                         subject, REVOCATION_UNKNOWN)
        return Check("revocation", True, f"not checked (no usable CRL: {why}); policy if_available", subject)

    def _current(self, crl: asn1_crl.CertificateList) -> bool:
        tbs = crl["tbs_cert_list"]
        nxt = tbs["next_update"].native
        return tbs["this_update"].native <= self.crl_time and nxt is not None and self.crl_time <= nxt

    def _crl_unusable(self, crl: asn1_crl.CertificateList, cert: _Node, issuer: _Node) -> str | None:
        """Why this CRL says nothing about ``cert`` (None if it is authentic and in scope)."""
        try:
            tbs = crl["tbs_cert_list"]
            if tbs["issuer"] != issuer.subject:
                return "other issuer"
            exts, unknown = _extensions(tbs["crl_extensions"], _KNOWN_CRL_EXTENSIONS, "CRL")
            aki = exts.get("authority_key_identifier")
            aki_id = aki["key_identifier"].native if aki is not None else None
            if aki_id is not None and issuer.ski is not None and aki_id != issuer.ski:
                return "other issuer"
            if unknown:
                return f"CRL has unrecognised critical extension(s) {', '.join(unknown)}"
            scope = _scope_problem(exts.get("issuing_distribution_point"), cert)
            if scope:
                return scope
            if crl["signature_algorithm"].dump() != tbs["signature"].dump():
                return "CRL signatureAlgorithm differs from tbsCertList.signature"
            status, detail = self._verify(issuer, tbs_bytes(tbs), crl["signature_algorithm"],
                                          bit_string_bytes(crl["signature"]))
            if status != "ok":
                return f"CRL signature: {detail}"
            ku = issuer.key_usage
            if ku is not None and "crl_sign" not in ku:
                return "CRL issuer's keyUsage lacks cRLSign"
            if not isinstance(tbs["this_update"].native, datetime):
                return "CRL has no readable thisUpdate"
            nxt = tbs["next_update"].native
            if nxt is not None and not isinstance(nxt, datetime):
                return "CRL has an unreadable nextUpdate"
        except (*_PARSE_ERRORS, _Malformed) as exc:
            return f"unreadable CRL: {exc}"
        return None


def _scope_problem(idp: Any, cert: _Node) -> str | None:
    """RFC 5280 §6.3.3(b): partial, indirect and attribute CRLs are not used."""
    if idp is None:
        return None
    if idp["indirect_crl"].native:
        return "indirect CRL (not supported)"
    if idp["only_some_reasons"].native:
        return "CRL covers only some reasons (not supported)"
    if idp["only_contains_attribute_certs"].native:
        return "CRL covers attribute certificates only"
    bc = cert.basic_constraints
    is_ca = bc is not None and bc[0]
    if idp["only_contains_user_certs"].native and is_ca:
        return "CRL covers end-entity certificates only"
    if idp["only_contains_ca_certs"].native and not is_ca:
        return "CRL covers CA certificates only"
    point = idp["distribution_point"]
    if point.name == "full_name":
        names = {general.dump() for general in point.chosen}
        if not names & cert.crl_distribution_names:
            return "CRL distribution point does not match the certificate's"
    return None


def _revoked_entry(crl: asn1_crl.CertificateList, serial: int, at: datetime, *,
                   proven: bool = False) -> tuple[bool, str] | None:
    """(effective at ``at``?, text) if ``serial`` is listed (removeFromCRL entries do not count).

    A compromise revocation is effective whatever ``at`` is, unless ``at`` is ``proven``."""
    for entry in crl["tbs_cert_list"]["revoked_certificates"]:
        if entry["user_certificate"].native != serial:
            continue
        exts, unknown = _extensions(entry["crl_entry_extensions"], _KNOWN_CRL_ENTRY_EXTENSIONS, "CRL entry")
        if unknown:
            raise _Malformed(f"CRL entry has unrecognised critical extension(s) {', '.join(unknown)}")
        reason = exts["crl_reason"].native if "crl_reason" in exts else "unspecified"
        if reason == "remove_from_crl":
            return None
        revoked = entry["revocation_date"].native
        invalid = exts["invalidity_date"].native if "invalidity_date" in exts else None
        since = min(revoked, invalid) if invalid else revoked
        text = f"revoked on {revoked.isoformat()} (reason {reason}"
        text += f", invalid since {invalid.isoformat()})" if invalid else ")"
        if reason in _COMPROMISE_REASONS and not proven:
            return True, text + "; a compromise revocation counts whatever the validation time"
        if since > at and proven:
            return False, text + f", after {at.isoformat()}, the proven time of existence: still valid then"
        if since > at:
            return False, text + f", after {at.isoformat()}: still valid then"
        return True, text
    return None


# ---- the entry point --------------------------------------------------------------------------
def _rank(checks: list[Check]) -> tuple[bool, int]:
    """Which failed path to report: one whose signatures hold, then the one that got furthest."""
    signatures_hold = all(c.ok for c in checks if c.name in ("algorithm", "signature"))
    first_failure = next((i for i, c in enumerate(checks) if not c.ok), len(checks))
    return signatures_hold, first_failure


def validate_path(
    leaf: x509.Certificate | bytes,
    *,
    trust_anchors: Iterable[x509.Certificate | bytes],
    intermediates: Iterable[x509.Certificate | bytes] = (),
    at: datetime,
    crls: Iterable[asn1_crl.CertificateList] = (),
    purpose: Purpose = ANY,
    revocation: RevocationMode = "if_available",
    crl_time: datetime | None = None,
    at_proven: bool = False,
) -> PathResult:
    """Build paths from ``leaf`` to one of ``trust_anchors`` and validate them at ``at``.

    Paths are tried shortest first, key identifier matches and anchors first, and paths whose
    every signature verifies before any other; the first that passes every check is returned,
    otherwise the failed path whose signatures hold and which got furthest. Never raises on
    malformed certificates or CRLs.

    ``crl_time`` (default ``at``) is when the CRLs must be current. A signature claims to
    have been made at ``at`` in the past; its certificates' status *then* is read from the
    CRLs current *now*: a later revocation for a non-compromise reason does not count.
    ``at_proven`` says ``at`` is a proven time of existence, not a claim: then a later
    compromise revocation (invalidity date after ``at``) does not count either.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("validation time must be timezone-aware")
    if revocation not in ("require", "if_available", "off"):
        raise ValueError(f"revocation must be require, if_available or off, not {revocation!r}")
    try:
        leaf_node = _Node.of(_as_certificate(leaf))
    except _Malformed as exc:
        path = [leaf] if isinstance(leaf, x509.Certificate) else []
        return PathResult.from_checks([Check("parse", False, str(exc), None, MALFORMED)], path)

    anchors = [n for n in map(_node_or_none, trust_anchors) if n is not None]
    candidates = list(intermediates)
    inters = [n for n in map(_node_or_none, candidates) if n is not None]
    skipped = len(candidates) - len(inters)
    crl_list = list(crls)
    readable_crls = [c for c in crl_list if isinstance(c, asn1_crl.CertificateList)]
    if crl_time is not None and (crl_time.tzinfo is None or crl_time.utcoffset() is None):
        raise ValueError("CRL time must be timezone-aware")
    validator = _Validator(at, readable_crls, purpose, revocation, len(crl_list) - len(readable_crls),
                           crl_time, at_proven)

    best: tuple[tuple[bool, int], PathResult] | None = None
    pool = _Pool(anchors, inters)
    # First only through links whose signatures verify; if there is no such path, through
    # names and key identifiers alone, to report what is wrong with the nearest path.
    for link_ok in (validator.link_ok, None):
        for n, path in enumerate(_paths(leaf_node, pool, link_ok)):
            if n >= MAX_PATHS:
                break
            result = PathResult.from_checks(validator.evaluate(path), [node.cert for node in path])
            if result.ok:
                return result
            rank = _rank(result.checks)
            if best is None or rank > best[0]:
                best = (rank, result)
        if best is not None:
            return best[1]
    detail = f"no path from issuer {name_text(leaf_node.issuer)} to any of {len(anchors)} trust anchor(s)"
    if skipped:
        detail += f"; {skipped} unreadable intermediate certificate(s) ignored"
    return PathResult.from_checks(
        [Check("chain", False, detail, leaf_node.subject_text, NO_CERTIFICATE_CHAIN_FOUND)], [leaf_node.cert])
