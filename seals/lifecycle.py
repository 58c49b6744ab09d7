"""The life of a department's seal: what kinds there are, which acts move it, and its code.

A seal is applied for, approved, made (keys, certificate, picture, SESeal), activated, and
then suspended and resumed as often as needed until it is revoked (final) or its validity
ends (expired). The table :data:`TRANSITIONS` is the whole rule; :mod:`seals.office` applies
it under a row lock and records every move. Expiry is a fact of the clock, so a seal past its
validity end *is* expired (:func:`effective_status`) whether or not a sweep has recorded it;
the only act still allowed then is revocation, which matters because documents signed while
the seal was valid are judged by its revocation status afterwards.

Seal code (esID)
----------------
14 characters: the 6-digit administrative area code of the department (characters 3–8 of its
GB 32100 unified social credit code, the registering authority's GB/T 2260 code) followed by
an 8-digit serial counted per area code from 00000001. Rows are never deleted, so the next
serial is always one above the highest ever given in that area and a code is never reused;
the registry's unique constraints make a concurrent duplicate fail instead of being stored.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from .errors import SealError
from .picture import SealShape

ES_ID_SERIAL_DIGITS = 8
ES_ID_LENGTH = 6 + ES_ID_SERIAL_DIGITS


class SealRequestError(SealError):
    """A request about a seal is malformed: unknown kind, bad credit code, bad validity, …"""


class SealNotFound(SealError):
    """No seal with this code is in the registry."""

    def __init__(self, es_id: str):
        self.es_id = es_id
        super().__init__(f"no seal with code {es_id!r} is in the seal registry; "
                         "`zhengyin seal list` shows the registered seals")


class SealRefused(SealError):
    """The act is not allowed in the seal's (or the home's) current state."""


class SealStateError(SealRefused):
    """An act that the seal's current state does not allow (e.g. resuming a revoked seal)."""

    def __init__(self, es_id: str, status: str, act: str):
        self.es_id, self.status, self.act = es_id, status, act
        allowed = ", ".join(a for a, (sources, _) in TRANSITIONS.items() if status in sources) or "none"
        super().__init__(f"seal {es_id} is {status}: it cannot {act} (acts allowed now: {allowed})")


class SealNotUsable(SealRefused):
    """The seal may not sign now; ``reason`` is a short code, the message says why in full."""

    def __init__(self, es_id: str, reason: str, detail: str):
        self.es_id, self.reason = es_id, reason
        super().__init__(f"seal {es_id} cannot be used for signing ({reason}): {detail}")


class SealStatus(enum.StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    MADE = "made"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


#: States of a made seal whose validity end, once passed, makes it expired.
LIVE = frozenset({SealStatus.MADE, SealStatus.ACTIVE, SealStatus.SUSPENDED})

#: act -> (states it may start from, state it leads to). apply starts from nothing.
TRANSITIONS: dict[str, tuple[frozenset[str], SealStatus]] = {
    "approve": (frozenset({SealStatus.APPLIED}), SealStatus.APPROVED),
    "make": (frozenset({SealStatus.APPROVED}), SealStatus.MADE),
    "activate": (frozenset({SealStatus.MADE}), SealStatus.ACTIVE),
    "suspend": (frozenset({SealStatus.ACTIVE}), SealStatus.SUSPENDED),
    "resume": (frozenset({SealStatus.SUSPENDED}), SealStatus.ACTIVE),
    "revoke": (frozenset(SealStatus) - {SealStatus.REVOKED}, SealStatus.REVOKED),
    "expire": (LIVE, SealStatus.EXPIRED),
}


def next_status(es_id: str, status: str, act: str) -> SealStatus:
    """The state ``act`` leads to from ``status``; SealStateError when it is not allowed."""
    sources, target = TRANSITIONS[act]
    if status not in sources:
        raise SealStateError(es_id, status, act)
    return target


def effective_status(status: str, valid_end: datetime | None, now: datetime) -> SealStatus:
    """The recorded status, or expired once ``now`` is past a made seal's validity end.

    Validity is inclusive at both ends, as a certificate's is (and as verifiers check it).
    """
    if status in LIVE and valid_end is not None and valid_end < now:
        return SealStatus.EXPIRED
    return SealStatus(status)


@dataclass(frozen=True)
class KindRule:
    """How one kind of seal is typed, named and drawn."""

    seal_type: int        # GB/T 38540 property.type: 1 organisation seal, 2 personal seal
    purpose: str          # printed under the star; also the suffix of the default name
    shape: SealShape
    title: str


class SealKind(enum.StrEnum):
    OFFICIAL = "official"
    LICENCE = "licence"
    CONTRACT = "contract"
    FINANCE = "finance"
    LEGAL_REPRESENTATIVE = "legal_representative"

    @property
    def rule(self) -> KindRule:
        return KIND_RULES[self]

    @classmethod
    def parse(cls, value: str) -> SealKind:
        try:
            return cls(str(value).strip().lower().replace("-", "_"))
        except ValueError:
            raise SealRequestError(f"unknown seal kind {value!r}; use one of: "
                                   f"{', '.join(k.value for k in cls)}") from None


KIND_RULES: dict[SealKind, KindRule] = {
    SealKind.OFFICIAL: KindRule(1, "", SealShape.ROUND, "公章"),
    SealKind.LICENCE: KindRule(1, "电子证照专用章", SealShape.ROUND, "电子证照专用章"),
    SealKind.CONTRACT: KindRule(1, "合同专用章", SealShape.ROUND, "合同专用章"),
    SealKind.FINANCE: KindRule(1, "财务专用章", SealShape.OVAL, "财务专用章"),
    SealKind.LEGAL_REPRESENTATIVE: KindRule(2, "", SealShape.RECTANGLE, "法定代表人名章"),
}


def default_name(kind: SealKind, department: str, holder: str | None) -> str:
    """The seal's name as printed: the department and the purpose, or the person's name."""
    if kind is SealKind.LEGAL_REPRESENTATIVE:
        return f"{holder}印"
    return department + kind.rule.title


def area_code_of(credit_code: str) -> str:
    """Characters 3–8 of a GB 32100 credit code: the registering authority's area code."""
    area = credit_code[2:8]
    if len(area) != 6 or not area.isdigit():
        raise SealRequestError(f"credit code {credit_code} has {area!r} in positions 3–8, not a 6-digit "
                               "administrative area code (GB 32100); check the department's code")
    return area


def compose_es_id(area_code: str, serial: int) -> str:
    if not 0 < serial < 10**ES_ID_SERIAL_DIGITS:
        raise SealRefused(f"area {area_code} has used all {10**ES_ID_SERIAL_DIGITS - 1} seal serials")
    return f"{area_code}{serial:0{ES_ID_SERIAL_DIGITS}d}"
