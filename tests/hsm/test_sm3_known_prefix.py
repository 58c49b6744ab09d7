"""SM3 from a remembered prefix's state: every hit and every miss gives exactly the SM3 of the
data (checked against a fresh OpenSSL context that never saw a prefix), the store stays bounded,
and threads hashing while prefixes come and go all get the right digests."""

from __future__ import annotations

import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import hashes

from hsm import sm3 as sm3_module
from hsm.hazmat import SM2PrivateKey
from hsm.sm2 import DEFAULT_UID, remember_message_prefix, signing_digest, z_digest
from hsm.sm3 import (
    MAX_PREFIX_SIZE,
    MAX_PREFIXES,
    MIN_PREFIX_SIZE,
    SM3,
    forget_prefixes,
    remember_prefix,
    remembered_prefixes,
    sm3,
)


def reference(data: bytes) -> bytes:
    """SM3 with no prefix machinery at all."""
    h = hashes.Hash(hashes.SM3())
    h.update(bytes(data))
    return h.finalize()


@pytest.fixture(autouse=True)
def clean():
    forget_prefixes()
    yield
    forget_prefixes()


@pytest.fixture
def hits(monkeypatch) -> list[int]:
    """The length of the prefix each hit started from."""
    seen: list[int] = []
    original = sm3_module._state_after

    def counting(entry):
        seen.append(len(entry.prefix))
        return original(entry)

    monkeypatch.setattr(sm3_module, "_state_after", counting)
    return seen


PREFIX = os.urandom(80_851)


@pytest.mark.parametrize("tail", [0, 1, 55, 56, 63, 64, 65, 127, 4096, 126_000])
def test_data_that_begins_with_the_prefix_hashes_exactly(hits, tail):
    remember_prefix(PREFIX)
    data = PREFIX + os.urandom(tail)
    assert sm3(data) == reference(data)
    assert sm3(data) == reference(data)  # the second hit starts from the same, unchanged state
    assert hits == [len(PREFIX)] * 2


def test_many_hits_with_different_tails_each_exact(hits):
    remember_prefix(PREFIX)
    for _ in range(50):
        data = PREFIX + os.urandom(random.randrange(0, 300))
        assert sm3(data) == reference(data)
    assert len(hits) == 50


@pytest.mark.parametrize("change", ["shorter", "last prefix byte", "first byte", "middle byte", "unrelated"])
def test_data_that_does_not_begin_with_the_prefix_is_a_miss_and_exact(hits, change):
    remember_prefix(PREFIX)
    data = bytearray(PREFIX + os.urandom(1000))
    if change == "shorter":
        data = data[:len(PREFIX) - 1]
    elif change == "last prefix byte":
        data[len(PREFIX) - 1] ^= 1
    elif change == "first byte":
        data[0] ^= 0x80
    elif change == "middle byte":
        data[len(PREFIX) // 2] ^= 0x01
    else:
        data = bytearray(os.urandom(len(PREFIX) + 1000))
    assert sm3(bytes(data)) == reference(data)
    assert hits == []


def test_a_prefix_longer_than_the_data_is_never_used(hits):
    remember_prefix(PREFIX)
    for size in (0, 1, MIN_PREFIX_SIZE - 1, MIN_PREFIX_SIZE, len(PREFIX) - 1):
        data = PREFIX[:size]
        assert sm3(data) == reference(data)
    assert hits == []


def test_bytearray_and_memoryview_inputs(hits):
    remember_prefix(PREFIX)
    data = PREFIX + os.urandom(777)
    expected = reference(data)
    assert sm3(bytearray(data)) == expected
    assert sm3(memoryview(data)) == expected
    framed = b"xyz" + data + b"abc"
    assert sm3(memoryview(framed)[3:-3]) == expected  # a slice that starts inside other bytes
    assert sm3(memoryview(framed)[4:-3]) == reference(framed[4:-3])  # off by one: a miss
    words = data[:len(data) // 4 * 4]
    assert sm3(memoryview(words).cast("I")) == reference(words)  # another item format, same bytes
    assert len(hits) == 4


def test_a_non_contiguous_memoryview_is_refused_as_before():
    remember_prefix(PREFIX)
    strided = memoryview(PREFIX + PREFIX)[::2]
    with pytest.raises((TypeError, ValueError, BufferError)) as remembered:
        sm3(strided)
    forget_prefixes()
    with pytest.raises(type(remembered.value)):
        sm3(strided)


def test_a_remembered_prefix_is_a_copy_of_the_callers_bytes(hits):
    mutable = bytearray(PREFIX)
    remember_prefix(mutable)
    mutable[10] ^= 0xFF  # the caller reuses its buffer: what was remembered does not change
    data = bytes(mutable) + b"tail"
    assert sm3(data) == reference(data) and hits == []
    original = PREFIX + b"tail"
    assert sm3(original) == reference(original) and hits == [len(PREFIX)]


def test_nested_prefixes_either_hit_is_exact(hits):
    longer = PREFIX + os.urandom(5000)
    remember_prefix(PREFIX)
    remember_prefix(longer)
    for data in (longer + b"!", PREFIX + b"?", longer, PREFIX):
        assert sm3(data) == reference(data)
    assert len(hits) == 4


def test_too_short_and_too_long_prefixes_are_not_remembered(hits):
    remember_prefix(os.urandom(MIN_PREFIX_SIZE - 1))
    remember_prefix(bytes(MAX_PREFIX_SIZE + 1))
    assert remembered_prefixes() == 0
    remember_prefix(os.urandom(MIN_PREFIX_SIZE))
    remember_prefix(bytes(MAX_PREFIX_SIZE))
    assert remembered_prefixes() == 2
    data = bytes(MAX_PREFIX_SIZE) + b"x"
    assert sm3(data) == reference(data) and hits == [MAX_PREFIX_SIZE]


def test_the_store_is_bounded_and_drops_the_least_recently_used(hits):
    prefixes = [os.urandom(MIN_PREFIX_SIZE + i) for i in range(MAX_PREFIXES + 5)]
    remember_prefix(prefixes[0])
    for p in prefixes[1:]:
        remember_prefix(prefixes[0])  # kept in use: never the one dropped
        remember_prefix(p)
    assert remembered_prefixes() == MAX_PREFIXES
    for p in prefixes:
        assert sm3(p + b"!") == reference(p + b"!")
    kept = {MIN_PREFIX_SIZE + i for i in range(len(prefixes) - MAX_PREFIXES + 1, len(prefixes))}
    assert set(hits) == kept | {MIN_PREFIX_SIZE}
    remember_prefix(prefixes[0])  # remembering again what is known adds nothing
    assert remembered_prefixes() == MAX_PREFIXES


def test_a_hit_marks_the_prefix_recently_used(hits):
    first = os.urandom(MIN_PREFIX_SIZE)
    remember_prefix(first)
    others = [os.urandom(MIN_PREFIX_SIZE + 1 + i) for i in range(MAX_PREFIXES)]
    for p in others[:-1]:
        remember_prefix(p)
    sm3(first + b".")  # used by hashing alone, not remembered again
    remember_prefix(others[-1])  # the store is full: the oldest *unused* one goes
    hits.clear()
    assert sm3(first + b".") == reference(first + b".") and hits == [MIN_PREFIX_SIZE]
    assert sm3(others[0] + b".") == reference(others[0] + b".") and hits == [MIN_PREFIX_SIZE]


def test_incremental_sm3_starts_its_first_piece_from_the_prefix(hits):
    remember_prefix(PREFIX)
    tail = os.urandom(3000)
    whole = PREFIX + tail
    h = SM3(PREFIX + tail[:10])
    h.update(tail[10:])
    assert h.digest() == h.digest() == reference(whole)
    h = SM3()
    h.update(b"")
    h.update(PREFIX + tail[:1])
    h.update(tail[1:])
    assert h.hexdigest() == reference(whole).hex()
    assert len(hits) == 2
    h = SM3()
    h.update(PREFIX[:100])  # the first piece does not hold the prefix: hashed plainly
    h.update(PREFIX[100:] + tail)
    assert h.digest() == reference(whole) and len(hits) == 2
    assert SM3().digest() == reference(b"")


def test_signing_digest_from_a_remembered_message_prefix_signs_and_verifies(hits):
    key = SM2PrivateKey.generate()
    point = key.public_key().point
    remember_message_prefix(point, PREFIX)
    message = PREFIX + b"timeInfo dataHash propertyInfo"
    z = z_digest(point, DEFAULT_UID)
    assert signing_digest(point, message) == reference(z + message)
    assert hits == [len(z) + len(PREFIX)]
    # Another user ID means another Z_A: no hit, and still the right digest.
    assert signing_digest(point, message, b"other-id") == reference(z_digest(point, b"other-id") + message)
    other = SM2PrivateKey.generate().public_key().point
    assert signing_digest(other, message) == reference(z_digest(other, DEFAULT_UID) + message)
    assert len(hits) == 1
    signature = key.sign(message)
    assert key.public_key().verify(signature, message)
    forget_prefixes()
    assert key.public_key().verify(signature, message)  # the same e without any prefix
    with pytest.raises(Exception, match="does not verify"):
        key.public_key().verify(signature, message[:-1] + b"?")


def test_threads_hashing_while_prefixes_come_and_go():
    prefixes = [os.urandom(MIN_PREFIX_SIZE * 4 + i * 97) for i in range(MAX_PREFIXES + 3)]
    datas = [p + os.urandom(random.randrange(0, 2000)) for p in prefixes for _ in range(3)]
    datas += [os.urandom(MIN_PREFIX_SIZE * 5) for _ in range(5)]
    expected = {d: reference(d) for d in datas}
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            for p in prefixes:
                remember_prefix(p)
            if random.random() < 0.05:
                forget_prefixes()

    def work(seed: int) -> int:
        rng = random.Random(seed)
        wrong = 0
        for _ in range(300):
            data = rng.choice(datas)
            if rng.random() < 0.5:
                got = sm3(data)
            else:
                cut = rng.randrange(len(data) + 1)
                h = SM3(data[:cut])
                h.update(data[cut:])
                got = h.digest()
            wrong += got != expected[data]
        return wrong

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(work, range(16))) == 0
    finally:
        stop.set()
        churner.join()
    assert remembered_prefixes() <= MAX_PREFIXES
