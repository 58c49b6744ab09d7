"""What makes bulk issuance faster changes no result: the QR symbol is qrcode's own, module for
module; caches are keyed so that another seal picture or font setting gets its own entry; the
OFD sealed from the in-memory package is the one sealed from the archive."""

from __future__ import annotations

import io
import random
import zipfile
from datetime import UTC, datetime

import pytest
import qrcode
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from ofd.errors import PackageError
from ofd.package import Package, write_package
from ofd.sealing import Placement, seal_ofd
from ofd.writer import ofd_package, write_ofd
from pages.fonts import FONT_ENV, FontNotFound, cjk_face
from pages.model import Document, Page, QrCode, Text
from pages.qr import QUIET_ZONE, qr_matrix
from seals.picture import picture_png, seal_image
from support.pki import make_pki

ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def reference_matrix(payload: str) -> list[list[bool]] | None:
    """What the qrcode package itself makes (None where it fails: it cannot encode some
    all-zero data blocks)."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QUIET_ZONE)
    code.add_data(payload.encode("utf-8"), optimize=0)
    try:
        code.make(fit=True)
    except ValueError:
        return None
    return code.get_matrix()


def payloads(count: int):
    rng = random.Random(7)
    for i in range(count):
        kind = i % 4
        length = rng.choice([1, 7, 30, 90, 160, 213, 300])
        if kind == 0:
            yield "HTTP://LOCALHOST:8081/V/" + "".join(rng.choice(ALPHANUMERIC[10:36]) for _ in range(length))
        elif kind == 1:
            yield "".join(rng.choice("0123456789") for _ in range(length))
        elif kind == 2:
            yield "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(max(1, length // 4)))
        else:
            yield "".join(rng.choice(ALPHANUMERIC) for _ in range(length)) + "x"


def test_qr_symbols_are_the_qrcode_packages_own():
    compared = 0
    for payload in payloads(240):
        expected = reference_matrix(payload)
        if expected is None:
            continue
        assert qr_matrix(payload) == expected, payload
        compared += 1
    assert compared > 200


def test_each_caller_gets_its_own_copy_of_a_matrix():
    first = qr_matrix("HTTP://EXAMPLE/V/ABC")
    first[0][0] = "changed"
    assert qr_matrix("HTTP://EXAMPLE/V/ABC")[0][0] is False


def test_seal_pictures_are_cached_by_their_own_bytes():
    one = seal_image("示例市市场监督管理局", "电子证照专用章", dpi=150).png
    other = seal_image("另一个局", "电子证照专用章", dpi=150).png
    png_one, png_other = picture_png("png", one), picture_png("png", other)
    assert png_one != png_other and picture_png("png", bytes(one)) == png_one
    for source, png in ((one, png_one), (other, png_other)):
        expected = Image.open(io.BytesIO(source)).convert("RGBA")
        assert Image.open(io.BytesIO(png)).convert("RGBA").tobytes() == expected.tobytes()


def test_the_font_follows_its_setting(monkeypatch, tmp_path):
    face = cjk_face()
    monkeypatch.setenv(FONT_ENV, str(tmp_path / "absent.ttf"))
    with pytest.raises(FontNotFound, match=FONT_ENV):
        cjk_face()
    monkeypatch.delenv(FONT_ENV)
    assert cjk_face() is face


def test_large_incompressible_entries_are_stored_and_the_rest_deflated():
    noise = random.Random(3).randbytes(200_000)
    short = b"<short>" * 12
    archive = write_package({"a.xml": b"<a>" + b"x" * 100_000 + b"</a>", "b.dat": noise, "c.txt": short})
    methods = {i.filename: i.compress_type for i in zipfile.ZipFile(io.BytesIO(archive)).infolist()}
    deflated, stored = zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED
    assert methods == {"a.xml": deflated, "b.dat": stored, "c.txt": deflated}
    package = Package.open(archive)
    assert package.read("b.dat") == noise and package.read("c.txt") == short


def test_a_package_made_in_memory_obeys_the_archive_rules():
    with pytest.raises(PackageError, match="differ only in case"):
        Package.from_entries({"Doc_0/a.xml": b"1", "doc_0/A.xml": b"2"})
    with pytest.raises(PackageError):
        Package.from_entries({"../escape.xml": b"1"})


def test_sealing_the_in_memory_package_gives_the_archives_result():
    pki = make_pki()
    document = Document((Page.a4((Text(20, 30, "营业执照", 8), QrCode(30, 200, 30, "HTTP://X/V/ABC"))),),
                        title="营业执照", doc_id="0" * 32, created=datetime(2026, 5, 20, tzinfo=UTC))
    sealed = []
    for source in (write_ofd(document), ofd_package(document)):
        sealed.append(Package.open(seal_ofd(source, seal=pki.seal, signer=pki.signer_key,
                                            signer_certificate=pki.signer.dump(),
                                            placement=Placement(page=0, x=20, y=20), time=pki.now)))
    archive, memory = sealed
    assert archive.names == memory.names
    for name in archive.names:
        if not name.endswith("SignedValue.dat"):  # an SM2 signature: a fresh nonce each time
            assert archive.read(name) == memory.read(name), name
