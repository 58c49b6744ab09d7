"""A licence's states, the one rule of moving between them, the clock's part in it, and the
errors the licence library raises.

Kept apart from the library (:mod:`licences.lifecycle`, which records acts, and
:mod:`licences.lookups`, which reads) so that both use one rule and callers that only need
the rule — the issuing desk checking a state before it signs, a summary naming a status — do
not import the recording machinery. :mod:`licences.lifecycle` re-exports every public name.

Expiry is a fact of the clock: a live licence past the last day of its validity (China time,
the day itself included) *is* expired (:func:`effective_status`) whether or not the sweep has
recorded it yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache

from .identifiers import LicenceIdentifier
from .metadata import LicenceStatus

#: Licence validity is in days of China Standard Time (no daylight saving since 1991).
CHINA_TIME = timezone(timedelta(hours=8), "CST")

S = LicenceStatus
#: States whose validity end, once passed, makes the licence expired.
LIVE = frozenset({S.VALID, S.SUSPENDED})
#: States nothing leads out of.
FINAL = frozenset({S.CANCELLED, S.REVOKED})
SUPERSEDED = S.OTHER

#: act -> (states it may start from, state it leads to). issue starts from nothing.
TRANSITIONS: dict[str, tuple[frozenset[LicenceStatus], LicenceStatus]] = {
    "suspend": (frozenset({S.VALID}), S.SUSPENDED),
    "resume": (frozenset({S.SUSPENDED}), S.VALID),
    "revoke": (frozenset(S) - FINAL, S.REVOKED),
    "cancel": (frozenset(S) - FINAL, S.CANCELLED),
    "deregister": (frozenset({S.VALID, S.SUSPENDED, S.EXPIRED}), S.DEREGISTERED),
    "transfer": (frozenset({S.VALID}), S.TRANSFERRED),
    "expire": (LIVE, S.EXPIRED),
    "change": (frozenset({S.VALID}), SUPERSEDED),
    "renew": (frozenset({S.VALID, S.EXPIRED}), SUPERSEDED),
}


class LicenceError(Exception):
    """Base class of the licence library's errors."""


class LicenceRequestError(LicenceError, ValueError):
    """A request about a licence is malformed (bad reason, filter, metadata for the act, …)."""


class LicenceNotFound(LicenceError, LookupError):
    def __init__(self, identifier: str):
        self.identifier = identifier
        super().__init__(f"no licence {identifier} is in the licence library")


class LicenceExists(LicenceError):
    """The licence (or its source record, or a successor of its predecessor) is already recorded."""

    def __init__(self, field: str, value: str, existing: str | None):
        self.field, self.value, self.existing = field, value, existing
        where = f" (licence {existing})" if existing and existing != value else ""
        super().__init__(f"a licence with {field} {value} is already in the licence library{where}")


class LicenceStateError(LicenceError):
    """An act the licence's current status does not allow (e.g. resuming a revoked licence)."""

    def __init__(self, identifier: str, status: str, act: str):
        self.identifier, self.status, self.act = identifier, str(status), act
        allowed = ", ".join(a for a, (sources, _) in TRANSITIONS.items() if status in sources) or "none"
        super().__init__(f"licence {identifier} is {describe(status)}: it cannot {act} "
                         f"(acts allowed now: {allowed})")


def describe(status: str) -> str:
    """``"07 (revoked)"``: a status code with its name, for messages."""
    try:
        return f"{status} ({LicenceStatus(status).name.lower()})"
    except ValueError:
        return repr(status)


def next_status(identifier: str, status: str, act: str) -> LicenceStatus:
    """The status ``act`` leads to from ``status``; LicenceStateError when it is not allowed."""
    sources, target = TRANSITIONS[act]
    if status not in sources:
        raise LicenceStateError(identifier, status, act)
    return target


def china_date(moment: datetime) -> date:
    """The calendar day in China at ``moment`` (aware)."""
    return moment.astimezone(CHINA_TIME).date()


def china_text(moment: datetime) -> str:
    """``2026-01-02 15:04:05`` in China Standard Time (the clock people in China read): how pages,
    copies and reports print a moment."""
    return moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S")


def china_today() -> date:
    """Today's date in China (what a licence issued now prints), whatever the host's time zone."""
    return china_date(datetime.now(UTC))


def expiry_instant(valid_until: date) -> datetime:
    """The first moment a licence valid until ``valid_until`` (inclusive) is no longer valid."""
    return datetime.combine(valid_until + timedelta(days=1), time(0), CHINA_TIME).astimezone(UTC)


def effective_status(status: str, valid_until: date | None, now: datetime) -> LicenceStatus:
    """The recorded status, or expired once ``now`` is past a live licence's last valid day."""
    if status in LIVE and valid_until is not None and now >= expiry_instant(valid_until):
        return S.EXPIRED
    return LicenceStatus(status)


def parse_status(value: str | LicenceStatus) -> LicenceStatus:
    """A status from its code (``"07"``) or name (``"revoked"``)."""
    text = str(value).strip()
    try:
        return LicenceStatus(text)
    except ValueError:
        pass
    try:
        return LicenceStatus[text.upper()]
    except KeyError:
        allowed = ", ".join(f"{s.value} ({s.name.lower()})" for s in LicenceStatus)
        raise LicenceRequestError(f"unknown licence status {value!r}; use one of: {allowed}") from None


def canonical_identifier(value: str | LicenceIdentifier) -> str:
    """The canonical text of an identifier; IdentifierError says what is wrong with a bad one."""
    if isinstance(value, LicenceIdentifier):
        return value.text
    if not isinstance(value, str):
        return LicenceIdentifier.parse(value).text  # raises IdentifierError
    return _canonical_text(value.strip())


@lru_cache(maxsize=4096)
def _canonical_text(text: str) -> str:
    """Parsing checks the type code, issuer code and check character: ~0.1 ms, which the public
    QR page paid on every request for the same few identifiers. Only successes are kept (an
    exception is not cached), and at most 4096 of them."""
    return LicenceIdentifier.parse(text).text


def aware(moment: datetime | None, what: str) -> datetime | None:
    """``moment`` in UTC; None stays None; LicenceRequestError for a naive or non-datetime value."""
    if moment is None:
        return None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise LicenceRequestError(f"the {what} must be a datetime with a time zone "
                                  "(e.g. 2026-01-02T03:04:05Z)")
    return moment.astimezone(UTC)
