"""Licence metadata (电子证照元数据): what the licence library stores and exports per licence.

The fields follow DESIGN.md's e-licence bullet: who defined the type and who issued it, the
holder, validity, status, and the link to the version it replaced. A purpose-limited annotated
copy (加注件) adds its purpose, who made it, when, and until when it may be used.

Validation collects every problem before raising, so a bulk conversion's rejection report
names all of a record's faults at once. ``as_dict()`` is the JSON export (ISO 8601 dates,
status as its two-digit code, identifiers as dotted text); ``from_dict()`` reads it back and
refuses unknown keys, so a misspelt field is an error rather than silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, dataclass, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from .identifiers import IdentifierError, LicenceIdentifier, validate_resident_id, validate_type_code

AREA_CODE = re.compile(r"\d{6}")  # GB/T 2260 administrative division code
MAX_TEXT = 200
MAX_URL = 2048


class LicenceStatus(StrEnum):
    """Licence status codes (DESIGN.md)."""

    VALID = "01"
    SUSPENDED = "02"
    CANCELLED = "03"
    DEREGISTERED = "04"
    EXPIRED = "05"
    TRANSFERRED = "06"
    REVOKED = "07"
    OTHER = "99"


class HolderCodeType(StrEnum):
    """What kind of number ``holder_code`` is; the first two are checked by their check
    characters (GB 32100, GB 11643)."""

    CREDIT_CODE = "统一社会信用代码"
    RESIDENT_ID = "居民身份证"
    PASSPORT = "护照"
    OTHER = "其他"


class MetadataError(ValueError):
    """Licence metadata that cannot be stored; ``problems`` lists every fault found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("licence metadata is invalid: " + "; ".join(self.problems))


@dataclass(frozen=True)
class LicenceMetadata:
    """One licence version's metadata. Identifiers may be given as text; they are parsed."""

    identifier: LicenceIdentifier
    type_name: str
    type_code: str
    licence_number: str
    name: str
    issue_date: date
    issuer_name: str
    issuer_code: str
    defining_authority: str
    valid_from: date
    valid_until: date | None  # None: long-term (长期)
    area_code: str
    holder_name: str
    holder_code: str
    holder_code_type: HolderCodeType
    version: int = 1
    service_item: str | None = None
    status: LicenceStatus = LicenceStatus.VALID
    file_url: str | None = None
    previous_identifier: LicenceIdentifier | None = None
    purpose: str | None = None
    annotation_creator: str | None = None
    annotation_time: datetime | None = None
    annotation_expiry: datetime | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        self._normalise(problems)
        if problems:
            raise MetadataError(problems)
        self._check(problems)
        if problems:
            raise MetadataError(problems)

    # -- validation ----------------------------------------------------------------------------

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _normalise(self, problems: list[str]) -> None:
        for name in ("identifier", "previous_identifier"):
            value = getattr(self, name)
            if value is None and name == "previous_identifier":
                continue
            if isinstance(value, str):
                try:
                    self._set(name, LicenceIdentifier.parse(value))
                except IdentifierError as exc:
                    problems.append(f"{name}: {exc}")
            elif not isinstance(value, LicenceIdentifier):
                problems.append(f"{name} must be a LicenceIdentifier or its text, not {type(value).__name__}")
        for name, enum in (("status", LicenceStatus), ("holder_code_type", HolderCodeType)):
            try:
                self._set(name, enum(getattr(self, name)))
            except ValueError:
                allowed = ", ".join(f"{m.value} ({m.name})" for m in enum)
                problems.append(f"{name} {getattr(self, name)!r} is not one of {allowed}")

    def _check(self, problems: list[str]) -> None:
        for name in ("type_name", "licence_number", "name", "issuer_name", "defining_authority",
                     "holder_name", "holder_code"):
            _text(problems, name, getattr(self, name), required=True)
        for name in ("service_item", "purpose", "annotation_creator"):
            _text(problems, name, getattr(self, name), required=False)

        ident = self.identifier
        try:
            validate_type_code(self.type_code)
        except IdentifierError as exc:
            problems.append(f"type_code: {exc}")
        for name, expected in (("type_code", ident.type_code), ("issuer_code", ident.issuer_code),
                               ("version", ident.version)):
            if getattr(self, name) != expected:
                problems.append(f"{name} {getattr(self, name)!r} differs from the identifier's {expected!r}")
        if self.previous_identifier is not None and self.previous_identifier == ident:
            problems.append("previous_identifier is the licence's own identifier")

        for name in ("issue_date", "valid_from"):
            if not _is_date(getattr(self, name)):
                problems.append(f"{name} must be a date, not {getattr(self, name)!r}")
        if self.valid_until is not None and not _is_date(self.valid_until):
            problems.append(f"valid_until must be a date or None (long-term), not {self.valid_until!r}")
        elif (self.valid_until is not None and _is_date(self.valid_from)
              and self.valid_until < self.valid_from):
            problems.append(f"valid_until {self.valid_until} is before valid_from {self.valid_from}")

        if not isinstance(self.area_code, str) or not AREA_CODE.fullmatch(self.area_code):
            problems.append(f"area_code {self.area_code!r} must be a six-digit GB/T 2260 division code")
        self._check_holder_code(problems)
        if self.file_url is not None and (not isinstance(self.file_url, str) or len(self.file_url) > MAX_URL
                                          or not re.fullmatch(r"https?://\S+", self.file_url)):
            problems.append(f"file_url {self.file_url!r} must be an http(s) URL")
        self._check_annotation(problems)

    def _check_holder_code(self, problems: list[str]) -> None:
        if not isinstance(self.holder_code, str):
            return
        from ca.errors import InvalidRequest
        from ca.names import validate_credit_code

        try:
            if self.holder_code_type is HolderCodeType.CREDIT_CODE:
                validate_credit_code(self.holder_code)
            elif self.holder_code_type is HolderCodeType.RESIDENT_ID:
                validate_resident_id(self.holder_code)
        except (InvalidRequest, IdentifierError) as exc:
            problems.append(f"holder_code: {exc}")

    def _check_annotation(self, problems: list[str]) -> None:
        core = ("purpose", "annotation_creator", "annotation_time")
        given = {n: getattr(self, n) is not None for n in (*core, "annotation_expiry")}
        if any(given.values()) and not all(given[n] for n in core):
            missing = [n for n in core if not given[n]]
            problems.append(f"an annotated copy (加注件) needs purpose, annotation_creator and "
                            f"annotation_time; missing {', '.join(missing)}")
        for name in ("annotation_time", "annotation_expiry"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                problems.append(f"{name} must be a timezone-aware datetime, not {value!r}")
        t, e = self.annotation_time, self.annotation_expiry
        if (isinstance(t, datetime) and isinstance(e, datetime) and t.tzinfo and e.tzinfo and e <= t):
            problems.append(f"annotation_expiry {e.isoformat()} is not after annotation_time {t.isoformat()}")

    # -- JSON ----------------------------------------------------------------------------------

    @property
    def long_term(self) -> bool:
        return self.valid_until is None

    def as_dict(self) -> dict[str, Any]:
        """The JSON export: every field, dates as ISO 8601, enums as their codes."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, LicenceIdentifier):
                value = value.text
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, date):  # datetime included
                value = value.isoformat()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LicenceMetadata:
        """Read ``as_dict()``'s form back; unknown or missing keys and bad values are all
        reported in one MetadataError."""
        if not isinstance(data, dict):
            raise MetadataError([f"metadata must be a JSON object, not {type(data).__name__}"])
        known = {f.name: f for f in fields(cls)}
        problems = [f"unknown field {k!r}" for k in data if k not in known]
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        problems += [f"missing field {name!r}" for name in required if name not in data]
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name not in known:
                continue
            if name in _DATE_FIELDS and value is not None:
                value = _parse(problems, name, value, date.fromisoformat)
            elif name in _DATETIME_FIELDS and value is not None:
                value = _parse(problems, name, value, datetime.fromisoformat)
            values[name] = value
        if problems:
            raise MetadataError(problems)
        return cls(**values)


_DATE_FIELDS = {"issue_date", "valid_from", "valid_until"}
_DATETIME_FIELDS = {"annotation_time", "annotation_expiry"}


def _is_date(value: object) -> bool:
    return isinstance(value, date) and not isinstance(value, datetime)


def _parse(problems: list[str], name: str, value: object, parser) -> Any:
    if not isinstance(value, str):
        problems.append(f"{name} must be an ISO 8601 string, not {value!r}")
        return None
    try:
        return parser(value)
    except ValueError:
        kind = "date" if parser is date.fromisoformat else "date and time"
        problems.append(f"{name} {value!r} is not an ISO 8601 {kind}")
        return None


def _text(problems: list[str], name: str, value: object, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{name} must be a non-empty string")
    elif len(value) > MAX_TEXT:
        problems.append(f"{name} is {len(value)} characters; at most {MAX_TEXT}")
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        problems.append(f"{name} contains control characters")
