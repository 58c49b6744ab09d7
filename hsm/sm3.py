"""SM3 (GB/T 32905) hashing and HMAC-SM3, through OpenSSL.

A pure-Python SM3 is ~300 times slower; OpenSSL's is the only one used. Hashing goes through
Python's own ``hashlib`` when the OpenSSL it is linked with offers SM3 (the system's OpenSSL 3:
~365 MB/s here against ~285 MB/s for the copy ``cryptography`` bundles, and a licence hashes
~350 kB), else through ``cryptography``; both are checked against GB/T 32905's example at
import, so a backend that answers wrongly is never used. HMAC-SM3 stays on ``cryptography``.

Known prefixes: much of what is hashed repeats a large prefix — every seal signature a seal
makes signs Z_A || TBS_Sign, whose first tens of kilobytes are the seal itself; every licence package a
seal stamps starts with that seal's Seal.esl entry; a signed PDF's digest covers the file up to its
/Contents, which is how the file the store then hashes begins. A writer that knows it is about to produce
such data calls :func:`remember_prefix`; :func:`sm3` and :class:`SM3` then start data that
begins with a remembered prefix from the hash state after that prefix, instead of hashing it
again. A hit is exact by construction: the prefix's bytes are kept and compared with the
data's (never an identifier or a digest of them), and the state is that of SM3 over exactly
those bytes, so the result is the SM3 of the data whatever was remembered. Few prefixes are
kept (:data:`MAX_PREFIXES`, least recently used dropped first, each at most
:data:`MAX_PREFIX_SIZE`); a state is computed at the first data that begins with its prefix,
and is only ever copied, never updated, so threads share them safely.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Protocol

from cryptography.hazmat.primitives import hashes, hmac

DIGEST_SIZE = 32

#: How many prefixes are remembered: the seal signatures and packages of a few seals, and the
#: signed part of each PDF of a group of licences until the store hashes the files.
MAX_PREFIXES = 16
#: Shorter prefixes are not worth a comparison on every hash of data at least that long.
MIN_PREFIX_SIZE = 4096
#: Longer prefixes are not remembered: memory stays below MAX_PREFIXES × this (and as much state).
MAX_PREFIX_SIZE = 1024 * 1024


class _Context(Protocol):
    """What an SM3 context offers here: hashlib's interface (``digest`` does not end it)."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def copy(self) -> _Context: ...

    def digest(self) -> bytes: ...


class _CryptographySM3:
    """``cryptography``'s SM3 with hashlib's interface: the fallback backend."""

    __slots__ = ("_h",)

    def __init__(self, h: hashes.Hash | None = None):
        self._h = h if h is not None else hashes.Hash(hashes.SM3())

    def update(self, data: bytes | bytearray | memoryview, /) -> None:
        self._h.update(data)

    def copy(self) -> _CryptographySM3:
        return _CryptographySM3(self._h.copy())

    def digest(self) -> bytes:
        return self._h.copy().finalize()


#: GB/T 32905-2016 Appendix A, example 1: SM3("abc").
_EXAMPLE = bytes.fromhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")


def _blank() -> _Context:
    """An empty context to copy from (a copy is cheaper than a new context by name)."""
    try:
        blank: _Context = hashlib.new("sm3")
    except ValueError:  # this Python's OpenSSL has no SM3
        return _CryptographySM3()
    probe = blank.copy()
    probe.update(b"abc")
    return blank if probe.digest() == _EXAMPLE else _CryptographySM3()


_BLANK = _blank()
#: Which implementation hashes: "hashlib" or "cryptography" (reported, and asserted by tests).
BACKEND = "cryptography" if isinstance(_BLANK, _CryptographySM3) else "hashlib"


def _new() -> _Context:
    return _BLANK.copy()


class _Known:
    """A remembered prefix and, once some data began with it, the SM3 state after it (never
    updated: callers hash from a copy)."""

    __slots__ = ("prefix", "state")

    def __init__(self, prefix: bytes):
        self.prefix = prefix
        self.state: _Context | None = None


# Most recently used first. Replaced as a whole under the lock; readers take it without.
_known: tuple[_Known, ...] = ()
_lock = threading.Lock()


def remember_prefix(prefix: bytes | bytearray | memoryview) -> None:
    """Expect data that begins with ``prefix`` to be hashed (more than once): such data is then
    hashed from the state after the prefix. A prefix outside MIN_PREFIX_SIZE..MAX_PREFIX_SIZE
    is ignored; remembering one that is already known only marks it as recently used."""
    global _known
    if not isinstance(prefix, bytes):
        prefix = bytes(prefix)
    if not MIN_PREFIX_SIZE <= len(prefix) <= MAX_PREFIX_SIZE:
        return
    known = _known
    if known and known[0].prefix == prefix:
        return  # the common case, a writer repeating itself: no lock
    with _lock:
        known = _known
        for entry in known:
            if entry.prefix == prefix:
                _touch(entry)
                return
        _known = (_Known(prefix), *known[:MAX_PREFIXES - 1])


def _touch(entry: _Known) -> None:
    """Make ``entry`` the most recently used, if it is still remembered (caller holds the lock)."""
    global _known
    known = _known
    if known and known[0] is not entry and entry in known:
        _known = (entry, *(e for e in known if e is not entry))


def forget_prefixes() -> None:
    """Drop every remembered prefix (tests; a process that no longer uses a seal)."""
    global _known
    with _lock:
        _known = ()


def remembered_prefixes() -> int:
    """How many prefixes are remembered now (at most :data:`MAX_PREFIXES`)."""
    return len(_known)


def _state_after(entry: _Known) -> _Context:
    state = entry.state
    if state is None:
        state = _new()
        state.update(entry.prefix)
        entry.state = state  # two threads may both compute it: either result is the same state
    return state


def _hasher(data) -> _Context:
    """An SM3 context that has absorbed ``data``: from a remembered prefix's state when ``data``
    begins with that prefix, from the start otherwise."""
    known = _known
    if known and isinstance(data, memoryview) and data.c_contiguous and data.nbytes >= MIN_PREFIX_SIZE:
        data = data.tobytes()  # a copy is cheap next to hashing it, and memoryview has no startswith
    if known and isinstance(data, bytes | bytearray) and len(data) >= MIN_PREFIX_SIZE:
        size = len(data)
        for entry in known:
            prefix = entry.prefix
            if len(prefix) <= size and data.startswith(prefix):
                h = _state_after(entry).copy()
                h.update(memoryview(data)[len(prefix):])
                if entry is not known[0]:
                    with _lock:
                        _touch(entry)
                return h
    h = _new()
    h.update(data)
    return h


def sm3(data: bytes) -> bytes:
    """SM3 digest of ``data`` (32 bytes)."""
    return _hasher(data).digest()


class SM3:
    """Incremental SM3, for data that arrives in pieces (files, streams). The first piece (the
    constructor's ``data`` or the first :meth:`update`) starts from a remembered prefix's state
    when it begins with one."""

    digest_size = DIGEST_SIZE

    def __init__(self, data: bytes = b""):
        self._h = _hasher(data) if data else None

    def update(self, data: bytes) -> None:
        if self._h is None:
            if data:
                self._h = _hasher(data)
            return
        self._h.update(data)

    def digest(self) -> bytes:
        return (self._h if self._h is not None else _BLANK).digest()

    def hexdigest(self) -> str:
        return self.digest().hex()


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC-SM3 (RFC 2104 construction over SM3)."""
    h = hmac.HMAC(key, hashes.SM3())
    h.update(data)
    return h.finalize()
