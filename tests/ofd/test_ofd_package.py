"""ofd.package: every hostile-ZIP rule of Package.open, write_package round trips, the OFD
location rule. Hostile archives are built byte by byte with `craft`, so each breaks one rule."""

from __future__ import annotations

import io
import os
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime

import pytest

from ofd.errors import OfdError, PackageError
from ofd.package import Limits, Package, write_package
from support.paths import INTEROP

MiB = 1024 * 1024


@dataclass
class Entry:
    """One entry as `craft` writes it; every field can lie."""

    name: str
    data: bytes = b"<x/>"
    method: int = 8
    flags: int = 0x800
    local_name: str | None = None      # the local header's name, if it should differ
    size: int | None = None            # declared uncompressed size (both headers)
    crc: int | None = None             # declared CRC (both headers)
    payload: bytes | None = None       # the compressed bytes actually stored
    descriptor: bool = False           # sizes and CRC in a data descriptor after the data
    after: bytes = b""                 # bytes inserted after this entry (a gap)


def craft(entries: list[Entry], *, before: bytes = b"", comment: bytes = b"", after_end: bytes = b"",
          count: int | None = None) -> bytes:
    """A ZIP archive exactly as described: local headers, data, central directory, end record."""
    out = bytearray(before)
    central = bytearray()
    for e in entries:
        if e.payload is not None:
            payload = e.payload
        elif e.method == 8:
            deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = deflater.compress(e.data) + deflater.flush()
        else:
            payload = e.data
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        size = len(e.data) if e.size is None else e.size
        flags = e.flags | (0x8 if e.descriptor else 0)
        offset = len(out)
        local = (e.local_name if e.local_name is not None else e.name).encode()
        name = e.name.encode()
        in_local = (0, 0, 0) if e.descriptor else (crc, len(payload), size)
        out += b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, flags, e.method, 0, 0x21, *in_local,
                                           len(local), 0)
        out += local + payload
        if e.descriptor:
            out += b"PK\x07\x08" + struct.pack("<III", crc, len(payload), size)
        out += e.after
        central += b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, flags, e.method, 0, 0x21, crc,
                                               len(payload), size, len(name), 0, 0, 0, 0, 0, offset)
        central += name
    n = len(entries) if count is None else count
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, n, n, len(central), len(out), len(comment))
    return bytes(out + central + end + comment + after_end)


def refused(data: bytes, *fragments: str, limits: Limits | None = None) -> str:
    with pytest.raises(PackageError) as info:
        Package.open(data, limits or Limits())
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- what must open --------------------------------------------------------------------------

def test_crafted_baseline_opens_so_the_hostile_variants_below_test_one_rule_each():
    package = Package.open(craft([Entry("OFD.xml", b"<OFD/>"), Entry("Doc_0/Document.xml", b"<Document/>")]))
    assert package.names == ("OFD.xml", "Doc_0/Document.xml")
    assert package.read("OFD.xml") == b"<OFD/>"


def test_comment_is_the_only_thing_allowed_after_the_end_record():
    package = Package.open(craft([Entry("OFD.xml")], comment=b"made by a test"))
    assert package.names == ("OFD.xml",)


def test_directory_entries_are_allowed_and_not_listed():
    package = Package.open(craft([Entry("Doc_0/", b"", method=0), Entry("Doc_0/Document.xml")]))
    assert package.names == ("Doc_0/Document.xml",)
    assert "Doc_0/" not in package and "Doc_0" not in package


def test_stored_entries_and_data_descriptors_are_read():
    package = Package.open(craft([Entry("a.bin", b"\x00\x01" * 50, method=0),
                                  Entry("b.xml", b"<b/>" * 100, descriptor=True)]))
    assert package.read("a.bin") == b"\x00\x01" * 50
    assert package.read("b.xml") == b"<b/>" * 100


def test_zip64_entries_and_end_record_are_read(monkeypatch):
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 0)   # makes zipfile write a zip64 end record
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("OFD.xml", "w", force_zip64=True) as stream:
            stream.write(b"<OFD/>" * 20)
        archive.writestr("b.xml", b"<b/>")
    data = buffer.getvalue()
    assert b"PK\x06\x06" in data
    package = Package.open(data)
    assert package.read("OFD.xml") == b"<OFD/>" * 20 and package.read("b.xml") == b"<b/>"


def test_names_without_the_utf8_flag_are_read_as_utf8_then_gb18030():
    assert Package.open(_with_raw_name("附件/发票.xml".encode("gb18030"))).names == ("附件/发票.xml",)
    assert Package.open(_with_raw_name("附件/发票.xml".encode())).names == ("附件/发票.xml",)


def _with_raw_name(raw_name: bytes) -> bytes:
    """An archive whose single entry has the given name bytes and no UTF-8 flag."""
    payload = b"<a/>"
    crc = zlib.crc32(payload)
    local = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 0x21, crc, 4, 4, len(raw_name), 0)
    local += raw_name + payload
    central = b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, 0, 0, 0, 0x21, crc, 4, 4,
                                          len(raw_name), 0, 0, 0, 0, 0, 0) + raw_name
    return local + central + b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central), len(local), 0)


# --- what must not -------------------------------------------------------------------------

def test_not_a_zip():
    refused(b"%PDF-1.7 this is not an archive", "not a ZIP archive")


@pytest.mark.parametrize("cut", [1, 22, 100])
def test_truncated_archive(cut):
    data = craft([Entry("OFD.xml", b"<OFD>" + b"x" * 200 + b"</OFD>"), Entry("b.xml")])
    message = refused(data[:-cut])
    assert "truncated" in message or "cut" in message


def test_prepended_data_with_unadjusted_offsets():
    refused(b"MZ\x90\x00" * 8 + craft([Entry("OFD.xml")]), "prepended")


def test_prepended_data_with_adjusted_offsets():
    buffer = io.BytesIO()
    buffer.write(b"#!/bin/sh\nexit 0\n")
    with zipfile.ZipFile(buffer, "w") as archive:   # zipfile records offsets past the prefix
        archive.writestr("OFD.xml", b"<OFD/>")
    refused(buffer.getvalue(), "before the first local header", "prepended")


def test_data_between_entries():
    refused(craft([Entry("OFD.xml", after=b"HIDDEN"), Entry("b.xml")]), "6 bytes", "before 'b.xml'")


def test_data_between_last_entry_and_central_directory():
    refused(craft([Entry("OFD.xml"), Entry("b.xml", after=b"HIDDEN")]), "6 bytes", "central directory")


def test_data_after_end_record():
    refused(craft([Entry("OFD.xml")], after_end=b"appended"), "8 bytes of data after the end")


def test_entry_count_must_match_the_end_record():
    refused(craft([Entry("OFD.xml"), Entry("b.xml")], count=1), "announces 1 entries", "has 2")


def test_overlapping_entries():
    data = bytearray(craft([Entry("OFD.xml"), Entry("b.xml")]))
    second = data.rfind(b"PK\x01\x02")
    data[second + 42:second + 46] = struct.pack("<I", 0)    # b.xml's record points at OFD.xml's header
    refused(bytes(data), "overlaps")


def test_encrypted_entries():
    refused(craft([Entry("OFD.xml", flags=0x801)]), "'OFD.xml' is encrypted")


@pytest.mark.parametrize("method", [1, 9, 12, 14, 93, 99])
def test_compression_methods_other_than_stored_and_deflate(method):
    refused(craft([Entry("OFD.xml", method=method, payload=b"????")]), f"compression method {method}",
            "OFD.xml")


def test_duplicate_names():
    refused(craft([Entry("Doc_0/Document.xml"), Entry("Doc_0/Document.xml", b"<evil/>")]),
            "duplicate entry name 'Doc_0/Document.xml'")


def test_local_name_differs_from_central_directory():
    refused(craft([Entry("OFD.xml", local_name="OFD.xmL")]), "local name", "OFD.xml")


def test_local_header_crc_differs_from_central_directory():
    data = bytearray(craft([Entry("OFD.xml", b"<OFD/>")]))
    data[14:18] = struct.pack("<I", 0xDEADBEEF)               # the local header's CRC only
    refused(bytes(data), "local header of 'OFD.xml'", "differ from the central directory")


def test_names_equal_up_to_case():
    refused(craft([Entry("Doc_0/Page.xml"), Entry("doc_0/page.XML")]), "differ only in case")


def test_names_equal_up_to_unicode_normalisation():
    composed, decomposed = "Res/café.png", unicodedata.normalize("NFD", "Res/café.png")
    assert composed != decomposed
    refused(craft([Entry(composed), Entry(decomposed)]), "Unicode normalisation")


def test_a_file_where_a_directory_is_used():
    refused(craft([Entry("Doc_0"), Entry("Doc_0/Document.xml")]), "lies under 'Doc_0'")


BAD_NAMES = [
    ("../evil.xml", "'..' segment"),
    ("Doc_0/../../evil.xml", "'..' segment"),
    ("/etc/passwd", "absolute path"),
    ("Doc_0\\Document.xml", "backslash"),
    ("C:/Windows/evil.dll", "drive letter"),
    ("c:evil", "drive letter"),
    ("Doc_0//Document.xml", "empty path segment"),
    ("Doc_0/./Document.xml", "'.' segment"),
    ("OFD.xml\x00.png", "NUL"),
    ("OFD\n.xml", "control character"),
    ("", "empty"),
]


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
def test_unsafe_names_are_refused_when_reading(name, rule):
    refused(craft([Entry(name)]), rule)


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
def test_unsafe_names_are_refused_when_writing(name, rule):
    with pytest.raises(PackageError, match=rule):
        write_package({name: b"x"})


def test_too_many_entries():
    entries = [Entry(f"f{i}.xml") for i in range(4)]
    refused(craft(entries), "too many entries: 4", limits=Limits(max_entries=3))
    assert len(Package.open(craft(entries), Limits(max_entries=4)).names) == 4


def test_package_size_limit():
    refused(craft([Entry("OFD.xml", b"x" * 500)]), "limit 100", limits=Limits(max_package_size=100))


def test_declared_entry_size_beyond_limit():
    refused(craft([Entry("big.bin", b"y" * 300)]), "'big.bin' declares 300 bytes",
            limits=Limits(max_entry_size=299))


def test_declared_total_size_beyond_limit():
    refused(craft([Entry("a", b"a" * 60), Entry("b", b"b" * 60)]), "more than 100 bytes in total",
            limits=Limits(max_total_size=100))


def test_compression_ratio_beyond_limit_is_a_zip_bomb():
    refused(craft([Entry("bomb.xml", b"\x00" * (2 * MiB))]), "compression ratio above 200", "bomb.xml")


def test_ratio_is_not_checked_below_the_floor():
    package = Package.open(craft([Entry("small.xml", b"\x00" * (512 * 1024))]))   # ratio ~500 but small
    assert package.size("small.xml") == 512 * 1024


def test_a_lying_declared_size_cannot_make_us_inflate_more():
    bomb = b"\x00" * (8 * MiB)
    refused(craft([Entry("bomb.xml", bomb, size=1000, crc=zlib.crc32(bomb[:1000]))]),
            "inflates beyond its declared 1000 bytes")


def test_declared_size_larger_than_actual():
    refused(craft([Entry("OFD.xml", b"<OFD/>", size=50)]), "inflates to 6 bytes but declares 50")


def test_stored_entry_whose_sizes_disagree():
    refused(craft([Entry("OFD.xml", b"<OFD/>", method=0, size=7)]), "compressed size 6 != size 7")


def test_crc_mismatch():
    refused(craft([Entry("OFD.xml", b"<OFD/>", crc=12345)]), "CRC mismatch in entry 'OFD.xml'")


def test_corrupt_deflate_data():
    refused(craft([Entry("OFD.xml", b"<OFD/>", payload=b"\xff\xff\xff\xff\xff\xff")]), "OFD.xml")


def test_truncated_deflate_stream():
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    content = bytes(range(256)) * 20
    stream = deflater.compress(content) + deflater.flush()
    refused(craft([Entry("OFD.xml", content, payload=stream[:len(stream) // 2])]),
            "deflate stream is truncated")


def test_a_hidden_payload_after_the_deflate_stream():
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = deflater.compress(b"<OFD/>") + deflater.flush()
    refused(craft([Entry("OFD.xml", b"<OFD/>", payload=stream + b"A" * 64)]),
            "64 bytes after its deflate stream")


def test_errors_are_ofd_errors():
    assert issubclass(PackageError, OfdError)


# --- reading and the location rule ---------------------------------------------------------------

@pytest.fixture
def doc() -> Package:
    return Package.open(write_package({
        "OFD.xml": b"<OFD/>",
        "Doc_0/Document.xml": b"<Document/>",
        "Doc_0/Pages/Page_0/Content.xml": b"<Page/>",
        "Doc_0/Signs/Signatures.xml": b"<Signatures/>",
        "Doc_0/Signs/Sign_0/Signature.xml": b"<Signature/>",
        "Doc_0/Tpls/Tpl_0/Content.xml": b"<Page/>",
    }))


def test_read_contains_size(doc):
    assert doc.read("/Doc_0/Document.xml") == doc.read("Doc_0/Document.xml") == b"<Document/>"
    assert "/OFD.xml" in doc and "OFD.xml" in doc and "ofd.xml" not in doc and 3 not in doc
    assert doc.size("OFD.xml") == 6
    with pytest.raises(PackageError, match=r"no entry 'Doc_0/missing\.xml'"):
        doc.read("Doc_0/missing.xml")


@pytest.mark.parametrize(("ref", "base", "expected"), [
    ("/Doc_0/Document.xml", "Doc_0/Signs/Signatures.xml", "Doc_0/Document.xml"),
    ("Sign_0/Signature.xml", "Doc_0/Signs/Signatures.xml", "Doc_0/Signs/Sign_0/Signature.xml"),
    ("../Pages/Page_0/Content.xml", "Doc_0/Signs/Signatures.xml", "Doc_0/Pages/Page_0/Content.xml"),
    ("./Pages/./Page_0/Content.xml", "/Doc_0/Document.xml", "Doc_0/Pages/Page_0/Content.xml"),
    ("Doc_0/Document.xml", None, "Doc_0/Document.xml"),
    ("  Doc_0/Document.xml\n", "OFD.xml", "Doc_0/Document.xml"),
])
def test_resolve(doc, ref, base, expected):
    assert doc.resolve(ref, base) == expected


@pytest.mark.parametrize(("ref", "base"), [("../../x.xml", "Doc_0/Document.xml"), ("/../x.xml", None),
                                           ("..", None)])
def test_resolve_refuses_to_climb_above_the_root(doc, ref, base):
    with pytest.raises(PackageError, match="climbs above the package root"):
        doc.resolve(ref, base)


@pytest.mark.parametrize("ref", ["", "   ", "Doc_0\\Document.xml", "a\x00b", "/", "/./"])
def test_resolve_refuses_non_paths(doc, ref):
    with pytest.raises(PackageError):
        doc.resolve(ref, "Doc_0/Document.xml")


def test_locate_prefers_the_relative_reading(doc):
    assert doc.locate("Sign_0/Signature.xml", "Doc_0/Signs/Signatures.xml") == \
        "Doc_0/Signs/Sign_0/Signature.xml"


def test_locate_falls_back_to_the_root_relative_reading(doc):
    # real producers write root-relative paths inside a sub-document
    assert doc.locate("Doc_0/Signs/Sign_0/Signature.xml", "Doc_0/Signs/Signatures.xml") == \
        "Doc_0/Signs/Sign_0/Signature.xml"


def test_locate_names_every_path_it_tried(doc):
    with pytest.raises(PackageError) as info:
        doc.locate("Sign_9/Signature.xml", "Doc_0/Signs/Signatures.xml")
    message = str(info.value)
    assert "Doc_0/Signs/Sign_9/Signature.xml" in message and "and Sign_9/Signature.xml" in message


def test_locate_folds_case_only_when_asked(doc):
    with pytest.raises(PackageError):
        doc.locate("TPLS/Tpl_0/Content.xml", "Doc_0/Document.xml")
    assert doc.locate("TPLS/Tpl_0/Content.xml", "Doc_0/Document.xml", fold_case=True) == \
        "Doc_0/Tpls/Tpl_0/Content.xml"


# --- writing ---------------------------------------------------------------------------------------

def test_write_package_round_trips_in_the_given_order():
    entries = {"OFD.xml": b"<OFD/>", "Doc_0/Res/印章.png": bytes(range(256)) * 9,
               "Doc_0/Document.xml": b"<D/>", "empty.dat": b""}
    package = Package.open(write_package(entries))
    assert package.names == tuple(entries)
    assert {name: package.read(name) for name in package.names} == entries


def test_write_package_is_deterministic_and_has_no_extra_fields():
    entries = {"OFD.xml": b"<OFD/>" * 40, "Doc_0/Document.xml": b"<D/>" * 20}
    first = write_package(entries)
    assert first == write_package(dict(entries))
    infos = zipfile.ZipFile(io.BytesIO(first)).infolist()
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) and i.extra == b"" for i in infos)
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in infos)


def test_write_package_stores_what_deflate_hardly_shrinks():
    noise = os.urandom(20_000)  # below the size judged on a sample: deflated, then found no smaller
    data = write_package({"OFD.xml": b"<OFD/>" * 40, "tiny.xml": b"<D/>", "Res/p.png": noise})
    infos = {i.filename: i.compress_type for i in zipfile.ZipFile(io.BytesIO(data)).infolist()}
    assert infos == {"OFD.xml": zipfile.ZIP_DEFLATED, "tiny.xml": zipfile.ZIP_STORED,
                     "Res/p.png": zipfile.ZIP_STORED}
    assert Package.open(data).read("Res/p.png") == noise


def test_write_package_when():
    data = write_package({"a.xml": b"<a/>"}, when=datetime(2024, 5, 6, 7, 8, 10))
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].date_time == (2024, 5, 6, 7, 8, 10)
    with pytest.raises(PackageError, match="1980"):
        write_package({"a.xml": b"<a/>"}, when=datetime(1970, 1, 1))


def test_write_package_stores_what_deflate_would_make_look_like_a_bomb():
    blank = b"\x00" * (3 * MiB)
    data = write_package({"blank.bmp": blank, "OFD.xml": b"<OFD/>"})
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("blank.bmp").compress_type == zipfile.ZIP_STORED
    assert Package.open(data).read("blank.bmp") == blank


@pytest.mark.parametrize("names", [["Doc_0/A.xml", "doc_0/a.xml"],
                                   ["Res/café.png", unicodedata.normalize("NFD", "Res/café.png")],
                                   ["Doc_0", "Doc_0/Document.xml"]])
def test_write_package_refuses_colliding_names(names):
    with pytest.raises(PackageError):
        write_package(dict.fromkeys(names, b"x"))


def test_write_package_refuses_directories():
    with pytest.raises(PackageError, match="not directories"):
        write_package({"Doc_0/": b""})


# --- interop -----------------------------------------------------------------------------------

INTEROP_OFDS = [*sorted((INTEROP / "signed-ofd").glob("*.ofd")),
                *sorted((INTEROP / "unsigned-ofd").glob("*.ofd"))]


@pytest.mark.interop
@pytest.mark.parametrize("path", INTEROP_OFDS, ids=lambda p: p.name)
def test_every_interop_ofd_opens_and_round_trips(path):
    raw = path.read_bytes()
    package = Package.open(raw)
    assert "OFD.xml" in package and package.raw == raw
    reference = zipfile.ZipFile(io.BytesIO(raw))
    assert set(package.names) == {i.filename for i in reference.infolist() if not i.is_dir()}
    assert all(package.read(n) == reference.read(n) for n in package.names)
    again = Package.open(write_package({n: package.read(n) for n in package.names}))
    assert again.names == package.names and all(again.read(n) == package.read(n) for n in package.names)


@pytest.mark.interop
def test_interop_files_are_there():
    # an empty listing would parametrise to nothing and pass silently
    assert len(INTEROP_OFDS) >= 18


@pytest.mark.interop
@pytest.mark.parametrize(("name", "signature_count"), [("ofdrw_hist_kinggrid_auto_seal_sesv1.ofd", 1),
                                                       ("ofdrw_hist_anzhengtong_manual_seal_sesv4.ofd", 2)])
def test_relative_base_locs_of_real_producers_resolve(name, signature_count):
    package = Package.open((INTEROP / "signed-ofd" / name).read_bytes())
    for i in range(signature_count):
        signature = package.locate(f"Sign_{i}/Signature.xml", "Doc_0/Signs/Signatures.xml")
        assert signature == f"Doc_0/Signs/Sign_{i}/Signature.xml"
        assert package.locate("Seal.esl", signature) == f"Doc_0/Signs/Sign_{i}/Seal.esl"
        assert package.locate("/Doc_0/Signs/Sign_0/Seal.esl", signature) == "Doc_0/Signs/Sign_0/Seal.esl"
    assert package.locate("SignedValue.dat", "Doc_0/Signs/Sign_0/Signature.xml") == \
        "Doc_0/Signs/Sign_0/SignedValue.dat"


def test_many_small_entries_cannot_inflate_past_the_overall_ratio():
    import io
    import zipfile

    from ofd.errors import PackageError
    from ofd.package import Limits, Package

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(40):  # each entry 1 MiB of zeros: under the per-entry floor, ~1000:1
            z.writestr(f"Doc_0/Res/f{n}.bin", bytes(1024 * 1024 - 1))
    data = buffer.getvalue()
    with pytest.raises(PackageError, match="overall"):
        Package.open(data, Limits(total_ratio_floor=16 * 1024 * 1024))
    assert len(Package.open(data, Limits(total_ratio_floor=64 * 1024 * 1024)).names) == 40
