"""Licence identifiers: ISO 7064 MOD 37,36, the dotted form, and every malformed part."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ca.names import credit_code_check_character
from licences.identifiers import (
    ALPHABET,
    ROOT,
    IdentifierError,
    LicenceIdentifier,
    _hybrid_check,
    check_character,
    validate_resident_id,
    validate_type_code,
)

TYPE = "11100000MB0000019L001"
ISSUER = "11350100MB0000000Y"

body = st.text(alphabet=ALPHABET, min_size=1, max_size=60)


def test_known_vectors():
    # GRid A1-2425G-ABC1234002-M (ISO 7064 MOD 37,36, as python-stdnum documents it)
    assert check_character("A12425GABC1234002") == "M"
    # the same hybrid system with M = 10 (MOD 11,10): python-stdnum's example
    assert _hybrid_check([int(c) for c in "00200667308"], 10) == 5


@given(body, st.data())
def test_every_single_substitution_is_detected(text, data):
    full = text + check_character(text)
    i = data.draw(st.integers(0, len(full) - 1))
    new = data.draw(st.sampled_from(ALPHABET).filter(lambda c: c != full[i]))
    changed = full[:i] + new + full[i + 1:]
    assert check_character(changed[:-1]) != changed[-1]


def test_adjacent_transpositions_are_detected_but_one_pair_in_630():
    """The hybrid system's known limit, checked exhaustively: after each of the 36 possible
    running states, exactly one of the 630 pairs of distinct characters goes undetected when
    swapped (ISO 7064 claims about 99.8 % for hybrid systems, not 100 %)."""
    for prefix in ALPHABET:  # the 36 one-character prefixes reach all 36 states
        missed = {frozenset((a, b)) for a in ALPHABET for b in ALPHABET
                  if a != b and check_character(prefix + a + b) == check_character(prefix + b + a)}
        assert len(missed) == 1, (prefix, missed)


def test_check_character_rejects_other_characters():
    for bad in ("", "abc", "12-3", "中文"):
        with pytest.raises(IdentifierError):
            check_character(bad)


@given(st.integers(1, 10**18 - 1), st.integers(1, 999))
def test_round_trip(serial, version):
    ident = LicenceIdentifier(TYPE, ISSUER, serial, version)
    text = ident.text
    assert text.startswith(ROOT + ".")
    assert text.split(".")[-4:-1] == [ISSUER, str(serial), f"{version:03d}"]
    assert LicenceIdentifier.parse(text) == ident
    assert text[-1] == check_character(f"{TYPE}{ISSUER}{serial}{version:03d}")


def _text(type_code=TYPE, issuer=ISSUER, serial="42", version="001", check=None):
    body = f"{type_code}{issuer}{serial}{version}"
    if check is None:
        check = check_character(body) if all(c in ALPHABET for c in body) else "0"
    return f"{ROOT}.{type_code}.{issuer}.{serial}.{version}.{check}"


def _bad_issuer_check() -> str:
    wrong = next(c for c in "0123" if c != credit_code_check_character(ISSUER[:17]))
    return ISSUER[:17] + wrong


@pytest.mark.parametrize(("text", "reason"), [
    ("1.2.156.3005.3." + _text()[15:], "must start with"),
    (_text() + ".1", "has 6 parts"),
    (_text().rsplit(".", 1)[0], "has 4 parts"),
    (_text(type_code=TYPE[:-1]), "must be 21 characters"),
    (_text(type_code=TYPE[:18] + "0A1"), "must be digits"),
    (_text(type_code=ISSUER[:17] + "0" + "001"), "check character"),
    (_text(issuer=ISSUER.lower()), "must be 18 characters"),
    (_text(issuer=_bad_issuer_check()), "check character"),
    (_text(serial="0042"), "without leading zeros"),
    (_text(serial="0"), "without leading zeros"),
    (_text(serial=""), "without leading zeros"),
    (_text(serial="4a2"), "without leading zeros"),
    (_text(serial="1" * 19), "1 to 18 digits"),
    (_text(version="000"), "001 to 999"),
    (_text(version="01"), "001 to 999"),
    (_text(version="1000"), "001 to 999"),
    (_text(check="??"), "check character"),
    (_text(check="a"), "check character"),
])
def test_malformed_parts_are_named(text, reason):
    with pytest.raises(IdentifierError, match=reason):
        LicenceIdentifier.parse(text)


def test_wrong_check_character_says_what_it_should_be():
    good = _text()
    wrong = next(c for c in ALPHABET if c != good[-1])
    with pytest.raises(IdentifierError, match=f"gives {good[-1]!r}"):
        LicenceIdentifier.parse(good[:-1] + wrong)


def test_not_a_string():
    with pytest.raises(IdentifierError, match="string"):
        LicenceIdentifier.parse(b"1.2.156")  # type: ignore[arg-type]


def test_construction_validates():
    for args in ((TYPE, ISSUER, 0), (TYPE, ISSUER, True), (TYPE, ISSUER, 1, 1000), (TYPE, "X", 1),
                 (TYPE[:-1], ISSUER, 1), (TYPE, ISSUER, 10**18)):
        with pytest.raises(IdentifierError):
            LicenceIdentifier(*args)


def test_next_version():
    ident = LicenceIdentifier(TYPE, ISSUER, 7, 1)
    nxt = ident.next_version()
    assert (nxt.serial, nxt.version) == (7, 2)
    assert nxt.text != ident.text and nxt.text.split(".")[-2] == "002"
    with pytest.raises(IdentifierError, match="last one"):
        LicenceIdentifier(TYPE, ISSUER, 7, 999).next_version()


def test_type_code():
    assert validate_type_code(TYPE) == TYPE
    with pytest.raises(IdentifierError):
        validate_type_code(ISSUER)


def test_resident_id():
    assert validate_resident_id("11010519491231002X") == "11010519491231002X"  # GB 11643's example
    for bad in ("110105194912310021", "11010519491231002x", "1101051949123100", 110105194912310021):
        with pytest.raises(IdentifierError):
            validate_resident_id(bad)
