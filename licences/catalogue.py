"""The catalogue of licence types (证照目录), kept as data: one folder per type.

Each folder under ``licences/types/`` holds

* ``type.json`` — code (the defining authority's credit code + three digits), names, the
  defining authority, which issuers may issue it (credit codes, or ``"*"``), the holder
  (organisation or person, and which data fields name and identify them), which field is the
  licence number, validity (``{"years": N}`` or ``{"long_term": true}``, optionally the data
  field that states the end date as an ISO date, ``until_field``, or as a term of operation
  such as ``2019年06月18日至2039年06月17日`` or ``…至长期``, ``term_field``, and the field the
  term must start on, ``term_start_field``, e.g. 成立日期) and the page size;
* ``schema.json`` — JSON Schema draft 2020-12 for the licence data, with Chinese titles;
* ``layout.json`` — the template :mod:`licences.layout` reads;
* ``example.json`` — a realistic (fictional) licence that validates.

A type is checked whole when the catalogue loads — schema, layout, example and the fields
type.json names — so a broken folder stops the service starting rather than the first
issuance. Data validation reports every field error at once, in Chinese and English, each at
its JSON path, because the people fixing a rejected bulk record need the whole list.

Schemas may use two formats of our own besides the standard ones: ``credit-code`` (GB 32100
check character) and ``resident-id`` (GB 11643 check character).

Dates
-----
A licence's issue date is the day it is issued (China time), and a field printed with the
issue date (发证日期) may only be left out or give that day — except in a conversion of a
legacy licence (存量转换, ``conversion=True``), whose stated 发证日期 (not after today) *is* its
issue date: printed, in the metadata, and the start of its validity. A period of N years
counts its first day: it ends on :func:`last_day` (the day before the anniversary). Validity
that has already ended is a field error, so an expired legacy licence is not issued as valid.
A field printed with the issuing authority (发证机关, 登记机关) may only be left out or name
the issuing department, as its seal and metadata do.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError

from ca.errors import InvalidRequest
from ca.names import validate_credit_code

from .identifiers import IdentifierError, validate_resident_id, validate_type_code
from .layout import PAGE_SIZES, LayoutError, Template
from .metadata import HolderCodeType
from .states import china_today

DEFAULT_PATH = Path(__file__).parent / "types"
FILES = ("type.json", "schema.json", "layout.json", "example.json")
HOLDER_KINDS = ("organisation", "person")


class CatalogueError(ValueError):
    """A licence type folder that cannot be loaded; the message names the file and the fault."""


class UnknownLicenceType(LookupError):
    """No licence type has the code asked for; ``known`` lists the codes there are."""

    def __init__(self, code: str, known: list[str]) -> None:
        self.code = code
        self.known = known
        super().__init__(f"no licence type {code!r}; known types: {', '.join(known) or 'none'}")


class IssuerNotAllowed(PermissionError):
    """The department is not among the type's issuing departments."""


@dataclass(frozen=True)
class FieldError:
    """One fault in licence data: where (a JSON path such as ``$.经营范围``), what, in Chinese
    and English, and the JSON Schema keyword that caught it."""

    path: str
    message_zh: str
    message_en: str
    validator: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message_zh": self.message_zh, "message_en": self.message_en,
                "validator": self.validator}


class LicenceDataError(ValueError):
    """Licence data that does not match its type's schema; ``errors`` holds every fault."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        listed = "; ".join(f"{e.path}: {e.message_zh} / {e.message_en}" for e in self.errors)
        super().__init__(f"licence data has {len(self.errors)} error(s): {listed}")


def _format_checker() -> FormatChecker:
    checker = FormatChecker()  # an instance: our formats stay out of jsonschema's global one

    @checker.checks("credit-code", raises=InvalidRequest)
    def _credit(value: object) -> bool:
        return not isinstance(value, str) or bool(validate_credit_code(value))

    @checker.checks("resident-id", raises=IdentifierError)
    def _resident(value: object) -> bool:
        return not isinstance(value, str) or bool(validate_resident_id(value))

    return checker


FORMAT_CHECKER = _format_checker()


@dataclass(frozen=True)
class Holder:
    """Who holds licences of a type, and which data fields say who they are."""

    kind: str
    name_field: str
    code_field: str
    code_type: HolderCodeType


@dataclass(frozen=True)
class Validity:
    """``years`` from the start of validity, or long-term (``years`` None). ``until_field``
    names a data field that states the end date (a 食品经营许可证 prints 有效期至);
    ``term_field`` one that states the whole term (a 营业执照's 营业期限, which may be 长期),
    ``term_start_field`` the field a term with a start must start on (成立日期)."""

    years: int | None
    until_field: str | None = None
    term_field: str | None = None
    term_start_field: str | None = None


_TERM_DATE = r"(\d{4})年(\d{2})月(\d{2})日"
_TERM = re.compile(rf"长期|{_TERM_DATE}至(?:{_TERM_DATE}|长期)")


def parse_term(text: str) -> tuple[date | None, date | None]:
    """(start, last day) of a term such as ``2019年06月18日至2039年06月17日``; ``长期`` (or
    ``…至长期``) has no last day, a bare ``长期`` no start either. ValueError for anything else,
    a date that does not exist included."""
    match = _TERM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a term like 2019年06月18日至2039年06月17日 or …至长期")
    parts = match.groups()
    start = date(*map(int, parts[:3])) if parts[0] else None
    end = date(*map(int, parts[3:])) if parts[3] else None  # a date that does not exist: ValueError
    if start and end and end < start:
        raise ValueError(f"the term {text} ends before it starts")
    return start, end


@dataclass(frozen=True)
class LicenceType:
    code: str
    name: str
    english_name: str
    defining_authority: str
    issuers: tuple[str, ...] | None  # None: any department ("*")
    holder: Holder
    licence_number_field: str
    validity: Validity
    page_size: str
    schema: Mapping[str, Any] = field(repr=False)
    template: Template = field(repr=False)
    example: Mapping[str, Any] = field(repr=False)
    folder: Path | None = None

    @property
    def defining_authority_code(self) -> str:
        return self.code[:18]

    @property
    def fields(self) -> dict[str, str]:
        """Field name -> its Chinese title, in schema order."""
        return {name: spec.get("title", name) for name, spec in self.schema.get("properties", {}).items()}

    @functools.cached_property
    def _validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.schema, format_checker=FORMAT_CHECKER)

    def errors(self, data: object) -> list[FieldError]:
        """Every fault of ``data`` against the schema, and every text the licence could not show
        truthfully (control or direction-override characters, characters the font lacks), sorted
        by path (empty: valid)."""
        found = [_field_error(e, self.schema) for e in self._validator.iter_errors(data)]
        if isinstance(data, Mapping):
            found += _text_errors(data, self.fields)
        return sorted(found, key=lambda e: (e.path, e.validator))

    @property
    def issue_date_fields(self) -> tuple[str, ...]:
        """The fields printed with the issue date when the data leaves them out (发证日期)."""
        return tuple(box.field for box in self.template.fields if box.default == "$issue_date")

    @property
    def issuer_name_fields(self) -> tuple[str, ...]:
        """The fields printed with the issuing department's name when the data leaves them out
        (发证机关, 登记机关)."""
        return tuple(box.field for box in self.template.fields if box.default == "$issuer_name")

    def validate(self, data: object, today: date | None = None, *, conversion: bool = False,
                 issuer_name: str | None = None) -> None:
        """Raise LicenceDataError listing every fault of ``data`` for a licence issued on
        ``today`` (China date; default today in China) by the department ``issuer_name`` (not
        checked when None); return None when it is valid.

        An issue-date field (发证日期) may be left out — the issue date is printed — or give
        that very date: a licence must not print another date than its metadata. In a
        ``conversion`` of a legacy licence it may give its historical issue date instead (see
        :meth:`issue_date`). An issuing-authority field may be left out or name ``issuer_name``."""
        today = today or china_today()
        errors = self.errors(data)
        if errors:
            raise LicenceDataError(errors)
        assert isinstance(data, Mapping)
        errors = self._issue_date_errors(data, today, conversion)
        if not errors:
            errors = self._validity_errors(data, self.issue_date(data, today, conversion=conversion), today)
        if issuer_name is not None:
            errors += self._issuer_name_errors(data, issuer_name)
        if errors:
            raise LicenceDataError(sorted(errors, key=lambda e: (e.path, e.validator)))

    def issue_date(self, data: Mapping[str, Any], today: date, *, conversion: bool = False) -> date:
        """The licence's issue date (and first day of validity) for valid ``data`` issued on
        ``today``: ``today`` — or, in a conversion, the historical 发证日期 the data states."""
        if conversion:
            for name in self.issue_date_fields:
                if data.get(name):
                    return date.fromisoformat(data[name])
        return today

    def without_carried_dates(self, data: Mapping[str, Any], previous: Mapping[str, Any]) -> dict[str, Any]:
        """``data`` for a new version, less an issue date carried over unchanged from the
        previous version's data (the new version prints its own issue date)."""
        out = dict(data)
        for name in self.issue_date_fields:
            if name in out and name in previous and out[name] == previous[name]:
                del out[name]
        return out

    def renewal_data(self, previous: Mapping[str, Any], today: date) -> dict[str, Any]:
        """The previous version's data for a renewal on ``today`` with no new data: the issue
        date left to the new version and, for a type whose data states its end date, the end
        of a fresh full period from ``today`` (:func:`last_day`; the document prints it)."""
        out = {name: value for name, value in previous.items() if name not in self.issue_date_fields}
        if self.validity.until_field and self.validity.years is not None:
            out[self.validity.until_field] = last_day(today, self.validity.years).isoformat()
        return out

    def may_issue(self, issuer_code: str) -> bool:
        return self.issuers is None or issuer_code in self.issuers

    def check_issuer(self, issuer_code: str) -> None:
        """Raise IssuerNotAllowed unless the department may issue this type."""
        if not self.may_issue(issuer_code):
            raise IssuerNotAllowed(f"department {issuer_code} may not issue {self.name} ({self.code}); "
                                   f"its issuers are {', '.join(self.issuers or ())}")

    def holder_of(self, data: Mapping[str, Any]) -> tuple[str, str, HolderCodeType]:
        """(holder name, holder code, code type) from valid licence data."""
        return data[self.holder.name_field], data[self.holder.code_field], self.holder.code_type

    def licence_number_of(self, data: Mapping[str, Any]) -> str:
        return str(data[self.licence_number_field])

    def valid_until(self, data: Mapping[str, Any], valid_from: date) -> date | None:
        """The last day of validity: the data's term (营业期限: its last day, None for 长期) or
        end-date field when the type has one and the data gives it, else the last day of the
        type's years from ``valid_from`` (:func:`last_day`); None: long-term."""
        if self.validity.term_field and data.get(self.validity.term_field):
            return parse_term(data[self.validity.term_field])[1]
        if self.validity.until_field and data.get(self.validity.until_field):
            return date.fromisoformat(data[self.validity.until_field])
        if self.validity.years is None:
            return None
        return last_day(valid_from, self.validity.years)

    def _issue_date_errors(self, data: Mapping[str, Any], today: date, conversion: bool) -> list[FieldError]:
        out = []
        stated = set()
        for name in self.issue_date_fields:
            value = data.get(name)
            if value in (None, ""):
                continue
            title = self.fields.get(name, name)
            if not conversion:
                if value != today.isoformat():
                    out.append(FieldError(
                        f"$.{name}", f"{title}应为签发当日{today.isoformat()}（可不填，由签发时填入）",
                        f"{name} must be the day of issue, {today.isoformat()} (leave it out and it is "
                        "filled in)", "issue-date"))
                continue
            stated.add(value)
            if date.fromisoformat(value) > today:  # well-formed: the schema checked it
                out.append(FieldError(
                    f"$.{name}", f"{title}{value}晚于今天{today.isoformat()}：存量证照的发证日期不能在将来",
                    f"{name} {value} is after today, {today.isoformat()}: a converted licence was issued "
                    "in the past", "issue-date"))
        if len(stated) > 1:
            out.append(FieldError("$", "各发证日期字段不一致", "the issue-date fields give different dates",
                                  "issue-date"))
        return out

    def _validity_errors(self, data: Mapping[str, Any], start: date, today: date) -> list[FieldError]:
        """For a licence whose validity starts on ``start`` (its issue date) and that is issued
        ``today``: a stated end date must not outlast the type's period from ``start``; a
        stated term must be a real one that started by ``start`` (on the start field, when the
        type names one); and the validity, however it comes, must not have ended."""
        out: list[FieldError] = []
        years = self.validity.years
        name = self.validity.until_field
        if name and data.get(name):
            title = self.fields.get(name, name)
            until = date.fromisoformat(data[name])
            if years is not None and until > last_day(start, years):
                latest = last_day(start, years)
                out.append(FieldError(
                    f"$.{name}", f"{title}超出该类证照{years}年的有效期上限（最迟{latest.isoformat()}）",
                    f"{name} is beyond the {years}-year validity of this licence type "
                    f"(latest {latest.isoformat()})", "validity"))
            elif until < today:
                out.append(_ended(name, title, until))
            return out
        name = self.validity.term_field
        if name and data.get(name):
            title = self.fields.get(name, name)
            try:
                begins, end = parse_term(data[name])
            except ValueError as exc:
                return [FieldError(f"$.{name}", f"{title}不是有效的期限（日期不存在或止日早于起日）",
                                   f"{name}: {exc}", "validity")]
            if end is not None and end < today:
                out.append(_ended(name, title, end))
            if begins is not None and begins > start:
                out.append(FieldError(
                    f"$.{name}", f"{title}起始日{begins.isoformat()}晚于发证日期{start.isoformat()}",
                    f"{name} starts on {begins.isoformat()}, after the issue date {start.isoformat()}",
                    "validity"))
            opening = self.validity.term_start_field
            if begins is not None and opening and data.get(opening) and data[opening] != begins.isoformat():
                out.append(FieldError(
                    f"$.{name}", f"{title}应自{self.fields.get(opening, opening)}{data[opening]}起算，"
                    f"而非{begins.isoformat()}",
                    f"{name} must start on {opening} {data[opening]}, not {begins.isoformat()}", "validity"))
            return out
        end = self.valid_until(data, start)
        if end is not None and end < today:
            field_name = next((f for f in self.issue_date_fields if data.get(f)), None)
            path = f"$.{field_name}" if field_name else "$"
            since, until = start.isoformat(), end.isoformat()
            out.append(FieldError(
                path, f"自发证日期{since}起{years}年的有效期已于{until}届满，不能签发为有效证照",
                f"the {years}-year validity from the issue date {since} ended on {until}: "
                "an expired licence is not issued as valid", "validity"))
        return out

    def _issuer_name_errors(self, data: Mapping[str, Any], issuer_name: str) -> list[FieldError]:
        out = []
        for name in self.issuer_name_fields:
            value = data.get(name)
            if value not in (None, "") and value != issuer_name:
                title = self.fields.get(name, name)
                out.append(FieldError(
                    f"$.{name}", f"{title}应为签发部门“{issuer_name}”（可不填，由签发时填入）",
                    f"{name} must name the issuing department, {issuer_name} (leave it out and it is "
                    "filled in)", "issuer-name"))
        return out


def _ended(name: str, title: str, end: date) -> FieldError:
    return FieldError(f"$.{name}", f"{title}已于{end.isoformat()}届满，不能签发为有效证照",
                      f"{name} ended on {end.isoformat()}: an expired licence is not issued as valid",
                      "validity")


def last_day(start: date, years: int) -> date:
    """The last day of a period of ``years`` years whose first day is ``start``: the day before
    its anniversary, the anniversary of 29 February in a common year being 1 March. A
    five-year licence issued on 2024-05-20 is valid to 2029-05-19; one issued on 2024-02-29 to
    2029-02-28, like one issued on 2024-03-01 (not a day less)."""
    year = start.year + years
    try:
        anniversary = start.replace(year=year)
    except ValueError:  # 29 February, and the year has none
        anniversary = date(year, 3, 1)
    return anniversary - timedelta(days=1)


#: Characters no licence value may hold: C0/C1 controls (a trailing "\n" slips past JSON Schema
#: patterns, whose "$" also matches before a final newline), zero-width and bidi overrides.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _text_errors(data: Mapping[str, Any], titles: Mapping[str, str]) -> list[FieldError]:
    from pages.fonts import cjk_face

    face = cjk_face()
    out = []
    for name, value in data.items():
        if not isinstance(value, str):
            continue
        title = titles.get(name, name)
        if _INVISIBLE.search(value):
            out.append(FieldError(f"$.{name}", f"“{title}”含有控制字符或不可见字符",
                                  f"{title} contains control or invisible characters", "text"))
        elif not value.strip():
            out.append(FieldError(f"$.{name}", f"“{title}”不能为空白", f"{title} must not be blank", "text"))
        missing = face.missing(value)
        if missing and not _INVISIBLE.search(missing):
            listed = " ".join(f"U+{ord(c):04X}" for c in missing)
            out.append(FieldError(f"$.{name}", f"“{title}”含有无法显示的字符 {listed}",
                                  f"{title} holds characters the licence font cannot show: {listed}", "font"))
    return out


# -- error translation -------------------------------------------------------------------------

_TYPES_ZH = {"string": "字符串", "integer": "整数", "number": "数字", "object": "对象", "array": "数组",
             "boolean": "布尔值", "null": "空值"}
_FORMATS_ZH = {"date": "日期（YYYY-MM-DD）", "date-time": "日期时间", "email": "电子邮箱", "uri": "网址",
               "credit-code": "统一社会信用代码（GB 32100，含校验位）",
               "resident-id": "居民身份证号码（GB 11643，含校验位）"}


def _title(schema: Mapping[str, Any], error: ValidationError, prop: str | None = None) -> str:
    if prop is not None:
        spec = error.schema.get("properties", {}).get(prop, {}) if isinstance(error.schema, Mapping) else {}
        return spec.get("title", prop)
    if isinstance(error.schema, Mapping) and "title" in error.schema and error.path:
        return error.schema["title"]
    return str(error.path[-1]) if error.path else "数据"


def _field_error(error: ValidationError, schema: Mapping[str, Any]) -> FieldError:
    kind = str(error.validator)
    value = error.validator_value
    path = _json_path(error.absolute_path)
    if kind == "required":
        prop = _quoted(error.message)
        title = _title(schema, error, prop)
        return FieldError(_child(path, prop), f"缺少必填项“{title}”", f"{prop} is required", kind)
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {}))) \
            if isinstance(error.instance, Mapping) else []
        names = "、".join(extra)
        return FieldError(path, f"不允许的字段：{names}", f"unknown field(s): {', '.join(extra)}", kind)
    title = _title(schema, error)
    zh, en = _translate(kind, value, error, title)
    return FieldError(path, zh, en, kind)


def _translate(kind: str, value: Any, error: ValidationError, title: str) -> tuple[str, str]:
    instance = error.instance
    if kind == "type":
        wanted = value if isinstance(value, list) else [value]
        return (f"{title}应为{'或'.join(_TYPES_ZH.get(t, t) for t in wanted)}",
                f"must be of type {' or '.join(wanted)}, not {type(instance).__name__}")
    if kind == "pattern":
        return f"{title}格式不正确（应匹配 {value}）", f"{instance!r} does not match the pattern {value}"
    if kind == "format":
        detail = f"：{error.cause}" if error.cause else ""
        return (f"{title}不是有效的{_FORMATS_ZH.get(value, value)}{detail}",
                f"{instance!r} is not a valid {value}" + (f" ({error.cause})" if error.cause else ""))
    if kind == "enum":
        return (f"{title}应为以下之一：{'、'.join(map(str, value))}",
                f"{instance!r} is not one of {', '.join(map(str, value))}")
    if kind == "const":
        return f"{title}应为“{value}”", f"must be {value!r}"
    if kind == "maxLength":
        return (f"{title}最多{value}个字符（现有{len(instance)}个）",
                f"at most {value} characters, not {len(instance)}")
    if kind == "minLength":
        return f"{title}至少{value}个字符", f"at least {value} characters, not {len(instance)}"
    if kind == "minimum":
        return f"{title}不能小于{value}", f"{instance!r} is less than the minimum {value}"
    if kind == "maximum":
        return f"{title}不能大于{value}", f"{instance!r} is more than the maximum {value}"
    if kind in ("exclusiveMinimum", "exclusiveMaximum"):
        side = "大于" if kind == "exclusiveMinimum" else "小于"
        return f"{title}必须{side}{value}", f"{instance!r} violates {kind} {value}"
    return f"{title}不符合要求：{error.message}", error.message


def _quoted(message: str) -> str:
    """The property name jsonschema quotes at the start of a 'required' message."""
    head = message.rsplit(" is a required property", 1)[0]
    try:
        value = ast.literal_eval(head)
    except (ValueError, SyntaxError):
        return head
    return str(value)


def _json_path(parts) -> str:
    """A JSONPath like ``$.经营范围`` or ``$.items[2]`` (jsonschema quotes non-ASCII names)."""
    path = "$"
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _child(path, str(part))
    return path


def _child(path: str, prop: str) -> str:
    return f"{path}.{prop}" if prop.isidentifier() else f"{path}[{json.dumps(prop, ensure_ascii=False)}]"


# -- loading -----------------------------------------------------------------------------------

def _read(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogueError(f"{path}: missing (a type folder holds {', '.join(FILES)})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: not valid JSON: {exc}") from None


def _need(spec: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    if key not in spec:
        raise CatalogueError(f"{where}: missing {key!r}")
    value = spec[key]
    if not isinstance(value, kind) or (isinstance(value, str) and not value):
        raise CatalogueError(f"{where}: {key!r} has the wrong form: {value!r}")
    return value


def load_type(folder: Path) -> LicenceType:
    """One licence type from its folder; CatalogueError names what is wrong."""
    spec = _read(folder, "type.json")
    where = str(folder / "type.json")
    if not isinstance(spec, dict):
        raise CatalogueError(f"{where}: must be a JSON object")
    code = _need(spec, "code", where)
    try:
        validate_type_code(code)
    except IdentifierError as exc:
        raise CatalogueError(f"{where}: {exc}") from None

    issuers_spec = _need(spec, "issuers", where, (str, list))
    if issuers_spec == "*":
        issuers = None
    elif isinstance(issuers_spec, list) and issuers_spec:
        try:
            issuers = tuple(validate_credit_code(c) for c in issuers_spec)
        except InvalidRequest as exc:
            raise CatalogueError(f"{where}: issuers: {exc}") from None
    else:
        raise CatalogueError(f"{where}: issuers must be \"*\" or a non-empty list of credit codes")

    h = _need(spec, "holder", where, dict)
    if h.get("kind") not in HOLDER_KINDS:
        raise CatalogueError(f"{where}: holder.kind must be one of {', '.join(HOLDER_KINDS)}")
    try:
        holder = Holder(h["kind"], _need(h, "name_field", where), _need(h, "code_field", where),
                        HolderCodeType(_need(h, "code_type", where)))
    except ValueError:
        raise CatalogueError(f"{where}: holder.code_type must be one of "
                             f"{', '.join(t.value for t in HolderCodeType)}") from None

    v = _need(spec, "validity", where, dict)
    fields = (v.get("until_field"), v.get("term_field"), v.get("term_start_field"))
    if v.get("long_term") is True and "years" not in v:
        validity = Validity(None, *fields)
    elif isinstance(v.get("years"), int) and not isinstance(v["years"], bool) and 0 < v["years"] <= 100 \
            and "long_term" not in v:
        validity = Validity(v["years"], *fields)
    else:
        raise CatalogueError(f"{where}: validity must be {{\"years\": N}} or {{\"long_term\": true}}")
    if fields[0] and fields[1]:
        raise CatalogueError(f"{where}: validity names an until_field or a term_field, not both")
    if fields[2] and not fields[1]:
        raise CatalogueError(f"{where}: validity names a term_start_field without a term_field")

    page_size = _need(spec, "page_size", where)
    if page_size not in PAGE_SIZES:
        raise CatalogueError(f"{where}: page_size {page_size!r} is not one of {', '.join(PAGE_SIZES)}")

    schema = _read(folder, "schema.json")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise CatalogueError(f"{folder / 'schema.json'}: not a valid draft 2020-12 schema: "
                             f"{exc.message}") from None
    try:
        template = Template.from_json(_read(folder, "layout.json"), page_size, str(folder / "layout.json"))
    except LayoutError as exc:
        raise CatalogueError(str(exc)) from None

    licence_type = LicenceType(
        code=code, name=_need(spec, "name", where), english_name=_need(spec, "english_name", where),
        defining_authority=_need(spec, "defining_authority", where), issuers=issuers, holder=holder,
        licence_number_field=_need(spec, "licence_number_field", where), validity=validity,
        page_size=page_size, schema=schema, template=template, example=_read(folder, "example.json"),
        folder=folder)
    _check_consistent(licence_type, where)
    return licence_type


def _check_consistent(t: LicenceType, where: str) -> None:
    known = set(t.fields)
    named = [t.holder.name_field, t.holder.code_field, t.licence_number_field]
    named += [f for f in (t.validity.until_field, t.validity.term_field, t.validity.term_start_field) if f]
    named += [f.field for f in t.template.fields]
    unknown = sorted({n for n in named if n not in known})
    if unknown:
        raise CatalogueError(f"{where}: names field(s) the schema lacks: {', '.join(unknown)}")
    required = set(t.schema.get("required", ()))
    for name in (t.holder.name_field, t.holder.code_field, t.licence_number_field):
        if name not in required:
            raise CatalogueError(f"{where}: {name} identifies the holder or licence, so the schema "
                                 "must require it")
    errors = t.errors(t.example)
    if errors:
        raise CatalogueError(f"{t.folder}/example.json does not validate: " +
                             "; ".join(f"{e.path}: {e.message_en}" for e in errors))


@dataclass(frozen=True)
class Catalogue:
    """The licence types a service knows, by code."""

    types: Mapping[str, LicenceType]

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> Catalogue:
        """Every type folder under ``path`` (default: the types shipped with zhengyin)."""
        root = Path(path)
        if not root.is_dir():
            raise CatalogueError(f"{root}: no such catalogue directory")
        types: dict[str, LicenceType] = {}
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
            licence_type = load_type(folder)
            if licence_type.code in types:
                raise CatalogueError(f"{folder}: code {licence_type.code} is also used by "
                                     f"{types[licence_type.code].folder}")
            types[licence_type.code] = licence_type
        if not types:
            raise CatalogueError(f"{root}: no licence types (one folder per type)")
        return cls(types)

    def get(self, code: str) -> LicenceType:
        try:
            return self.types[code]
        except (KeyError, TypeError):
            raise UnknownLicenceType(str(code), sorted(self.types)) from None

    def __iter__(self) -> Iterator[LicenceType]:
        return iter(self.types.values())

    def __len__(self) -> int:
        return len(self.types)
