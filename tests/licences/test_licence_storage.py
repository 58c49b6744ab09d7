"""The content-addressed document store: round trip, idempotence, corruption, digests refused."""

from __future__ import annotations

import os

import pytest

from hsm.sm3 import sm3
from licences.storage import DocumentCorrupted, DocumentNotFound, DocumentStore, InvalidDigest


@pytest.fixture
def store(tmp_path) -> DocumentStore:
    return DocumentStore(tmp_path / "documents")


def test_round_trip_by_sm3(store, tmp_path):
    data = b"%PDF-1.7 a licence"
    digest = store.put(data)
    assert digest == sm3(data).hex() and len(digest) == 64
    assert store.path(digest) == tmp_path / "documents" / digest[:2] / digest[2:4] / digest
    assert store.exists(digest) and store.get(digest) == data
    assert store.get(digest.upper()) == data  # the digest is case-insensitive hex


def test_put_is_idempotent_and_leaves_no_temporary_files(store):
    first = store.put(b"same bytes")
    mtime = store.path(first).stat().st_mtime_ns
    assert store.put(bytearray(b"same bytes")) == first
    assert store.path(first).stat().st_mtime_ns == mtime  # nothing rewritten
    other = store.put(b"other bytes")
    assert other != first
    files = [p for p in store.root.rglob("*") if p.is_file()]
    assert sorted(p.name for p in files) == sorted([first, other])


def test_empty_document_is_a_document(store):
    digest = store.put(b"")
    assert store.get(digest) == b""


def test_missing_document_is_not_found(store):
    digest = sm3(b"never stored").hex()
    assert not store.exists(digest)
    with pytest.raises(DocumentNotFound) as caught:
        store.get(digest)
    assert caught.value.digest == digest and digest in str(caught.value)


def test_a_corrupted_file_is_an_error_not_data(store):
    digest = store.put(b"the signed OFD")
    store.path(digest).write_bytes(b"the signed OFE")
    with pytest.raises(DocumentCorrupted) as caught:
        store.get(digest)
    assert caught.value.actual == sm3(b"the signed OFE").hex() and "corrupted" in str(caught.value)
    # Storing the good bytes again repairs the file.
    assert store.put(b"the signed OFD") == digest and store.get(digest) == b"the signed OFD"


def test_a_truncated_file_is_an_error(store):
    digest = store.put(b"x" * 10_000)
    with open(store.path(digest), "r+b") as f:
        f.truncate(5_000)
    with pytest.raises(DocumentCorrupted):
        store.get(digest)


@pytest.mark.parametrize("digest", [
    "../" * 10 + "etc/passwd", "/etc/passwd", "ab/cd/" + "0" * 58, "0" * 63, "0" * 65, "g" * 64,
    "0" * 64 + "\n", " " + "0" * 63, "0" * 62 + "..", "０" * 64, "", None, 12, b"0" * 64,
])
def test_digests_that_are_not_64_hex_characters_are_refused(store, digest):
    for call in (store.get, store.exists, store.path):
        with pytest.raises(InvalidDigest, match="64 hexadecimal"):
            call(digest)


def test_put_refuses_what_is_not_bytes(store):
    with pytest.raises(TypeError, match="bytes"):
        store.put("text")  # type: ignore[arg-type]


def test_a_failed_write_leaves_nothing_behind(store, monkeypatch):
    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"document")
    monkeypatch.undo()
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
    assert not store.exists(sm3(b"document").hex())


def test_not_durable_store_round_trips(tmp_path):
    store = DocumentStore(tmp_path, durable=False)
    assert store.get(store.put(b"fast")) == b"fast"


def test_a_temporary_name_left_behind_is_never_written_over(store, monkeypatch):
    import itertools

    import licences.storage as storage

    data = b"licence document " * 100
    target = store.path(sm3(data).hex())
    target.parent.mkdir(parents=True)
    monkeypatch.setattr(storage, "_TEMPORARY_NUMBERS", itertools.count(7))
    stale = target.parent / f".incoming-{os.getpid()}-7.part"  # as a dead process with our ID left it
    stale.write_bytes(b"someone else's bytes")
    assert store.put(data) == sm3(data).hex()
    assert store.get(sm3(data).hex()) == data and stale.read_bytes() == b"someone else's bytes"
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([stale.name, target.name])
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
