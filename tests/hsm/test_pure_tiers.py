"""The pure backend answers the same on every path: no table, warm comb, hot comb, G's comb —
for valid signatures and for every kind of tampering — and agrees with tongsuopy."""

from __future__ import annotations

import pytest

from hsm.backends import available, get_backend
from hsm.backends import pure as pure_module
from hsm.curve import N
from hsm.sm3 import sm3


@pytest.fixture
def small_thresholds(monkeypatch):
    monkeypatch.setattr(pure_module, "_Q_COMB_AFTER", 2)
    monkeypatch.setattr(pure_module, "_Q_HOT_AFTER", 3)
    pure_module.clear_key_cache()
    yield
    pure_module.clear_key_cache()


def _cases(backend, key, e):
    r, s = key.sign_digest(e)
    bad_e = sm3(e)
    return [((r, s, e), True), ((r, s, bad_e), False), (((r + 1) % N or 1, s, e), False),
            ((r, (s + 1) % N or 1, e), False), ((N - s, s, e), False)]


def test_every_tier_gives_the_same_answers(small_thresholds):
    pure = get_backend("pure")
    other = get_backend("tongsuo") if "tongsuo" in available() else None
    pure_module.build_generator_table()
    for _ in range(3):
        key = pure.generate()
        q, e = key.public_point, sm3(b"tiers")
        cases = _cases(pure, key, e)
        seen = set()
        for _round in range(8):  # uncached, then warm, then hot
            seen.add("hot" if pure_module._KEYS.is_hot(q) else "warm" if q in pure_module._KEYS else "none")
            for (r, s, digest), expected in cases:
                assert pure.verify_digest(q, digest, r, s) is expected
                if other is not None:
                    assert other.verify_digest(q, digest, r, s) is expected
        assert seen == {"none", "warm", "hot"}


def test_a_hot_key_evicted_still_verifies(small_thresholds, monkeypatch):
    monkeypatch.setattr(pure_module, "_Q_HOT_MAX", 1)
    pure = get_backend("pure")
    keys = [pure.generate() for _ in range(3)]
    e = sm3(b"evict")
    sigs = [k.sign_digest(e) for k in keys]
    for _ in range(10):
        for key, (r, s) in zip(keys, sigs, strict=True):
            assert pure.verify_digest(key.public_point, e, r, s)
            assert not pure.verify_digest(key.public_point, sm3(e), r, s)
    assert sum(pure_module._KEYS.is_hot(k.public_point) for k in keys) == 1
