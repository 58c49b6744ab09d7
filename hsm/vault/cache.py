"""How long a key unwrapped by Vault Transit stays in the signing process.

Every decrypt is a round trip to Vault and an audited unwrap; a licence batch signs thousands
of times a minute with the same seal key. So an unwrapped key is kept for a bounded time
(``unwrap_cache_seconds``, default 60, 0 = never kept) and then dropped — by a sweeper thread
that wakes at the earliest deadline, so a key is gone on time even when nobody signs again
(expiry on read alone would keep an idle key for hours). :meth:`UnwrapCache.close` drops
everything at once and stops the sweeper.

What "dropped" means in Python, honestly: the cache's reference to the key object goes, and
with it the last reference the store holds, so the signing backend's key object is released
(the tongsuo backend frees its C-side key; the pure backend's Python ``int`` scalar becomes
garbage, not overwritten). The one buffer this code controls — the ``bytearray`` the decoded
Transit plaintext is copied into — is zeroed right after loading (see
:func:`hsm.vault.store._scalar_from_plaintext`); the immutable copies Python made on the way
(the HTTP response body, the base64 ``str`` in the parsed JSON, the ``bytes`` from decoding)
cannot be overwritten and live until the garbage collector reuses their memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..hazmat import SM2PrivateKey

#: The sweeper re-reads the clock at least this often, so an injected (test) clock that jumps
#: is noticed too; with the real clock it sleeps until the earliest deadline.
SWEEP_AT_LEAST_EVERY = 1.0


class UnwrapCache:
    """(label, version) -> private key, each entry living at most ``seconds``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        if seconds < 0:
            raise ValueError("the unwrap cache time cannot be negative")
        self.seconds = seconds
        self._clock = clock
        self._entries: dict[tuple[str, int], tuple[float, SM2PrivateKey]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._sweeper: threading.Thread | None = None
        self._closed = False

    def get(self, label: str, version: int) -> SM2PrivateKey | None:
        with self._lock:
            self._expire()
            entry = self._entries.get((label, version))
            return entry[1] if entry else None

    def put(self, label: str, version: int, key: SM2PrivateKey) -> None:
        if self.seconds == 0:
            return
        with self._lock:
            if self._closed:
                return
            self._entries[(label, version)] = (self._clock() + self.seconds, key)
            if self._sweeper is None:
                self._sweeper = threading.Thread(target=self._sweep_until_empty, name="vault-unwrap-sweeper",
                                                 daemon=True)
                self._sweeper.start()
            self._wake.notify()

    def drop(self, label: str, version: int | None = None) -> None:
        with self._lock:
            for entry in [k for k in self._entries if k[0] == label and version in (None, k[1])]:
                del self._entries[entry]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def sweep(self) -> None:
        """Drop every expired entry now (the sweeper does this on its own)."""
        with self._lock:
            self._expire()

    def close(self) -> None:
        """Drop every key, stop the sweeper; later :meth:`put` calls keep nothing."""
        with self._lock:
            self._closed = True
            self._entries.clear()
            self._wake.notify_all()
            sweeper = self._sweeper
        if sweeper is not None and sweeper is not threading.current_thread():
            sweeper.join(timeout=5)

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        for entry in [k for k, (deadline, _) in self._entries.items() if deadline <= now]:
            del self._entries[entry]

    def _sweep_until_empty(self) -> None:
        """The sweeper: sleeps until the earliest deadline, drops what expired, ends when empty."""
        with self._lock:
            try:
                while not self._closed:
                    self._expire()
                    if not self._entries:
                        return
                    earliest = min(deadline for deadline, _ in self._entries.values())
                    self._wake.wait(timeout=min(max(earliest - self._clock(), 0.0) + 0.01,
                                                SWEEP_AT_LEAST_EVERY))
            finally:
                self._sweeper = None

    def __repr__(self) -> str:
        return f"UnwrapCache(seconds={self.seconds}, entries={len(self)})"
