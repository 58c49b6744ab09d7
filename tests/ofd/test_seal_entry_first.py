"""Sealing writes the new Seal.esl as the package's first entry: every package a seal stamps then
begins with the same bytes, which SM3 goes over once. Nothing else may change: the package
opens, reads and verifies as before (once sealed and sealed again), Python's zipfile reads it,
and the store's digest of it is exactly SM3 of its bytes."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from PIL import Image as PILImage

from hsm import sm3 as sm3_module
from hsm.sm3 import forget_prefixes, sm3
from ofd.package import Package, write_package
from ofd.reader import read_ofd
from ofd.sealing import Placement, seal_ofd, sign_ofd
from ofd.writer import write_ofd
from pages.model import Document, Page, Text
from support.pki import Pki, make_pki
from trust.validation import TrustContext, validate_document

NOW = datetime.now(UTC).replace(microsecond=0)
SEAL_ENTRY = "Doc_0/Signs/Sign_0/Seal.esl"


def _noise_png() -> bytes:
    """A seal picture as large and as incompressible as a real one (a seal is ~80 kB)."""
    picture = PILImage.frombytes("RGB", (120, 120), os.urandom(120 * 120 * 3))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki(NOW, picture=(_noise_png(), 40, 40))


def _document(text: str) -> bytes:
    page = Page.a4([Text(20, 30, "中华人民共和国营业执照", 8, bold=True), Text(20, 60, text, 5)])
    return write_ofd(Document(pages=(page,), title="营业执照", author="某市市场监督管理局",
                              doc_id=os.urandom(16).hex(), created=NOW, keywords=(), custom={}))


def _seal(pki: Pki, data, **kw) -> bytes:
    kw.setdefault("time", NOW - timedelta(hours=2))
    return seal_ofd(data, seal=pki.seal, signer=pki.signer_key, signer_certificate=pki.signer.dump(), **kw)


def _first_entry(archive: bytes) -> tuple[str, int]:
    """(name, end offset) of the first local entry, read from the bytes."""
    assert archive[:4] == b"PK\x03\x04"
    csize, n_len, x_len = struct.unpack_from("<I4xHH", archive, 18)
    return archive[30:30 + n_len].decode(), 30 + n_len + x_len + csize


def _reference(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def _context(pki: Pki) -> TrustContext:
    return TrustContext(anchors=(pki.root,), seal_makers=(pki.maker,), crls=(pki.crl(),), revocation="require")


def test_the_new_seal_comes_first_and_every_other_entry_keeps_its_order(pki):
    unsealed = _document("某某有限公司")
    sealed = _seal(pki, unsealed)
    names = Package.open(sealed).names
    assert names[0] == SEAL_ENTRY and _first_entry(sealed)[0] == SEAL_ENTRY
    assert Package.open(sealed).read(SEAL_ENTRY) == pki.seal
    before = Package.open(unsealed).names
    assert [n for n in names if n in before] == list(before)
    assert read_ofd(sealed).text() == read_ofd(unsealed).text()
    with zipfile.ZipFile(io.BytesIO(sealed)) as archive:  # an independent reader, by the central directory
        assert archive.testzip() is None
        assert archive.read("OFD.xml") == Package.open(sealed).read("OFD.xml")
        assert archive.namelist()[0] == SEAL_ENTRY


def test_every_package_a_seal_stamps_begins_with_the_same_entry(pki):
    one = _seal(pki, _document("甲公司"))
    other = _seal(pki, Package.open(_document("乙公司有限责任公司")), time=NOW - timedelta(minutes=5))
    name, end = _first_entry(one)
    assert (name, end) == _first_entry(other) and end >= len(pki.seal) + 30 + len(SEAL_ENTRY)
    assert one[:end] == other[:end] and one != other


def test_the_package_digest_is_exactly_sm3_and_starts_from_the_remembered_entry(pki, monkeypatch):
    forget_prefixes()
    hits = []
    original = sm3_module._state_after
    monkeypatch.setattr(sm3_module, "_state_after", lambda entry: hits.append(len(entry.prefix)) or
                        original(entry))
    sealed = _seal(pki, _document("丙公司"))
    end = _first_entry(sealed)[1]
    hits.clear()
    assert sm3(sealed) == _reference(sealed)
    assert hits == [end]
    changed = bytearray(sealed)
    changed[end - 1] ^= 1  # the last byte of the seal entry: no longer the remembered prefix
    assert sm3(bytes(changed)) == _reference(bytes(changed)) != _reference(sealed)
    assert hits == [end]
    forget_prefixes()
    assert sm3(sealed) == _reference(sealed)


def test_sealed_once_and_sealed_again_both_verify_and_the_newest_seal_is_first(pki):
    once = _seal(pki, _document("丁公司"))
    twice = _seal(pki, once, placement=Placement(x=10, y=10))
    package = Package.open(twice)
    assert package.names[0] == "Doc_0/Signs/Sign_1/Seal.esl"
    assert package.names[1] == SEAL_ENTRY
    assert package.read("Doc_0/Signs/Sign_0/Signature.xml") == Package.open(once).read(
        "Doc_0/Signs/Sign_0/Signature.xml")
    for data, count in ((once, 1), (twice, 2)):
        report = validate_document(data, _context(pki), NOW)
        assert (report.indication, report.sub_indication) == ("TOTAL_PASSED", None)
        assert len(report.signatures) == count


def test_a_sealed_package_with_a_tampered_seal_entry_still_fails(pki):
    sealed = Package.open(_seal(pki, _document("戊公司")))
    entries = {name: sealed.read(name) for name in sealed.names}
    seal = bytearray(entries[SEAL_ENTRY])
    seal[len(seal) // 2] ^= 1
    entries[SEAL_ENTRY] = bytes(seal)
    report = validate_document(write_package(entries), _context(pki), NOW)
    assert report.indication == "TOTAL_FAILED"


def test_a_sign_type_signature_keeps_the_order_it_found(pki):
    unsealed = _document("己公司")
    signed = sign_ofd(unsealed, signer=pki.signer_key, signer_certificate=pki.signer.dump(),
                      time=NOW - timedelta(hours=1))
    names = Package.open(signed).names
    before = Package.open(unsealed).names
    assert list(names[:len(before)]) == list(before)
