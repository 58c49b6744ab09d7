"""What makes the QR page cheap under load without making it stale: a worker verifies a QR text
once per signer-certificate list (re-read every trust_ttl, so a revoked signer still stops
verifying), keeps a bounded number of them, and loads shared trust material once, not once per
thread of a burst (a fresh worker's first 64 requests used to load the catalogue 40 times)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import verify_api.licence_check as licence_check
from licences.qr_payload import QrVerification
from verify_api.licence_check import VerifiedPayloads
from verify_api.records import PublicRecords

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _counting(monkeypatch, *, readable: bool = True) -> list[str]:
    calls: list[str] = []

    def verify(text, signers, *, at):
        calls.append(text)
        return QrVerification((), claims=object() if readable else None)

    monkeypatch.setattr(licence_check, "verify_payload", verify)
    return calls


def test_a_payload_is_verified_once_per_signer_list(monkeypatch):
    calls = _counting(monkeypatch)
    cache, signers = VerifiedPayloads(size=8), [b"cert"]
    first = cache.verify("QR-1", signers, NOW)
    assert cache.verify("QR-1", signers, NOW) is first and calls == ["QR-1"]
    cache.verify("QR-1", [b"cert"], NOW)  # the list re-read (trust_ttl passed): verified again
    assert calls == ["QR-1", "QR-1"]
    cache.verify("QR-1", signers, NOW.replace(day=3))  # another China day: verified again
    assert len(calls) == 3


def test_the_cache_is_bounded_and_keeps_no_unreadable_text(monkeypatch):
    calls = _counting(monkeypatch)
    cache, signers = VerifiedPayloads(size=3), [b"cert"]
    for text in ("a", "b", "c", "d"):
        cache.verify(text, signers, NOW)
    cache.verify("a", signers, NOW)  # the least recently used went first
    assert calls == ["a", "b", "c", "d", "a"] and len(cache._entries) == 3
    calls = _counting(monkeypatch, readable=False)
    cache.verify("garbage", signers, NOW)
    cache.verify("garbage", signers, NOW)
    assert calls == ["garbage", "garbage"] and ("garbage", NOW.date()) not in cache._entries


def test_shared_material_is_loaded_once_by_a_burst_of_threads(tmp_path):
    records = PublicRecords(tmp_path, trust_ttl=60)
    loads: list[int] = []

    def slow_load():
        loads.append(1)
        time.sleep(0.2)
        return ["signers"]

    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(records._cached("signers", slow_load)))
               for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len(results) == 16 and all(r is results[0] for r in results)
    expired = PublicRecords(tmp_path, trust_ttl=0)  # a ttl of 0: loaded on every ask
    expired._cached("k", slow_load)
    expired._cached("k", slow_load)
    assert len(loads) == 3
