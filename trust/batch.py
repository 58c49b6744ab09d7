"""Bulk conversion of legacy licences (存量证照): a file of existing records in, licences out.

A department converting its paper-era register sends one file — JSONL (one
``{"source_id": "...", "data": {...}}`` per line) or CSV (a ``source_id`` column and one column
per field, see :func:`csv_records`) — and every record becomes a sealed OFD and PDF licence in the
library, issued through the same :meth:`licences.issuance.LicenceDesk.issue` as a single licence.

Why it is built the way it is:

* **Exactly once, also after kill -9.** The library's unique rule on (issuer, type, source_id)
  is the guard: a record whose source ID is recorded is never issued again. A re-run asks the
  library once per chunk of source IDs which are recorded already and issues only the others;
  a race with another converter (or an orphan of a killed run) ends in ``LicenceExists`` for the
  source ID, which counts as "already issued". A kill between a licence's registry commit and
  the report line loses only the report line: the re-run reports the record as already issued.
* **Recorded in groups.** A worker issues :data:`GROUP_SIZE` records, makes their documents
  durable with one file-system sync, then commits their rows (each with its event and audit
  entry) in one transaction: one commit and one sync per group instead of two fsyncs, a
  directory sync and two commits per licence. The rule of the library still holds — no row
  without its documents —, and a kill before the commit leaves only unreferenced files: the
  group's records are not recorded and the re-run issues them anew.
* **Streaming.** The file is read one record at a time (one pass first to check it is UTF-8 and
  to count lines for the progress bar); at most a few chunks per worker are in flight, so
  100,000 records cost the memory of their source IDs (to find duplicates within the file), not
  of their data.
* **Worker processes.** Issuing is CPU-bound Python (layout, fonts, QR, two seal signatures):
  each worker opens its own :class:`trust.domain.TrustDomain` on the home and issues the chunks
  it is given; a worker dies with the process that started it (``PR_SET_PDEATHSIG``), so a
  killed run leaves nothing issuing behind it.
* **A bad record is a line in the report, not a crash.** Bad JSON, a missing or duplicate source
  ID, a cell of the wrong type and every schema field error (in Chinese and English) are
  reported with the record's line; what is wrong with the whole run (unknown type, a department
  without a usable licence seal, a file that is not UTF-8) stops it before anything is issued.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.text import record_text

#: Records handed to a worker at once: one library query finds which of them are recorded.
CHUNK_SIZE = 32
#: Licences recorded together: their documents made durable with one file-system sync and
#: their rows committed in one transaction (a kill loses at most the group being made).
GROUP_SIZE = 8
#: A JSONL line or CSV field longer than this is a rejected record, not a memory problem.
MAX_LINE_BYTES = 1 << 20
MAX_SOURCE_ID_CHARS = 200
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


class BatchInputError(ValueError):
    """The input file (or an option about it) cannot be used at all; nothing was issued."""


class BatchAborted(RuntimeError):
    """A worker met an error that is not about one record (the database, the seal, a bug): the
    run stopped; what was issued stays issued and a re-run resumes. ``refused`` says whether it
    was a state of the home (a seal suspended meanwhile) rather than a fault."""

    def __init__(self, message: str, refused: bool = False):
        super().__init__(message, refused)  # both in args: it crosses back from the worker by pickle
        self.message, self.refused = message, refused

    def __str__(self) -> str:
        return self.message


# -- records and their outcomes ---------------------------------------------------------------

def reason(path: str, zh: str, en: str, kind: str) -> dict[str, str]:
    """One reason a record was rejected, in the shape of a licence field error."""
    return {"path": path, "message_zh": zh, "message_en": en, "validator": kind}


@dataclass(frozen=True)
class SourceRecord:
    """A well-formed input record: where it is in the file, its source ID and its licence data."""

    line: int
    source_id: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What became of one record: ``issued``, ``already`` (recorded before) or ``rejected``."""

    line: int
    source_id: str | None
    status: str
    identifier: str | None = None
    reasons: tuple[dict[str, str], ...] = ()


@dataclass
class BatchSummary:
    read: int = 0
    issued: int = 0
    already: int = 0
    rejected: int = 0
    elapsed: float = 0.0
    report: str = ""
    aborted: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> None:
        self.read += 1
        if outcome.status == "issued":
            self.issued += 1
        elif outcome.status == "already":
            self.already += 1
        else:
            self.rejected += 1

    def as_dict(self) -> dict[str, Any]:
        out = {"read": self.read, "issued": self.issued, "already_issued": self.already,
               "rejected": self.rejected, "elapsed_seconds": round(self.elapsed, 3), "report": self.report}
        if self.aborted:
            out["aborted"] = self.aborted
        return out | self.extra


# -- reading the input ------------------------------------------------------------------------

def input_format(path: Path) -> str:
    """``"jsonl"`` or ``"csv"``, by the file's suffix."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BatchInputError(f"{path}: the input must be a .jsonl (or .ndjson) or .csv file, "
                              f"not {path.suffix or 'a file without a suffix'}")
    return kind


def survey(path: Path) -> int:
    """The number of lines of ``path``, after checking in one streaming pass that it is a
    readable, non-empty UTF-8 file: a legacy export in GB 18030 is refused before anything
    is issued, not turned into thousands of rejected records."""
    if path.is_dir():
        raise BatchInputError(f"{path} is a directory, not a JSONL or CSV file")
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise BatchInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines, offset, content, last = 0, 0, False, b""
    with handle:
        while True:
            try:
                chunk = handle.read(1 << 20)
            except OSError as exc:
                raise BatchInputError(f"cannot read {path}: {exc.strerror or exc}") from None
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                at = max(exc.start, 0)
                line = lines + chunk[:at].count(b"\n") + 1
                raise BatchInputError(
                    f"{path} is not UTF-8 (an invalid byte at line {line}, offset {offset + at}); "
                    "exports of older systems are often GB 18030: convert with "
                    "`iconv -f GB18030 -t UTF-8`") from None
            if not chunk:
                break
            content = content or bool(text.replace("\ufeff", "").strip())
            lines += chunk.count(b"\n")
            offset += len(chunk)
            last = chunk
    if not content:
        raise BatchInputError(f"{path} is empty: it holds no records")
    return lines + (0 if last.endswith(b"\n") else 1)


def _source_id(value: object) -> str:
    """A source record ID as the library will store it (stripped text); ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # legacy registers number their records
    return record_text("source record ID", value, MAX_SOURCE_ID_CHARS, ValueError)


def _bad_source_id(line: int, value: object, exc: ValueError) -> Outcome:
    shown = value if isinstance(value, str) and len(value) <= MAX_SOURCE_ID_CHARS else None
    return Outcome(line, shown, "rejected", reasons=(reason(
        "$.source_id", "源记录编号（source_id）缺失或无效：须为不超过200个字符、不含控制字符的非空文本",
        str(exc), "source_id"),))


def jsonl_records(path: Path) -> Iterator[SourceRecord | Outcome]:
    """Each non-blank line of a JSONL file as a record, or as a rejected Outcome saying why.

    A line is one object ``{"source_id": "...", "data": {...}}`` and nothing else; a source ID
    may also be a JSON integer (legacy registers number their records), stored as its text."""
    with path.open("rb") as handle:
        line = 0
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            line += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := handle.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                yield Outcome(line, None, "rejected", reasons=(reason(
                    "$", f"该行超过{MAX_LINE_BYTES}字节", f"the line is longer than {MAX_LINE_BYTES} bytes",
                    "line"),))
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield Outcome(line, None, "rejected", reasons=(reason(
                    "$", "该行不是UTF-8编码", "the line is not UTF-8", "encoding"),))
                continue
            if line == 1:
                text = text.removeprefix("\ufeff")
            if text.strip():
                yield _jsonl_record(line, text)


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _jsonl_record(line: int, text: str) -> SourceRecord | Outcome:
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        return Outcome(line, None, "rejected", reasons=(reason(
            "$", f"该行不是有效的JSON：{exc}", f"the line is not valid JSON: {exc}", "json"),))
    if not isinstance(value, dict):
        return Outcome(line, None, "rejected", reasons=(reason(
            "$", '该行应为一个JSON对象 {"source_id": …, "data": {…}}',
            'the line must be one JSON object {"source_id": ..., "data": {...}}', "json"),))
    try:
        source_id = _source_id(value.get("source_id"))
    except ValueError as exc:
        return _bad_source_id(line, value.get("source_id"), exc)
    problems = []
    extra = sorted(set(value) - {"source_id", "data"})
    if extra:
        problems.append(reason("$", f"不允许的键：{'、'.join(extra)}（只能有 source_id 和 data）",
                               f"unknown key(s) {', '.join(extra)} (only source_id and data)", "json"))
    data = value.get("data")
    if not isinstance(data, dict):
        problems.append(reason("$.data", "缺少证照数据对象 data",
                               "data must be a JSON object of licence data", "json"))
    if problems:
        return Outcome(line, source_id, "rejected", reasons=tuple(problems))
    return SourceRecord(line, source_id, data)


# -- CSV --------------------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE, _FALSE = {"true", "1", "yes", "是"}, {"false", "0", "no", "否"}


class _CellError(ValueError):
    def __init__(self, zh: str, en: str):
        self.zh, self.en = zh, en
        super().__init__(en)


def _json_type(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return str(kind)


def _column_spec(schema: Mapping[str, Any], column: str) -> Mapping[str, Any] | None:
    """The schema of the field a CSV column fills: a top-level property, or ``a.b`` for the
    property ``b`` of the object-valued property ``a``."""
    properties = schema.get("properties", {})
    if column in properties:
        return properties[column]
    node: Mapping[str, Any] = schema
    for part in column.split("."):
        child = node.get("properties", {}).get(part) if _json_type(node) == "object" else None
        if not isinstance(child, Mapping):
            return None
        node = child
    return node


def convert_cell(value: str, spec: Mapping[str, Any], title: str) -> Any:
    """A CSV cell as the JSON value its schema type asks for (``_CellError`` when it is not one)."""
    kind = _json_type(spec)
    if kind == "string":
        return value
    text = value.strip()
    if kind == "integer":
        if _INTEGER.fullmatch(text):
            return int(text)
        raise _CellError(f"{title}应为整数", f"{value!r} is not an integer")
    if kind == "number":
        if _INTEGER.fullmatch(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
        raise _CellError(f"{title}应为数字", f"{value!r} is not a number")
    if kind == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _CellError(f"{title}应为是/否（true/false）", f"{value!r} is not true or false")
    if kind in ("array", "object"):
        try:
            parsed = json.loads(text, parse_constant=_no_constants)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, list if kind == "array" else dict):
            return parsed
        what = "JSON数组" if kind == "array" else "JSON对象"
        raise _CellError(f"{title}应为{what}", f"{value!r} is not a JSON {kind}")
    return value


@dataclass(frozen=True)
class CsvLayout:
    """The header of a CSV input: where ``source_id`` is and which field each other column fills."""

    source_column: int
    columns: tuple[tuple[int, tuple[str, ...], Mapping[str, Any]], ...]  # index, path, schema
    width: int

    @classmethod
    def from_header(cls, header: list[str], schema: Mapping[str, Any], path: Path) -> CsvLayout:
        names = [h.strip() for h in header]
        if "source_id" not in names:
            raise BatchInputError(f"{path}: the first row must be the header, with a source_id column "
                                  f"(found: {', '.join(names) or 'nothing'})")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise BatchInputError(f"{path}: column(s) {', '.join(repeated)} appear more than once")
        columns, unknown = [], []
        for index, name in enumerate(names):
            if name == "source_id":
                continue
            spec = _column_spec(schema, name)
            if spec is None:
                unknown.append(name or f"(empty, column {index + 1})")
                continue
            parts = (name,) if name in schema.get("properties", {}) else tuple(name.split("."))
            columns.append((index, parts, spec))
        if unknown:
            known = ", ".join(schema.get("properties", {}))
            raise BatchInputError(f"{path}: column(s) {', '.join(unknown)} are not fields of this "
                                  f"licence type (its fields: {known}; a nested field is a dotted name "
                                  "such as a.b)")
        paths = [parts for _, parts, _ in columns]
        for parts in paths:
            for other in paths:
                if other != parts and other[:len(parts)] == parts:
                    raise BatchInputError(f"{path}: column {'.'.join(parts)} and column {'.'.join(other)} "
                                          "both fill the same field")
        return cls(names.index("source_id"), tuple(columns), len(names))

    def record(self, line: int, row: list[str], licence_type) -> SourceRecord | Outcome:
        raw_id = row[self.source_column] if self.source_column < len(row) else None
        try:
            source_id = _source_id(raw_id)
        except ValueError as exc:
            return _bad_source_id(line, raw_id, exc)
        if len(row) != self.width:
            return Outcome(line, source_id, "rejected", reasons=(reason(
                "$", f"该行有{len(row)}列，表头有{self.width}列",
                f"the row has {len(row)} cells, the header {self.width}", "csv"),))
        data: dict[str, Any] = {}
        problems, flagged = [], set()
        for index, parts, spec in self.columns:
            cell = row[index]
            if cell == "":
                continue  # an empty cell: the field is absent
            path = "$." + ".".join(parts)
            try:
                value = convert_cell(cell, spec, str(spec.get("title", parts[-1])))
            except _CellError as exc:
                problems.append(reason(path, exc.zh, exc.en, "csv"))
                flagged.add(path)
                continue
            target = data
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
        if problems:
            # The other faults too, so that one round of corrections is enough; a field whose
            # cell could not be read is not also reported as missing.
            rest = [e.as_dict() for e in licence_type.errors(data)
                    if e.path not in flagged]
            return Outcome(line, source_id, "rejected", reasons=tuple(problems + rest))
        return SourceRecord(line, source_id, data)


def csv_records(path: Path, licence_type) -> Iterator[SourceRecord | Outcome]:
    """Each row of a CSV file after its header as a record, or as a rejected Outcome.

    The convention: a header row naming a ``source_id`` column and one column per top-level
    field of the type's data (its name in the schema, e.g. ``统一社会信用代码``); a field inside
    an object-valued field is a dotted name (``地址.省``); an array- or object-valued field may
    also be one cell of JSON text. An empty cell means the field is absent. Cells are typed as
    the JSON Schema says: integers and numbers as decimal text, booleans as true/false (也可
    是/否, 1/0). A record's line is the file line its row starts on (the header is line 1).
    """
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        layout: CsvLayout | None = None
        consumed = 0
        while True:
            start = consumed + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                consumed = reader.line_num
                if layout is None:
                    raise BatchInputError(f"{path}: the header row cannot be read: {exc}") from None
                yield Outcome(start, None, "rejected", reasons=(reason(
                    "$", f"该行不是有效的CSV：{exc}", f"the row is not valid CSV: {exc}", "csv"),))
                continue
            consumed = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if layout is None:
                layout = CsvLayout.from_header(row, licence_type.schema, path)
                continue
            yield layout.record(start, row, licence_type)


def read_records(path: Path, licence_type) -> Iterator[SourceRecord | Outcome]:
    """The file's records in order; a source ID seen before in the file is a rejected record
    (which of two differing records is the real one is for a person to decide)."""
    kind = input_format(path)
    records = jsonl_records(path) if kind == "jsonl" else csv_records(path, licence_type)
    first_seen: dict[str, int] = {}
    for item in records:
        if isinstance(item, SourceRecord):
            earlier = first_seen.setdefault(item.source_id, item.line)
            if earlier != item.line:
                yield Outcome(item.line, item.source_id, "rejected", reasons=(reason(
                    "$.source_id", f"源记录编号重复（首次出现在第{earlier}行）",
                    f"duplicate source_id (first at line {earlier})", "duplicate"),))
                continue
        yield item


# -- issuing ----------------------------------------------------------------------------------

def _record_faults() -> tuple[type[BaseException], ...]:
    """Errors that are about one record's data: that record is rejected, the run goes on."""
    from licences.catalogue import LicenceDataError
    from licences.identifiers import IdentifierError
    from licences.layout import LayoutError
    from licences.lifecycle import LicenceExists, LicenceRequestError
    from licences.metadata import MetadataError
    from licences.qr_payload import QrPayloadError
    from pages.fonts import MissingGlyphs
    from pages.model import PageModelError

    return (LicenceDataError, MetadataError, LayoutError, QrPayloadError, PageModelError, MissingGlyphs,
            IdentifierError, LicenceRequestError, LicenceExists)


_FAULT_ZH = {
    "MetadataError": "证照元数据不符合规则",
    "LayoutError": "证照版面无法容纳该数据",
    "QrPayloadError": "无法生成二维码内容",
    "PageModelError": "无法生成证照页面",
    "MissingGlyphs": "含有证照字体无法显示的字符",
    "IdentifierError": "证照标识无效",
    "LicenceRequestError": "请求无效",
    "LicenceExists": "证照库中已有冲突的证照",
}


def _fault_reasons(exc: BaseException) -> tuple[dict[str, str], ...]:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and all(hasattr(e, "as_dict") for e in errors):
        return tuple(e.as_dict() for e in errors)
    name = type(exc).__name__
    return (reason("$", f"{_FAULT_ZH.get(name, '无法签发')}：{exc}", str(exc), name),)


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class Converter:
    """Issues chunks of records for one type and issuer on one home (one per worker process)."""

    def __init__(self, home: str, type_code: str, issuer_code: str, *, out: str | None = None,
                 actor: str | None = None):
        from trust.domain import TrustDomain

        self.domain = TrustDomain.open(home, actor=actor)
        self.desk = self.domain.licence_desk
        self.type_code, self.issuer_code = type_code, issuer_code
        self.out = Path(out) if out else None
        self.faults = _record_faults()

    def close(self) -> None:
        self.domain.close()

    def recorded(self, source_ids: Iterable[str]) -> dict[str, str]:
        """source ID -> identifier for those of ``source_ids`` already in the library (one query)."""
        return self.domain.licences.taken(self.type_code, self.issuer_code, source_ids=source_ids).converted

    def convert(self, chunk: list[SourceRecord]) -> list[Outcome]:
        """Issue the chunk's records not recorded yet, :data:`GROUP_SIZE` at a time (each group's
        documents made durable together and its rows committed in one transaction)."""
        done = self.recorded(r.source_id for r in chunk)
        outcomes: dict[int, Outcome] = {}
        todo = []
        for position, record in enumerate(chunk):
            if record.source_id in done:
                outcomes[position] = self._already(record, done[record.source_id])
            else:
                todo.append((position, record))
        for start in range(0, len(todo), GROUP_SIZE):
            group = todo[start:start + GROUP_SIZE]
            results = self.desk.issue_group(self.type_code, [(r.source_id, r.data) for _, r in group],
                                            issuer_code=self.issuer_code, faults=self.faults)
            for (position, record), result in zip(group, results, strict=True):
                outcomes[position] = self._outcome(record, result)
        return [outcomes[position] for position in range(len(chunk))]

    def _outcome(self, record: SourceRecord, result: Any) -> Outcome:
        from licences.lifecycle import LicenceExists

        if isinstance(result, LicenceExists):
            # Another converter (or an orphan of a killed run) may have issued this very
            # record since the chunk's query: then its licence number is taken by itself.
            existing = result.existing if result.field == "source_id" else \
                self.recorded([record.source_id]).get(record.source_id)
            if result.field == "source_id" or existing is not None:
                return self._already(record, existing)
        if isinstance(result, BaseException):
            return Outcome(record.line, record.source_id, "rejected", reasons=_fault_reasons(result))
        if self.out is not None:
            self._write(result.identifier, result.ofd, result.pdf)
        return Outcome(record.line, record.source_id, "issued", result.identifier)

    def _already(self, record: SourceRecord, identifier: str | None) -> Outcome:
        if self.out is not None and identifier:
            # A run killed between recording a licence and writing its files: write them now.
            stem = identifier.replace(".", "_")
            if not ((self.out / f"{stem}.ofd").exists() and (self.out / f"{stem}.pdf").exists()):
                library = self.domain.licences
                self._write(identifier, library.document(identifier, "ofd"),
                            library.document(identifier, "pdf"))
        return Outcome(record.line, record.source_id, "already", identifier)

    def _write(self, identifier: str, ofd: bytes, pdf: bytes) -> None:
        stem = identifier.replace(".", "_")
        _write_atomic(self.out / f"{stem}.ofd", ofd)
        _write_atomic(self.out / f"{stem}.pdf", pdf)


# -- worker processes -------------------------------------------------------------------------

_converter: Converter | None = None
_settled = False


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this worker when the process that started it dies (kill -9 included)."""
    import signal

    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before we asked
        os._exit(1)


def _start_worker(parent: int, home: str, type_code: str, issuer_code: str, out: str | None,
                  actor: str | None) -> None:
    global _converter
    _die_with_parent(parent)
    _converter = Converter(home, type_code, issuer_code, out=out, actor=actor)


def _convert_in_worker(chunk: list[SourceRecord]) -> list[Outcome]:
    from seals.lifecycle import SealRefused

    assert _converter is not None
    try:
        outcomes = _converter.convert(chunk)
    except Exception as exc:  # not about one record: stop the run, say what it was
        first = (str(exc).splitlines() or [""])[0][:500]  # a database error carries its SQL below
        raise BatchAborted(f"{type(exc).__name__}: {first}", isinstance(exc, SealRefused)) from None
    _settle_memory()
    return outcomes


def _settle_memory() -> None:
    """After a worker's first chunk, keep what it left behind out of the garbage collector's way.

    By then the worker holds everything it keeps for the run — the parsed font, the seal and
    its certificates, compiled SQL, the catalogue — over a hundred thousand objects that live as
    long as the process. Python's full collections walk all of them again and again (about a
    fifth of a millisecond per licence); ``gc.freeze`` moves them to a generation that is never
    walked, so collections look only at what issuing makes and drops. Done in worker processes
    only: they exist for the run, so nothing frozen there would ever have been freed anyway."""
    global _settled
    if _settled:
        return
    import gc

    gc.collect()
    gc.freeze()
    _settled = True


def _chunks(items: Iterator[SourceRecord | Outcome], on_rejected: Callable[[Outcome], None],
            size: int) -> Iterator[list[SourceRecord]]:
    chunk: list[SourceRecord] = []
    for item in items:
        if isinstance(item, Outcome):
            on_rejected(item)
            continue
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class BatchRequest:
    path: Path
    home: str
    type_code: str
    issuer_code: str
    workers: int
    report: Path
    out: Path | None = None
    actor: str | None = None
    chunk_size: int = CHUNK_SIZE


def default_report(path: Path) -> Path:
    """Where the report goes when none is named: next to the input, ``<stem>.report.jsonl``."""
    return path.with_name(f"{path.stem}.report.jsonl")


def preflight(request: BatchRequest) -> int:
    """Everything that would fail every record, checked before the first one: the file, the
    type, the issuer, the licence seal, the report and output paths. Returns the line count."""
    from trust.domain import TrustDomain

    if request.path.is_dir():
        raise BatchInputError(f"{request.path} is a directory, not a JSONL or CSV file")
    input_format(request.path)
    lines = survey(request.path)
    with contextlib.suppress(OSError):
        if request.report.resolve() == request.path.resolve():
            raise BatchInputError(f"the report {request.report} would overwrite the input")
    if request.report.is_dir():
        raise BatchInputError(f"the report {request.report} is a directory; name a file")
    if request.out is not None:
        try:
            request.out.mkdir(parents=True, exist_ok=True)
            probe = request.out / ".zhengyin-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise BatchInputError(f"cannot write into {request.out}: {exc.strerror or exc}") from None
    domain = TrustDomain.open(request.home)
    try:
        licence_type = domain.licence_desk.catalogue.get(request.type_code)
        licence_type.check_issuer(request.issuer_code)
        domain.licence_desk.licence_seal(request.issuer_code, datetime.now(UTC))
    finally:
        domain.close()
    if input_format(request.path) == "csv":
        csv_header(request.path, licence_type)
    return lines


def csv_header(path: Path, licence_type) -> CsvLayout:
    """The CSV file's header checked against the type's fields (BatchInputError when it does not fit)."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            for row in reader:
                if row and not (len(row) == 1 and not row[0].strip()):
                    return CsvLayout.from_header(row, licence_type.schema, path)
        except csv.Error as exc:
            raise BatchInputError(f"{path}: the header row cannot be read: {exc}") from None
    raise BatchInputError(f"{path} is empty: it holds no header row")


def run_batch(request: BatchRequest, *, progress: Callable[[int], None] | None = None) -> BatchSummary:
    """Convert every record of ``request.path``; write the report; return the summary.

    ``progress`` is told how many records were settled each time some are. Raises
    BatchInputError (nothing issued), the domain's own errors found before starting, or
    BatchAborted / the underlying error when the run had to stop (the report says so too).
    """
    from licences.catalogue import Catalogue

    started = time.perf_counter()
    licence_type = Catalogue.load().get(request.type_code)
    summary = BatchSummary(report=str(request.report))
    try:
        report = request.report.open("w", encoding="utf-8")
    except OSError as exc:
        raise BatchInputError(f"cannot write the report {request.report}: {exc.strerror or exc}") from None

    def settle(outcome: Outcome) -> None:
        summary.count(outcome)
        if outcome.status == "rejected":
            report.write(json.dumps({"line": outcome.line, "source_id": outcome.source_id,
                                     "reasons": list(outcome.reasons)}, ensure_ascii=False) + "\n")
            report.flush()
        if progress is not None:
            progress(1)

    try:
        records = read_records(request.path, licence_type)
        chunks = _chunks(records, settle, request.chunk_size)
        if request.workers <= 1:
            _run_here(request, chunks, settle)
        else:
            _run_in_workers(request, chunks, settle)
    except BaseException as exc:
        summary.aborted = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise
    finally:
        summary.elapsed = time.perf_counter() - started
        report.write(json.dumps({"summary": summary.as_dict()}, ensure_ascii=False) + "\n")
        report.close()
    return summary


def _run_here(request: BatchRequest, chunks: Iterator[list[SourceRecord]],
              settle: Callable[[Outcome], None]) -> None:
    converter = Converter(request.home, request.type_code, request.issuer_code,
                          out=str(request.out) if request.out else None, actor=request.actor)
    try:
        for chunk in chunks:
            for outcome in converter.convert(chunk):
                settle(outcome)
    finally:
        converter.close()


def _run_in_workers(request: BatchRequest, chunks: Iterator[list[SourceRecord]],
                    settle: Callable[[Outcome], None]) -> None:
    import multiprocessing

    # spawn: a worker starts clean (no inherited connections, locks or threads of this process).
    context = multiprocessing.get_context("spawn")
    args = (os.getpid(), request.home, request.type_code, request.issuer_code,
            str(request.out) if request.out else None, request.actor)
    in_flight_limit = 2 * request.workers
    pool = ProcessPoolExecutor(max_workers=request.workers, mp_context=context, initializer=_start_worker,
                               initargs=args)
    pending: set[Future] = set()

    def drain(until: int) -> None:
        nonlocal pending
        while len(pending) > until:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                for outcome in future.result():
                    settle(outcome)

    try:
        for chunk in chunks:
            pending.add(pool.submit(_convert_in_worker, chunk))
            drain(in_flight_limit - 1)
        drain(0)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
