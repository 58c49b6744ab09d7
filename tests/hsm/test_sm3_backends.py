"""SM3's two OpenSSL backends (Python's hashlib, cryptography's bundled copy) give the same
digests for every way data reaches them, and a backend that answers wrongly is not used."""

from __future__ import annotations

import hashlib
import os
import random

import pytest
from cryptography.hazmat.primitives import hashes

from hsm import sm3 as sm3_module
from hsm.sm3 import SM3, forget_prefixes, remember_prefix, sm3

ABC = "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
#: GB/T 32905-2016 Appendix A, example 2: "abcd" sixteen times.
ABCD16 = "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def reference(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


@pytest.fixture(params=["hashlib", "cryptography"])
def backend(request, monkeypatch):
    forget_prefixes()
    if request.param == "cryptography":
        monkeypatch.setattr(sm3_module, "_BLANK", sm3_module._CryptographySM3())
    elif sm3_module.BACKEND != "hashlib":
        pytest.skip("this Python's OpenSSL has no SM3")
    yield request.param
    forget_prefixes()


def test_the_system_openssl_hashes_when_it_has_sm3():
    if "sm3" not in hashlib.algorithms_available:
        pytest.skip("this Python's OpenSSL has no SM3")
    assert sm3_module.BACKEND == "hashlib"


def test_the_standard_examples(backend):
    assert sm3(b"abc").hex() == ABC
    assert sm3(b"abcd" * 16).hex() == ABCD16
    assert SM3().hexdigest() == reference(b"").hex()


def test_both_backends_agree_on_data_pieces_copies_and_prefixes(backend):
    rng = random.Random(32905)
    prefix = os.urandom(20_000)
    remember_prefix(prefix)
    for _ in range(40):
        data = (prefix if rng.random() < 0.5 else b"") + os.urandom(rng.randint(0, 70_000))
        expected = reference(data)
        assert sm3(data) == expected
        assert sm3(memoryview(data)) == expected
        h = SM3()
        cut = rng.randint(0, len(data))
        h.update(data[:cut])
        before = h.digest()  # digest does not end the context
        h.update(data[cut:])
        assert before == reference(data[:cut]) and h.digest() == expected == h.digest()


def test_a_backend_that_answers_wrongly_is_not_used(monkeypatch):
    class Wrong:
        def update(self, data):
            pass

        def copy(self):
            return self

        def digest(self):
            return bytes(32)

    monkeypatch.setattr(hashlib, "new", lambda name, *a: Wrong())
    assert isinstance(sm3_module._blank(), sm3_module._CryptographySM3)

    def absent(name, *a):
        raise ValueError(f"unsupported hash type {name}")

    monkeypatch.setattr(hashlib, "new", absent)
    assert isinstance(sm3_module._blank(), sm3_module._CryptographySM3)
