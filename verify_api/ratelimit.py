"""Per-client token buckets: the brake on anyone trying to enumerate licences.

In memory, per worker process (so N workers allow N times the rate in the worst case; the
QR nonce, not the limit, is what makes enumeration hopeless — the limit keeps the service up).
Memory is bounded: past ``max_clients`` addresses the least recently seen are forgotten,
which can only ever give a forgotten client a full bucket again.

Clients are keyed by :func:`client_key`: an IPv4 address as it is, an IPv6 client by its /64
(one subscriber's network: a single host can take any of its 2^64 addresses at will, so a
per-address bucket would be no limit at all). Behind a reverse proxy the address is the one
uvicorn's proxy-headers middleware took from ``X-Forwarded-For`` — trusted only from the
proxies ``zhengyin serve-verify --forwarded-allow-ips`` names, never from anyone.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache

#: The IPv6 prefix length a client is limited by.
IPV6_CLIENT_PREFIX = 64


@lru_cache(maxsize=4096)  # parsing an address cost a tenth of a cached QR page
def client_key(address: str | None) -> str:
    """The bucket a client address counts against: the IPv4 address (an IPv4-mapped IPv6
    address counts as its IPv4 one), the /64 of an IPv6 address, the text itself otherwise
    (a Unix socket, a test client's name)."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone index
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


class RateLimiter:
    """``burst`` requests at once, refilled at ``per_minute`` a minute, for each client key."""

    def __init__(self, per_minute: float, burst: int, *, max_clients: int = 100_000,
                 clock: Callable[[], float] = time.monotonic):
        if per_minute <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("a rate limit needs a positive rate, a burst of at least 1 and room for clients")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one token of ``key``: 0 if allowed, else the seconds until one is available."""
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> str:
    """The Retry-After header value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))
