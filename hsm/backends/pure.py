"""SM2 in pure Python, fast enough to verify in production.

Verification handles only public data, so it may use every speed trick, and this backend
is built for it. Signing works too (for machines without the C extension) but Python
integers are not constant-time: wherever tongsuo installs, tongsuo signs.

How ``k1*P1 + k2*P2`` is computed:

* **Comb tables** (:class:`_Comb`). For a base ``B`` and width ``w``, window ``i`` holds the
  affine points ``m * 2^(w*i) * B`` for the signed digits ``m`` in ``[-2^(w-1), 2^(w-1))``.
  A scalar then costs one mixed addition per window and no doubling: 20 additions for
  ``G`` (w = 13), 33 for a public key (w = 8) and 22 for a hot public key (w = 12). Adding
  ``2^(w-1)`` to every digit turns signed digits into plain indexes (bytes, for w = 8), so
  lookups need no sign test.
  Tables are built level by level with affine additions that share one inversion per level.
* **Window chain** (:func:`_window_chain`). A scalar without a comb (a key seen for the
  first times) goes through 255 doublings, adding an entry of a 32-point table every 5 bits;
  two such scalars share the doublings (Shamir's trick).
* Points in flight use XYZZ coordinates (``x = X/ZZ``, ``y = Y/ZZZ``), whose mixed addition
  takes the fewest Python operations; doublings use ``a = -3``. Verification never inverts:
  it compares ``X`` with ``x1 * ZZ`` for both candidates of ``x1`` (``v`` and ``v + n``).
* The addition formula is incomplete: adding a point to itself or to its negative gives
  ``ZZ = 0``, which then stays 0. Rather than test every addition, the result's ``ZZ`` is
  tested once and such (astronomically rare, or crafted) inputs are recomputed by the slow,
  complete :func:`_ref_mul_add`. No input gets a wrong answer.

A table is built once it has paid for itself (ski rental): a public key gets its comb on
its ``_Q_COMB_AFTER``-th verification (a wider one after ``_Q_HOT_AFTER`` more) and ``G``
its comb on its ``_G_COMB_AFTER``-th use, so one-off work never pays for a table it will not
reuse. Numbers are ``gmpy2.mpz`` when gmpy2 imports (about 3x faster for 256-bit modular
products), plain ``int`` otherwise.

Nonces come from :mod:`secrets`, hedged with the key and digest (never from :mod:`random`).
Points given to verification have already been validated by :class:`hsm.sm2.SM2PublicKey`.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ..curve import GX, GY, N, P, Point
from ..sm3 import hmac_sm3

try:
    import gmpy2

    HAVE_GMPY2 = True
    _mpz: Callable[[int], int] = gmpy2.mpz
    _invert: Callable[[int, int], int] = gmpy2.invert
except ImportError:  # pragma: no cover - only on machines without gmpy2
    HAVE_GMPY2 = False
    _mpz = int

    def _invert(a: int, m: int) -> int:
        return pow(a, -1, m)


_p = _mpz(P)
_ONE = _mpz(1)

Affine = tuple[int, int]
XYZZ = tuple[int, int, int, int]
Table = list[Affine | None]


# ---- complete reference arithmetic (slow; only for exceptional cases) --------------------

def _ref_add(a: Affine | None, b: Affine | None) -> Affine | None:
    """Affine addition handling every case; ``None`` is the point at infinity."""
    if a is None:
        return b
    if b is None:
        return a
    (x1, y1), (x2, y2) = a, b
    if x1 == x2:
        if (y1 + y2) % _p == 0:
            return None
        lam = (3 * x1 * x1 - 3) * _invert(2 * y1 % _p, _p) % _p
    else:
        lam = (y2 - y1) * _invert((x2 - x1) % _p, _p) % _p
    x3 = (lam * lam - x1 - x2) % _p
    return x3, (lam * (x1 - x3) - y1) % _p


def _ref_mul_add(terms: Sequence[tuple[int, Affine]]) -> Affine | None:
    """Σ k_i * P_i by plain double-and-add with complete affine formulas."""
    acc: Affine | None = None
    for bit in range(max(k.bit_length() for k, _ in terms) - 1, -1, -1):
        acc = _ref_add(acc, acc)
        for k, (x, y) in terms:
            if k >> bit & 1:
                acc = _ref_add(acc, (_mpz(x), _mpz(y)))
    return acc


# ---- fast formulas -----------------------------------------------------------------------

def _add_points(acc: XYZZ | None, points: Sequence[Affine]) -> XYZZ | None:
    """acc + Σ points (add-2008-s, XYZZ + affine): the hot loop of every operation.

    A doubling or a sum at infinity along the way leaves ZZ = 0 for good; callers check.
    H and R are reduced so that H*H and R*R stay 512-bit; HHH and V are not (measured fastest).
    """
    p = _p
    it = iter(points)
    if acc is None:
        for x, y in it:
            acc = (x, y, _ONE, _ONE)
            break
        else:
            return None
    X, Y, ZZ, ZZZ = acc
    for x2, y2 in it:
        H = x2 * ZZ % p - X
        R = y2 * ZZZ % p - Y
        HH = H * H % p
        HHH = H * HH
        V = X * HH
        X = (R * R - HHH - V - V) % p
        Y = (R * (V - X) - Y * HHH) % p
        ZZ = ZZ * HH % p
        ZZZ = ZZZ * HHH % p
    return X, Y, ZZ, ZZZ


def _double_n(acc: XYZZ, times: int) -> XYZZ:
    """2^times * acc (dbl-2008-s-1 with a = -3). The curve has no point of order 2."""
    p = _p
    X, Y, ZZ, ZZZ = acc
    for _ in range(times):
        U = Y + Y
        V = U * U % p
        W = U * V % p
        S = X * V % p
        M = (X - ZZ) * (X + ZZ) * 3 % p
        X = (M * M - S - S) % p
        Y = (M * (S - X) - W * Y) % p
        ZZ = V * ZZ % p
        ZZZ = W * ZZZ % p
    return X, Y, ZZ, ZZZ


def _batch_invert(values: Sequence[int]) -> list[int]:
    """Montgomery's trick: every inverse mod p for one inversion and three products each."""
    p = _p
    prefix = []
    acc = _ONE
    for v in values:
        prefix.append(acc)
        acc = acc * v % p
    inv = _invert(acc, p)
    out = [inv] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % p
        inv = inv * values[i] % p
    return out


def _multiples(bases: Sequence[Affine], count: int) -> list[list[Affine]]:
    """[1*B, 2*B, ..., count*B] in affine form for every base B (count a power of two).

    Level by level: (j+1 .. 2j-1)*B = (1 .. j-1)*B + j*B and 2j*B = double(j*B), all bases
    sharing one inversion per level. None of these additions is exceptional: i*B = ±j*B
    would need i ≡ ±j (mod n).
    """
    p = _p
    tables = [[b] for b in bases]
    while len(tables[0]) < count:
        dens = []
        for t in tables:
            xj, yj = t[-1]
            dens.extend(x - xj for x, _ in t[:-1])
            dens.append(yj + yj)
        invs = iter(_batch_invert(dens))
        for t in tables:
            xj, yj = t[-1]
            new = []
            for x, y in t[:-1]:
                lam = (y - yj) * next(invs) % p
                x3 = (lam * lam - x - xj) % p
                new.append((x3, (lam * (xj - x3) - yj) % p))
            lam = (xj - 1) * (xj + 1) * 3 * next(invs) % p  # (3x² + a) / 2y with a = -3
            x3 = (lam * lam - xj - xj) % p
            new.append((x3, (lam * (xj - x3) - yj) % p))
            t.extend(new)
    return tables


def _signed_table(mults: list[Affine], half: int) -> Table:
    """Entry b is (b - half)*B: an offset digit indexes it directly; entry ``half`` is 0."""
    negatives = [(x, -y % _p) for x, y in reversed(mults)]  # -half*B .. -1*B
    return [*negatives, None, *mults[: half - 1]]


class _Comb:
    """Fixed-base comb of one point: ``ceil(257 / width)`` windows of ``2^width`` entries.

    A window stores ``2^(width-1)`` points and their negatives (sharing x): 3 numbers of
    ~100 bytes and 2 tuples per point. Measured: 1.7 MB for width 8 (a public key, 33
    windows, ~9 ms to build) and 19 MB for width 12 (G, 22 windows, ~100 ms).
    """

    __slots__ = ("_bytewise", "_offset", "_shifts", "_tables", "_windows", "_zero")

    def __init__(self, base: Affine, width: int):
        half = 1 << (width - 1)
        windows = -(-257 // width)  # signed digits of a 256-bit scalar may carry once
        self._windows = windows
        self._zero = half
        self._offset = sum(half << (width * i) for i in range(windows))
        self._shifts = [(width * i, (1 << width) - 1) for i in range(windows)]
        self._bytewise = width == 8
        acc: XYZZ = (_mpz(base[0]), _mpz(base[1]), _ONE, _ONE)
        chain = [acc]
        for _ in range(windows - 1):
            acc = _double_n(acc, width)
            chain.append(acc)
        invs = _batch_invert([ZZ * ZZZ % _p for _, _, ZZ, ZZZ in chain])
        bases = [(X * ZZZ * i % _p, Y * ZZ * i % _p) for (X, Y, ZZ, ZZZ), i in zip(chain, invs, strict=True)]
        self._tables = [_signed_table(m, half) for m in _multiples(bases, half)]

    def points(self, k: int) -> list[Affine]:
        """The table entries whose sum is k*B, for 0 <= k < 2^256 (zero digits dropped)."""
        v = k + self._offset
        if self._bytewise:
            digits: Sequence[int] = v.to_bytes(self._windows, "little")
        else:
            digits = [v >> s & m for s, m in self._shifts]
        zero = self._zero
        return [t[b] for t, b in zip(self._tables, digits, strict=True) if b != zero]


_WIN = 5  # window chain: signed 5-bit digits, most significant first
_WIN_HALF = 1 << (_WIN - 1)
_WIN_COUNT = -(-257 // _WIN)
_WIN_OFFSET = sum(_WIN_HALF << (_WIN * i) for i in range(_WIN_COUNT))
_WIN_SHIFTS = [_WIN * i for i in range(_WIN_COUNT - 1, -1, -1)]


def _window_table(pt: Affine) -> Table:
    """(m * pt for m in [-16, 16)), for the window chain (~30 µs)."""
    return _signed_table(_multiples([(_mpz(pt[0]), _mpz(pt[1]))], _WIN_HALF)[0], _WIN_HALF)


def _window_chain(terms: Sequence[tuple[int, Table]]) -> XYZZ | None:
    """Σ k_i * P_i over one shared doubling chain; each term is (k_i, _window_table(P_i))."""
    mask = (1 << _WIN) - 1
    rows = [[(k + _WIN_OFFSET) >> s & mask for s in _WIN_SHIFTS] for k, _ in terms]
    tables = [t for _, t in terms]
    acc: XYZZ | None = None
    for i in range(_WIN_COUNT):
        if acc is not None:
            acc = _double_n(acc, _WIN)
        pts = [pt for row, t in zip(rows, tables, strict=True) if (pt := t[row[i]]) is not None]
        if pts:
            acc = _add_points(acc, pts)
    return acc


# ---- tables for G and for public keys ------------------------------------------------------

_G_COMB_WIDTH = 13
_G_COMB_AFTER = 256    # uses of G before its comb is built (~0.3 s, ~20 MB; a windowed k*G ~0.4 ms)
_Q_COMB_WIDTH = 8
_Q_COMB_AFTER = 24     # verifications with a key before its comb is built (see bench/RESULTS.md)
_Q_COMBS_MAX = 32      # keys holding a comb, 1.7 MB each: at most ~55 MB
_Q_HOT_WIDTH = 12      # hot keys: 22 windows instead of 33 (~0.15 s and ~11 MB to build)
_Q_HOT_AFTER = 2000    # verifications with a comb before the key is treated as hot
_Q_HOT_MAX = 8         # hot combs kept: at most ~90 MB
_Q_COUNTED_MAX = 4096  # keys whose uses are being counted (~200 bytes each)


class _Generator:
    """G's tables: the window table from import, the comb from the _G_COMB_AFTER-th use."""

    def __init__(self) -> None:
        self.window = _window_table((GX, GY))
        self.comb: _Comb | None = None
        self.uses = 0

    def get_comb(self) -> _Comb | None:
        """The comb if built, building it on the threshold use (a racing build is harmless)."""
        if self.comb is None:
            self.uses += 1
            if self.uses >= _G_COMB_AFTER:
                self.build()
        return self.comb

    def build(self) -> _Comb:
        if self.comb is None:
            self.comb = _Comb((GX, GY), _G_COMB_WIDTH)
        return self.comb


class _KeyCombs:
    """Public-key combs in LRUs, in two tiers, each built once a key has paid for it.

    A key gets a width-8 comb on its _Q_COMB_AFTER-th verification, and a width-12 "hot"
    comb after _Q_HOT_AFTER more: a verification service spends nearly all its time on a few
    seal-maker and department keys, and for those 11 fewer additions per verification are
    worth 11 MB each. Uses are counted in a separate, larger LRU of bare counters, so a
    stream of one-off keys never pushes out the combs of the keys verified again and again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._combs: OrderedDict[Point, _Comb] = OrderedDict()
        self._hot: OrderedDict[Point, _Comb] = OrderedDict()
        self._uses: OrderedDict[Point, int] = OrderedDict()
        self._warm_uses: dict[Point, int] = {}

    def get(self, q: Point) -> _Comb | None:
        with self._lock:
            hot = self._hot.get(q)
            if hot is not None:
                self._hot.move_to_end(q)
                return hot
            comb = self._combs.get(q)
            if comb is not None:
                self._combs.move_to_end(q)
                uses = self._warm_uses.get(q, 0) + 1
                if uses < _Q_HOT_AFTER:
                    self._warm_uses[q] = uses
                    return comb
                self._warm_uses.pop(q, None)
        if comb is not None:
            return self._promote(q)
        with self._lock:
            uses = self._uses.pop(q, 0) + 1
            if uses < _Q_COMB_AFTER:
                self._uses[q] = uses
                if len(self._uses) > _Q_COUNTED_MAX:
                    self._uses.popitem(last=False)
                return None
        comb = _Comb(q, _Q_COMB_WIDTH)  # outside the lock: other keys keep verifying
        with self._lock:
            self._combs[q] = comb
            if len(self._combs) > _Q_COMBS_MAX:
                evicted, _ = self._combs.popitem(last=False)
                self._warm_uses.pop(evicted, None)
        return comb

    def _promote(self, q: Point) -> _Comb:
        hot = _Comb(q, _Q_HOT_WIDTH)  # outside the lock, like the first build
        with self._lock:
            self._hot[q] = hot
            if len(self._hot) > _Q_HOT_MAX:
                self._hot.popitem(last=False)  # it keeps its warm comb, if still cached
        return hot

    def __contains__(self, q: Point) -> bool:
        return q in self._combs or q in self._hot

    def is_hot(self, q: Point) -> bool:
        return q in self._hot

    def clear(self) -> None:
        with self._lock:
            self._combs.clear()
            self._hot.clear()
            self._uses.clear()
            self._warm_uses.clear()


_GEN = _Generator()
_KEYS = _KeyCombs()


def build_generator_table() -> None:
    """Build G's comb now (~100 ms) instead of on its 256th use: for servers at start-up."""
    _GEN.build()


def clear_key_cache() -> None:
    """Forget every public-key comb and use count (G's tables stay): for tests and benchmarks."""
    _KEYS.clear()


def _mul_g(k: int) -> Affine:
    """k*G in affine coordinates, for 0 < k < n."""
    comb = _GEN.get_comb()
    acc = _add_points(None, comb.points(k)) if comb else _window_chain([(k, _GEN.window)])
    assert acc is not None
    X, Y, ZZ, ZZZ = acc
    if not ZZ % _p:  # an exceptional addition (never seen; see the module docstring)
        pt = _ref_mul_add([(k, (GX, GY))])
        assert pt is not None
        return int(pt[0]), int(pt[1])
    i = _invert(ZZ * ZZZ % _p, _p)
    return int(X * ZZZ * i % _p), int(Y * ZZ * i % _p)


def _x1_is(acc: XYZZ | None, v: int) -> bool:
    """True iff acc is a finite point whose x satisfies x ≡ v (mod n): x = v, or v + n < p."""
    if acc is None:
        return False
    X, _, ZZ, _ = acc
    if (X - v * ZZ) % _p == 0:
        return True
    return v + N < P and (X - (v + N) * ZZ) % _p == 0


# ---- keys and the backend --------------------------------------------------------------------

def _nonce(d: int, e: bytes) -> int:
    """A hedged nonce: fresh randomness mixed with the key and digest through HMAC-SM3."""
    key = d.to_bytes(32, "big")
    while True:
        seed = secrets.token_bytes(32)
        k = int.from_bytes(hmac_sm3(key, seed + e) + hmac_sm3(key, e + seed), "big") % N
        if k:
            return k


class PurePrivateKey:
    """An SM2 private key. Not constant-time: tongsuo signs wherever it installs."""

    __slots__ = ("_d", "_inv", "_point")

    def __init__(self, d: int):
        self._d = d
        self._point = _mul_g(d)
        self._inv = pow(1 + d, -1, N)

    @property
    def public_point(self) -> Point:
        return self._point

    def sign_digest(self, e: bytes) -> tuple[int, int]:
        """Sign the 32-byte digest e with a fresh hedged nonce."""
        while True:
            sig = self._sign_with(e, _nonce(self._d, e))
            if sig is not None:
                return sig

    def _sign_digest_with_nonce(self, e: bytes, k: int) -> tuple[int, int]:
        """Sign e with the caller's nonce k. For known-answer tests only: a reused or
        predictable nonce reveals the private key. Raises ValueError if k is unusable."""
        if not 1 <= k < N:
            raise ValueError("nonce out of range [1, n-1]")
        sig = self._sign_with(e, k)
        if sig is None:
            raise ValueError("this nonce gives r = 0, r + k = n or s = 0")
        return sig

    def _sign_with(self, e: bytes, k: int) -> tuple[int, int] | None:
        """GB/T 32918.2 §6.1 A4-A6 for nonce k; None when another nonce is needed."""
        x1, _ = _mul_g(k)
        r = (int.from_bytes(e, "big") + x1) % N
        if not r or r + k == N:
            return None
        s = self._inv * (k - r * self._d) % N
        return (r, s) if s else None

    def private_scalar(self) -> int:
        return self._d


class PureBackend:
    """The pure-Python SM2 backend (the module docstring says how it is made fast)."""

    name = "pure"

    def generate(self) -> PurePrivateKey:
        return PurePrivateKey(secrets.randbelow(N - 2) + 1)

    def load_private(self, d: int) -> PurePrivateKey:
        return PurePrivateKey(d)

    def verify_digest(self, q: Point, e: bytes, r: int, s: int) -> bool:
        """GB/T 32918.2 §7.1: t = r + s, (x1, y1) = s*G + t*Q, accept iff (e + x1) mod n = r."""
        if not (1 <= r < N and 1 <= s < N):
            return False
        t = (r + s) % N
        if not t:
            return False
        v = (r - int.from_bytes(e, "big")) % N  # the x1 (mod n) that a valid signature gives
        g_comb, q_comb = _GEN.get_comb(), _KEYS.get(q)
        chain = [] if g_comb else [(s, _GEN.window)]
        if not q_comb:
            chain.append((t, _window_table(q)))
        acc = _window_chain(chain) if chain else None
        points = g_comb.points(s) if g_comb else []
        if q_comb:
            points += q_comb.points(t)
        acc = _add_points(acc, points)
        if acc is not None and not acc[2] % _p:  # an exceptional addition: redo it completely
            pt = _ref_mul_add([(s, (GX, GY)), (t, q)])
            return pt is not None and pt[0] % N == v
        return _x1_is(acc, v)
