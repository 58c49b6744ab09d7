"""The OFD archive writer (ofd.zipwriter) lays out what zipfile writes for the same entries,
byte for byte, and write_package's archives open again with zipfile and with our reader."""

from __future__ import annotations

import io
import os
import types
import zipfile
import zlib
from datetime import datetime

import pytest

from ofd.package import Package, write_package
from ofd.zipwriter import DEFLATED, STORED, Entry, write_zip
from pages.deflate import compressor, level_for, raw_deflate

ENTRIES = {
    "OFD.xml": b"<ofd:OFD/>" * 40,
    "Doc_0/Res/font_1.ttf": os.urandom(3000) + b"glyf" * 9000,  # large: deflated once and kept
    "Doc_0/Signs/Sign_0/Seal.esl": os.urandom(70_000),          # incompressible: stored
    "Doc_0/签章/说明.xml": "<说明>中文名</说明>".encode(),            # a UTF-8 name
    "empty.txt": b"",
}


def _reference(entries: dict[str, tuple[int, bytes]], stamp) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, (method, data) in entries.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 0
            info.external_attr = 0
            info.compress_type = method
            archive.writestr(info, data, compresslevel=level_for(data))
    return out.getvalue()


@pytest.mark.parametrize("stamp", [(1980, 1, 1, 0, 0, 0), (2026, 12, 2, 13, 45, 59)])
def test_the_archive_is_zipfiles_byte_for_byte(stamp, monkeypatch):
    # zipfile deflating with our engine (ISA-L where installed), so that only the archive's
    # layout is compared: headers, names, CRCs, sizes, the central directory.
    engine = types.SimpleNamespace(**{k: getattr(zlib, k) for k in dir(zlib) if not k.startswith("_")})
    engine.compressobj = lambda level, method, wbits: compressor(level)
    monkeypatch.setattr(zipfile, "zlib", engine)
    methods = {name: (STORED if name.endswith(".esl") else DEFLATED, data) for name, data in ENTRIES.items()}
    ours = write_zip([Entry(name, data, method, data if method == STORED else raw_deflate(data))
                      for name, (method, data) in methods.items()], stamp)
    assert ours == _reference(methods, stamp)


def test_write_package_reads_back_and_stores_what_does_not_shrink():
    archive = write_package(ENTRIES, when=datetime(2026, 12, 2, 9, 30, 0))
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        assert z.testzip() is None
        infos = {i.filename: i for i in z.infolist()}
        assert infos["Doc_0/Signs/Sign_0/Seal.esl"].compress_type == zipfile.ZIP_STORED
        assert infos["Doc_0/Res/font_1.ttf"].compress_type == zipfile.ZIP_DEFLATED
        assert infos["OFD.xml"].date_time == (2026, 12, 2, 9, 30, 0)
        assert {name: z.read(name) for name in z.namelist()} == ENTRIES
    package = Package.open(archive)
    assert {name: package.read(name) for name in package.names} == ENTRIES
    assert write_package(ENTRIES) == write_package(dict(ENTRIES))  # deterministic


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        write_zip([Entry("a", b"x", 12, b"x")], (1980, 1, 1, 0, 0, 0))
