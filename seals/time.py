"""Seal time values as real producers write them.

GB/T 38540 says GeneralizedTime and GM/T 0031 says UTCTime, but files in the wild also carry
GeneralizedTime with a two-digit year ("220725214639Z"), without the "Z" ("20220318213217",
read as UTC), with fractions of a second, and v1 timeInfo as BIT STRING text in ISO 8601
("2020-01-25T07:31:56.377Z", "2022-03-24 08:54:12"). Each is read to an aware UTC datetime;
anything else is a :class:`SealFormatError`, never a guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from .errors import SealFormatError

_COMPACT = re.compile(
    r"^(?P<year>\d{2}|\d{4})(?P<month>\d{2})(?P<day>\d{2})(?P<hour>\d{2})(?P<minute>\d{2})"
    r"(?P<second>\d{2})?(?:[.,](?P<fraction>\d{1,9}))?(?P<zone>Z|[+-]\d{4})?$")
_ISO = re.compile(
    r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2}))?(?:[.,](?P<fraction>\d{1,9}))?\s*(?P<zone>Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from any of the accepted spellings."""
    value = text.strip().rstrip("\x00")
    match = _COMPACT.match(value) or _ISO.match(value)
    if match is None:
        raise SealFormatError(f"unrecognised seal time value {text!r}")
    year = int(match["year"])
    if len(match["year"]) == 2:  # RFC 5280 UTCTime rule, also applied to 2-digit GeneralizedTime
        year += 2000 if year < 50 else 1900
    fraction = match["fraction"] or ""
    micro = int((fraction + "000000")[:6]) if fraction else 0
    zone = match["zone"]
    try:
        tz = UTC
        if zone and zone != "Z":
            digits = zone.replace(":", "")
            offset = timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
            tz = timezone(offset if digits[0] == "+" else -offset)
        moment = datetime(year, int(match["month"]), int(match["day"]), int(match["hour"]),
                          int(match["minute"]), int(match["second"] or 0), micro, tzinfo=tz)
    except ValueError as exc:
        raise SealFormatError(f"impossible seal time value {text!r}: {exc}") from exc
    return moment.astimezone(UTC)
