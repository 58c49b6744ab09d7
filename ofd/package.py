"""The OFD container: a ZIP archive, opened as hostile input.

Python's :mod:`zipfile` is built to extract what it can: it tolerates prepended data, trusts
declared sizes, picks the last of two entries with the same name and never compares a local
header with its central-directory record. Each of those leniencies has been used to show a
verifier one document and a reader another, so :meth:`Package.open` parses the archive
itself and checks every byte is accounted for (DESIGN.md, "Verifier rules: Zip"):

* the archive starts with the first local header and ends with the end-of-central-directory
  record (an archive comment is the only thing allowed after it); entries are contiguous,
  never overlap, and the central directory follows the last one;
* every local header agrees with its central-directory record (name, method, CRC, sizes);
* names are plain relative paths, unique even up to case and Unicode normalisation;
* only stored and deflate, no encryption; entry count, sizes and ratios are bounded, and
  every entry is inflated with a cap (declared sizes are checked, never trusted) and its CRC
  checked.

Everything is checked and inflated up front, so a :class:`Package` that exists is sound and
:meth:`Package.read` cannot fail on content. :func:`write_package` writes the deterministic
archives the OFD writer and sealing produce, under the same name rules.
"""

from __future__ import annotations

import functools
import re
import struct
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from pages.deflate import compressor, raw_deflate

from .errors import PackageError
from .zipwriter import DEFLATED, STORED, Entry, write_zip

MiB = 1024 * 1024

_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"
_END = b"PK\x05\x06"
_END64 = b"PK\x06\x06"
_END64_LOCATOR = b"PK\x06\x07"
_DESCRIPTOR = b"PK\x07\x08"
_STORED, _DEFLATED = 0, 8
_FLAG_ENCRYPTED, _FLAG_DESCRIPTOR, _FLAG_STRONG_ENCRYPTION, _FLAG_UTF8 = 0x1, 0x8, 0x40, 0x800
_ZIP64_EXTRA = 0x0001
_DRIVE = re.compile(r"[A-Za-z]:")
# Anzhengtong's writer leaves a zlib trailer (Adler-32) and two more bytes after each deflate
# stream, inside the entry's compressed size. That little is tolerated; more is a hidden payload.
_MAX_DEFLATE_TAIL = 8


@dataclass(frozen=True)
class Limits:
    """Bounds on what :meth:`Package.open` accepts; the defaults fit any real OFD with room."""

    max_entries: int = 10_000
    max_entry_size: int = 256 * MiB
    max_total_size: int = 1024 * MiB
    max_ratio: int = 200          # uncompressed / compressed, per entry …
    ratio_floor: int = 1 * MiB    # … checked only above this uncompressed size
    max_package_size: int = 512 * MiB
    max_total_ratio: int = 100     # everything inflated / the package's own size …
    total_ratio_floor: int = 64 * MiB  # … checked only above this many inflated bytes


def name_problem(name: str) -> str | None:
    """Why ``name`` may not be an entry name (None if it may): the rules shared by reading
    and writing. A trailing ``/`` (directory entry) is allowed and ignored here."""
    if name.endswith("/"):
        name = name[:-1]
    if not name:
        return "the name is empty"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "the name contains a NUL or control character"
    if "\\" in name:
        return "the name contains a backslash"
    if name.startswith("/"):
        return "the name is an absolute path"
    if _DRIVE.match(name):
        return "the name starts with a drive letter"
    for segment in name.split("/"):
        if segment == "":
            return "the name has an empty path segment"
        if segment in (".", ".."):
            return f"the name has a {segment!r} segment"
    return None


def _collision_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _check_unique(names: Sequence[str]) -> None:
    """No two names equal, or equal up to case or NFC, and no file where a directory is."""
    seen: dict[str, str] = {}
    for name in names:
        key = _collision_key(name.rstrip("/"))
        if key in seen:
            other = seen[key]
            if other.rstrip("/") == name.rstrip("/"):
                raise PackageError(f"duplicate entry name {name!r}")
            raise PackageError(f"entries {other!r} and {name!r} differ only in case or Unicode normalisation")
        seen[key] = name
    for name in names:
        parts = name.rstrip("/").split("/")
        for i in range(1, len(parts)):
            parent = _collision_key("/".join(parts[:i]))
            if parent in seen and not seen[parent].endswith("/"):
                raise PackageError(f"entry {name!r} lies under {seen[parent]!r}, which is a file")


@dataclass(frozen=True)
class _Record:
    """One central-directory record, with the zip64 values already substituted."""

    name: str
    name_bytes: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    offset: int


def _u16(data: bytes, at: int) -> int:
    return struct.unpack_from("<H", data, at)[0]


def _u32(data: bytes, at: int) -> int:
    return struct.unpack_from("<I", data, at)[0]


def _decode_name(raw: bytes, flags: int, where: str) -> str:
    """UTF-8 when flagged; otherwise UTF-8 (many writers forget the flag), then GB18030, which
    is what Chinese Windows tools write and what the OFD's own XML then refers to."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        if flags & _FLAG_UTF8:
            raise PackageError(f"{where}: name {raw!r} is flagged UTF-8 but is not") from None
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        raise PackageError(f"{where}: name {raw!r} is neither UTF-8 nor GB18030") from None


def _zip64_values(extra: bytes, wanted: list[str], where: str) -> dict[str, int]:
    """Read the zip64 extra field's 8-byte values for the fields that were 0xFFFFFFFF."""
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4:at + 4 + length]
        if len(body) != length:
            break
        if tag == _ZIP64_EXTRA:
            if len(body) < 8 * len(wanted):
                raise PackageError(f"{where}: zip64 extra field too short")
            return {w: struct.unpack_from("<Q", body, 8 * i)[0] for i, w in enumerate(wanted)}
        at += 4 + length
    if wanted:
        raise PackageError(f"{where}: sizes say zip64 but there is no zip64 extra field")
    return {}


def _end_record(data: bytes) -> tuple[int, int, int, int]:
    """(entry count, central directory offset, its size, where it must end)."""
    size = len(data)
    floor = max(0, size - 22 - 0xFFFF)
    at = data.rfind(_END, floor)
    trailing = None
    while at >= 0:
        if at + 22 <= size:
            stop = at + 22 + _u16(data, at + 20)
            if stop == size:
                break
            if stop < size and trailing is None:
                trailing = size - stop
        at = data.rfind(_END, floor, at)
    if at < 0:
        if trailing is not None:
            raise PackageError(f"{trailing} bytes of data after the end-of-central-directory record "
                               "(only an archive comment may follow the archive)")
        if data.startswith(_LOCAL):
            raise PackageError("truncated archive: no end-of-central-directory record")
        raise PackageError("not a ZIP archive: no end-of-central-directory record")
    disk, cd_disk, here, total, cd_size, cd_offset = struct.unpack_from("<HHHHII", data, at + 4)
    end = at
    loc = at - 20
    has_locator = loc >= 0 and data[loc:loc + 4] == _END64_LOCATOR
    if 0xFFFF in (here, total) or 0xFFFFFFFF in (cd_size, cd_offset) or has_locator:
        # writers add the zip64 records even when the classic fields would do (Python's does)
        if not has_locator:
            raise PackageError("end record says zip64 but there is no zip64 locator")
        rec = struct.unpack_from("<Q", data, loc + 8)[0]
        misplaced = rec + 56 > loc or data[rec:rec + 4] != _END64
        if misplaced or rec + 12 + struct.unpack_from("<Q", data, rec + 4)[0] != loc:
            raise PackageError("zip64 end-of-central-directory record is missing or misplaced")
        disk, cd_disk, here, total, cd_size, cd_offset = struct.unpack_from("<IIQQQQ", data, rec + 16)
        end = rec
    if disk or cd_disk or here != total:
        raise PackageError("multi-disk (spanned) archives are not accepted")
    return total, cd_offset, cd_size, end


def _central_directory(data: bytes, limits: Limits) -> tuple[list[_Record], int]:
    """The records of the central directory, and the offset where it starts."""
    total, cd_offset, cd_size, end = _end_record(data)
    if total > limits.max_entries:
        raise PackageError(f"too many entries: {total} (limit {limits.max_entries})")
    if cd_offset + cd_size != end:
        raise PackageError(f"the central directory should end at offset {end} but the end record puts it at "
                           f"{cd_offset}+{cd_size}: data was prepended, inserted or cut")
    records = []
    at = cd_offset
    while at < end:
        if data[at:at + 4] != _CENTRAL or at + 46 > end:
            raise PackageError(f"malformed central directory at offset {at}")
        (flags, method, _time, _date, crc, csize, usize, n_len, x_len, c_len, disk
         ) = struct.unpack_from("<HHHHIIIHHHH", data, at + 8)
        offset = _u32(data, at + 42)
        stop = at + 46 + n_len + x_len + c_len
        if stop > end:
            raise PackageError(f"central directory record at offset {at} runs past the directory")
        raw_name = data[at + 46:at + 46 + n_len]
        where = f"central directory entry {raw_name!r}"
        name = _decode_name(raw_name, flags, where)
        wanted = [k for k, v in (("size", usize), ("csize", csize), ("offset", offset)) if v == 0xFFFFFFFF]
        big = _zip64_values(data[at + 46 + n_len:at + 46 + n_len + x_len], wanted, where)
        if disk:
            raise PackageError(f"entry {name!r}: multi-disk archives are not accepted")
        records.append(_Record(name, raw_name, flags, method, crc, big.get("csize", csize),
                               big.get("size", usize), big.get("offset", offset)))
        at = stop
    if len(records) != total:
        raise PackageError(f"the end record announces {total} entries but the central directory "
                           f"has {len(records)}")
    return records, cd_offset


def _check_record(rec: _Record, limits: Limits) -> None:
    problem = name_problem(rec.name)
    if problem:
        raise PackageError(f"entry {rec.name!r}: {problem}")
    if rec.flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise PackageError(f"entry {rec.name!r} is encrypted")
    if rec.method not in (_STORED, _DEFLATED):
        raise PackageError(f"entry {rec.name!r} uses compression method {rec.method}; only stored (0) and "
                           "deflate (8) are accepted")
    if rec.name.endswith("/") and rec.size:
        raise PackageError(f"directory entry {rec.name!r} has content")
    if rec.size > limits.max_entry_size:
        raise PackageError(f"entry {rec.name!r} declares {rec.size} bytes (limit {limits.max_entry_size})")
    if rec.method == _STORED and rec.size != rec.compressed_size:
        raise PackageError(f"stored entry {rec.name!r} has compressed size {rec.compressed_size} "
                           f"!= size {rec.size}")
    if rec.size > limits.ratio_floor and rec.size > limits.max_ratio * rec.compressed_size:
        raise PackageError(f"entry {rec.name!r} declares a compression ratio above {limits.max_ratio} "
                           f"({rec.size} from {rec.compressed_size} bytes): zip bomb")


def _local_entry(data: bytes, rec: _Record) -> tuple[int, int]:
    """Check the local header against ``rec``; return (start of data, end of the entry)."""
    at, where = rec.offset, f"local header of {rec.name!r}"
    if data[at:at + 4] != _LOCAL or at + 30 > len(data):
        raise PackageError(f"{where}: no local header at offset {at}")
    (flags, method, _time, _date, crc, csize, usize, n_len, x_len
     ) = struct.unpack_from("<HHHHIIIHH", data, at + 6)
    raw_name = data[at + 30:at + 30 + n_len]
    extra = data[at + 30 + n_len:at + 30 + n_len + x_len]
    if raw_name != rec.name_bytes or _decode_name(raw_name, flags, where) != rec.name:
        raise PackageError(f"{where}: local name {raw_name!r} differs from the central directory's "
                           f"{rec.name_bytes!r}")
    if method != rec.method or (flags ^ rec.flags) & (_FLAG_ENCRYPTED | _FLAG_DESCRIPTOR):
        raise PackageError(f"{where}: method or flags differ from the central directory")
    wanted = [k for k, v in (("size", usize), ("csize", csize)) if v == 0xFFFFFFFF]
    big = _zip64_values(extra, wanted, where)
    start = at + 30 + n_len + x_len
    stop = start + rec.compressed_size
    if stop > len(data):
        raise PackageError(f"truncated archive: the data of {rec.name!r} runs past the end")
    if flags & _FLAG_DESCRIPTOR:
        wide = bool(big) or any(t == _ZIP64_EXTRA for t in _extra_tags(extra))
        if data[stop:stop + 4] == _DESCRIPTOR:
            stop += 4
        fmt = "<IQQ" if wide else "<III"
        if stop + struct.calcsize(fmt) > len(data):
            raise PackageError(f"truncated archive: the data descriptor of {rec.name!r} is cut")
        crc, csize, usize = struct.unpack_from(fmt, data, stop)
        stop += struct.calcsize(fmt)
        big = {}
    if (crc, big.get("csize", csize), big.get("size", usize)) != (rec.crc, rec.compressed_size, rec.size):
        raise PackageError(f"{where}: CRC or sizes differ from the central directory")
    return start, stop


def _extra_tags(extra: bytes) -> Iterable[int]:
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        yield tag
        at += 4 + length


def _inflate(rec: _Record, compressed: bytes) -> bytes:
    """Inflate with the declared size as a hard cap, so a lying header cannot make us allocate
    more; then insist the stream ends exactly where the entry does."""
    if rec.method == _STORED:
        return compressed
    inflater = zlib.decompressobj(-15)
    pieces, produced, pending = [], 0, compressed
    try:
        while pending and not inflater.eof:
            piece = inflater.decompress(pending, rec.size - produced + 1)
            produced += len(piece)
            if produced > rec.size:
                raise PackageError(f"entry {rec.name!r} inflates beyond its declared {rec.size} bytes: "
                                   "zip bomb")
            pieces.append(piece)
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise PackageError(f"entry {rec.name!r} has corrupt deflate data: {exc}") from None
    if not inflater.eof:
        raise PackageError(f"entry {rec.name!r}: the deflate stream is truncated")
    if len(inflater.unused_data) > _MAX_DEFLATE_TAIL:
        raise PackageError(f"entry {rec.name!r} has {len(inflater.unused_data)} bytes after its "
                           "deflate stream")
    if produced != rec.size:
        raise PackageError(f"entry {rec.name!r} inflates to {produced} bytes but declares {rec.size}")
    return b"".join(pieces)


def _normalise(segments: Iterable[str], ref: str) -> str:
    out: list[str] = []
    for segment in segments:
        if segment in ("", "."):
            continue
        if segment == "..":
            if not out:
                raise PackageError(f"reference {ref!r} climbs above the package root")
            out.pop()
        else:
            out.append(segment)
    if not out:
        raise PackageError(f"reference {ref!r} names no file")
    return "/".join(out)


@dataclass(frozen=True, eq=False)
class Package:
    """A validated OFD archive: its input bytes and every file entry, inflated."""

    raw: bytes = field(repr=False)
    names: tuple[str, ...]
    _files: Mapping[str, bytes] = field(repr=False)
    _folded: Mapping[str, str] = field(repr=False)   # case/NFC-folded name -> name (unique by open())

    @classmethod
    def open(cls, data: bytes, limits: Limits = Limits()) -> Package:
        """Parse and check the whole archive; raise :class:`PackageError` naming the entry and
        the rule broken."""
        data = bytes(data)
        if len(data) > limits.max_package_size:
            raise PackageError(f"package is {len(data)} bytes (limit {limits.max_package_size})")
        records, cd_offset = _central_directory(data, limits)
        total = 0
        for rec in records:
            _check_record(rec, limits)
            total += rec.size
            if total > limits.max_total_size:
                raise PackageError(f"entries declare more than {limits.max_total_size} bytes in total")
        # Many small entries each under the per-entry ratio floor still add up: bound the whole.
        if total > limits.total_ratio_floor and total > limits.max_total_ratio * len(data):
            raise PackageError(f"entries inflate to {total} bytes from a {len(data)}-byte package "
                               f"(more than {limits.max_total_ratio}:1 overall)")
        _check_unique([r.name for r in records])
        position = 0
        spans = {}
        for rec in sorted(records, key=lambda r: r.offset):
            if rec.offset > position:
                what = "before the first local header (prepended data)" if position == 0 else \
                    f"between entries, before {rec.name!r}"
                raise PackageError(f"{rec.offset - position} bytes of unaccounted data {what}")
            if rec.offset < position:
                raise PackageError(f"entry {rec.name!r} overlaps the entry before it")
            spans[rec.name], position = _local_entry(data, rec)
        if position != cd_offset:
            raise PackageError(f"{cd_offset - position} bytes of unaccounted data before the central "
                               "directory")
        files = {}
        for rec in records:
            if rec.name.endswith("/"):
                continue
            start = spans[rec.name]
            content = _inflate(rec, data[start:start + rec.compressed_size])
            if zlib.crc32(content) != rec.crc:
                raise PackageError(f"CRC mismatch in entry {rec.name!r}")
            files[rec.name] = content
        folded = {_collision_key(name): name for name in files}
        return cls(raw=data, names=tuple(files), _files=MappingProxyType(files),
                   _folded=MappingProxyType(folded))

    @classmethod
    def from_entries(cls, entries: Mapping[str, bytes]) -> Package:
        """The package ``entries`` make, in memory: what :func:`write_package` would archive and
        :meth:`open` read back, without the round trip (a writer handing its own output to the
        sealer). The names obey the same rules; ``raw`` is empty, there being no archive yet."""
        _check_entry_names(entries)
        files = {name: bytes(content) for name, content in entries.items()}
        folded = {_collision_key(name): name for name in files}
        return cls(raw=b"", names=tuple(files), _files=MappingProxyType(files),
                   _folded=MappingProxyType(folded))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.removeprefix("/") in self._files

    def read(self, name: str) -> bytes:
        """The content of entry ``name`` (a leading ``/`` is accepted)."""
        try:
            return self._files[name.removeprefix("/")]
        except KeyError:
            raise PackageError(f"no entry {name!r} in the package") from None

    def size(self, name: str) -> int:
        return len(self.read(name))

    def resolve(self, ref: str, base: str | None = None) -> str:
        """The OFD location rule: ``/x`` is from the package root, anything else is relative to
        the directory of ``base`` (the file holding the reference; None = the root)."""
        ref = ref.strip()
        if not ref or "\\" in ref or "\x00" in ref:
            raise PackageError(f"reference {ref!r} is not a package path")
        if ref.startswith("/") or base is None:
            return _normalise(ref.split("/"), ref)
        return _normalise(base.removeprefix("/").split("/")[:-1] + ref.split("/"), ref)

    def target(self, ref: str, base: str | None = None, *, fold_case: bool = False) -> str:
        """Where ``ref`` points: the existing entry :meth:`locate` finds, else the resolved
        path, so a caller can report a referenced file as missing. A path that climbs out of
        the package still raises."""
        try:
            return self.locate(ref, base, fold_case=fold_case)
        except PackageError:
            return self.resolve(ref, base)

    def locate(self, ref: str, base: str | None = None, *, fold_case: bool = False) -> str:
        """:meth:`resolve`, falling back to reading ``ref`` from the package root, as real
        producers write root-relative paths inside sub-documents; the entry must exist.

        ``fold_case`` adds a last resort for producers that misspell the case of a path
        (``TPLS/Tpl_0`` for ``Tpls/Tpl_0``): a match up to case and NFC, unambiguous because
        :meth:`open` refuses names that collide so. Use it for rendering, not for signed
        references, whose spelling is what was signed."""
        tried = [self.resolve(ref, base)]
        if tried[0] in self._files:
            return tried[0]
        if base is not None and not ref.strip().startswith("/"):
            try:
                tried.append(self.resolve(ref, None))
            except PackageError:
                pass  # climbs above the root when read from there: only the first reading counts
        for path in tried:
            if path in self._files:
                return path
        for path in tried if fold_case else ():
            if (found := self._folded.get(_collision_key(path))) is not None:
                return found
        raise PackageError(f"no entry for reference {ref!r} from {base or 'the package root'} "
                           f"(looked for {' and '.join(tried)})")


_EPOCH = (1980, 1, 1, 0, 0, 0)


#: Deflate is tried on this much of a large entry first: seal pictures and the signed values
#: that carry them are PNG data deflate cannot shrink, and compressing 100 kB twice per
#: package for nothing is a good part of what sealing a licence costs.
_SAMPLE = 16 * 1024
#: A sample deflate shrinks by less than this share is stored (it could not be a bomb either).
_STORE_BELOW = 0.03


def _check_entry_names(entries: Mapping[str, bytes]) -> None:
    for name in entries:
        if not isinstance(name, str):
            raise PackageError(f"entry name {name!r} is not a string")
        problem = name_problem(name) or ("a package holds files, not directories" if name.endswith("/")
                                         else None)
        if problem:
            raise PackageError(f"entry {name!r}: {problem}")
    _check_unique(list(entries))


@functools.lru_cache(maxsize=64)
def _deflated_size(content: bytes) -> int:
    """What deflate makes of a sample: enough to tell PNG data from text. Kept by the sample's
    bytes: every licence of a seal carries the same picture in its Seal.esl and seal
    signature, and the samples fall inside it."""
    deflated = compressor()
    return len(deflated.compress(content)) + len(deflated.flush())


def _compressed(content: bytes, limits: Limits) -> tuple[int, bytes]:
    """How an entry is written: stored for what deflate cannot shrink (judged on a sample) or
    would shrink beyond the reader's ratio limit, deflated otherwise (with the deflate data,
    :func:`pages.deflate.raw_deflate`'s: a font subset's is kept for the PDF that embeds it)."""
    middle = len(content) // 2 - _SAMPLE // 2
    # The sample is from the middle: a seal (and the seal signature holding it) starts with
    # compressible ASN.1 and certificates, but is mostly its PNG picture, which deflate
    # cannot shrink; judged on its first bytes it was deflated for a 1% gain, 2 ms each.
    if len(content) > 2 * _SAMPLE and \
            _deflated_size(content[middle:middle + _SAMPLE]) > (1 - _STORE_BELOW) * _SAMPLE:
        return STORED, content  # incompressible: storing costs nothing and keeps the ratio at 1
    deflated = raw_deflate(content)
    if len(content) > limits.ratio_floor and len(content) > limits.max_ratio * len(deflated):
        return STORED, content
    if len(deflated) > (1 - _STORE_BELOW) * len(content):
        return STORED, content  # hardly smaller: not worth a reader's inflating
    return DEFLATED, deflated


def write_package(entries: Mapping[str, bytes], when: datetime | None = None) -> bytes:
    """A deterministic archive of ``entries`` in the given order: fixed timestamp (1980-01-01
    or ``when``), deflate (:mod:`pages.deflate`), no extra fields, UTF-8 names. An entry that
    deflate would shrink beyond the default :class:`Limits` ratio is stored instead, so what
    this writes always opens again with :meth:`Package.open`; so is one deflate shrinks by less
    than 3% (a PNG picture, a seal holding one)."""
    _check_entry_names(entries)
    if when is not None and not 1980 <= when.year <= 2107:
        raise PackageError(f"a ZIP timestamp must lie in 1980..2107, not {when.isoformat()}")
    stamp = when.timetuple()[:6] if when is not None else _EPOCH
    limits = Limits()
    written = []
    for name, content in entries.items():
        content = bytes(content)
        written.append(Entry(name, content, *_compressed(content, limits)))
    try:
        return write_zip(written, stamp)
    except ValueError as exc:
        raise PackageError(str(exc)) from None
