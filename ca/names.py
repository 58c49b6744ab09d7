"""Subject names, and the unified social credit code (统一社会信用代码) they carry.

Where the credit code goes
--------------------------
A department's certificate subject carries its 18-character unified social credit code
(GB 32100-2015) in the X.520 ``organizationIdentifier`` attribute (2.5.4.97), as the bare
code, e.g. ``organizationIdentifier=11350100MB0000000Y``. That attribute is the one every X.509
toolkit already names (OpenSSL prints it, asn1crypto parses it) and it is part of the subject,
so it is covered by name chaining and by the subject a relying party reads.

GM/T 0015-2012 (基于SM2密码算法的数字证书格式) §"个体标识" also defines private
extensions for subject identifiers under 1.2.156.10260.4.1 — IdentifyCode (.1), InsuranceNumber
(.2), ICRegistrationNumber (.3), OrganizationCode (.4), TaxationNumber (.5) — which Chinese CAs
fill with the organisation code. :mod:`ca.certificates` writes the OrganizationCode extension
(non-critical, PrintableString) beside the subject attribute for readers that look there, and
:func:`credit_code_of` reads the subject attribute only, so there is one authoritative place.

Readers also accept the ETSI EN 319 412-1 §5.1.4 semantics-identifier form
(``NTRCN-<code>``), which some CAs use in organizationIdentifier.

Strings are UTF8String (CJK names), the country PrintableString, as RFC 5280 §4.1.2.6 asks.
"""

from __future__ import annotations

import re

from asn1crypto import x509

from .errors import InvalidRequest

#: GB 32100-2015 §4 code character set: digits and upper-case letters without I, O, S, V, Z.
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: Weights W_i = 3^(i-1) mod 31 for positions 1..17 (GB 32100-2015 §5 / annex).
CREDIT_CODE_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_CREDIT_CODE_RE = re.compile(rf"^[{CREDIT_CODE_ALPHABET}]{{18}}$")
_ETSI_PREFIX = re.compile(r"^[A-Z]{3}CN-")
MAX_NAME_CHARS = 64  # RFC 5280 ub-common-name / ub-organization-name


def credit_code_check_character(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters of a credit code.

    C18 = 31 - (Σ C_i × W_i mod 31), with 31 written as 0.
    """
    total = sum(CREDIT_CODE_ALPHABET.index(c) * w for c, w in zip(first17, CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(code: str) -> str:
    """Return ``code`` if it is a well-formed unified social credit code; else InvalidRequest."""
    if not isinstance(code, str) or not _CREDIT_CODE_RE.match(code):
        raise InvalidRequest(
            f"unified social credit code {code!r} must be 18 characters of "
            f"{CREDIT_CODE_ALPHABET} (GB 32100; upper case, no I, O, S, V or Z); check the department's code")
    expected = credit_code_check_character(code[:17])
    if code[17] != expected:
        raise InvalidRequest(
            f"unified social credit code {code} has check character {code[17]!r}, GB 32100 gives "
            f"{expected!r}; the code is mistyped — copy it again from the department's registration")
    return code


def _text(field: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise InvalidRequest(f"{field} must not be empty; give a value or leave it out")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidRequest(f"{field} is {len(value)} characters; RFC 5280 allows at most {MAX_NAME_CHARS}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidRequest(f"{field} contains control characters; remove them")
    return value


def subject_name(common_name: str, *, organisation: str | None = None,
                 organisational_unit: str | None = None, credit_code: str | None = None,
                 country: str = "CN") -> x509.Name:
    """A subject DN: C, O, OU, CN and, for a department, organizationIdentifier = credit code.

    The credit code is validated (GB 32100 check character) so a typo never reaches a
    certificate that will sign licences for years.
    """
    cn = _text("common name", common_name)
    if cn is None:
        raise InvalidRequest("common name is required")
    if not re.fullmatch(r"[A-Z]{2}", country or ""):
        raise InvalidRequest(f"country {country!r} must be a two-letter ISO 3166 code such as 'CN'")
    attrs: dict[str, str] = {"country_name": country}
    org = _text("organisation", organisation)
    if org:
        attrs["organization_name"] = org
    ou = _text("organisational unit", organisational_unit)
    if ou:
        attrs["organizational_unit_name"] = ou
    attrs["common_name"] = cn
    if credit_code is not None:
        attrs["organization_identifier"] = validate_credit_code(credit_code.strip().upper())
    return x509.Name.build(attrs)


def credit_code_of(name: x509.Name) -> str | None:
    """The unified social credit code carried in ``name`` (organizationIdentifier), or None.

    Accepts the bare code and the ETSI ``NTRCN-`` form; a value that is not a valid credit code
    is ignored (returns None) rather than trusted.
    """
    for rdn in name.chosen:
        for attr in rdn:
            if attr["type"].dotted != "2.5.4.97":
                continue
            try:
                value = str(attr["value"].native).strip()
            except (ValueError, TypeError):
                continue
            value = _ETSI_PREFIX.sub("", value)
            try:
                return validate_credit_code(value)
            except InvalidRequest:
                return None
    return None
