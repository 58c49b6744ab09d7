"""Fixtures shared by the interop tests: SM2 keys with awkward coordinates, tool checks.

Keys whose x coordinate starts with a 0x00 byte (x < 2^248) catch encoders that drop leading
zeros; x starting with 0x04 catches readers that confuse x with the uncompressed-point prefix.
They are found by walking scalars from a fixed seed, so every run tests the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from asn1crypto import keys, pem

from hsm import oids  # registers the SM2 curve with asn1crypto
from hsm.backends import get_backend
from hsm.curve import N
from hsm.sm3 import sm3
from support.java import BCPROV, SM2_TOOL, BcTool, compile_java_tool

SM2_CURVE_OID = oids.SM2_CURVE


@dataclass(frozen=True)
class SpecialKey:
    name: str
    d: int
    x: int
    y: int

    @property
    def x_bytes(self) -> bytes:
        return self.x.to_bytes(32, "big")

    @property
    def y_bytes(self) -> bytes:
        return self.y.to_bytes(32, "big")

    def pkcs8_pem(self) -> bytes:
        """Unencrypted PKCS#8 holding a SEC 1 ECPrivateKey, built here rather than by hsm.pkcs8
        so that OpenSSL reading it checks the key values, not our writer."""
        ec_key = keys.ECPrivateKey({
            "version": "ecPrivkeyVer1",
            "private_key": self.d,
            "public_key": b"\x04" + self.x_bytes + self.y_bytes,
        })
        ec_key["private_key"].set_encoded_width(32)
        info = keys.PrivateKeyInfo({
            "version": 0,
            "private_key_algorithm": {"algorithm": "ec", "parameters": ("named", SM2_CURVE_OID)},
            "private_key": ec_key,
        })
        return pem.armor("PRIVATE KEY", info.dump())


def _find(name: str, test) -> SpecialKey:
    pure = get_backend("pure")
    d = int.from_bytes(sm3(b"zhengyin interop key " + name.encode()), "big") % (N - 2) + 1
    for _ in range(20000):
        x, y = pure.load_private(d).public_point
        if test(x, y):
            return SpecialKey(name, d, x, y)
        d = d % (N - 2) + 1
    raise AssertionError(f"no key found for {name}")


@pytest.fixture(scope="session")
def special_keys() -> dict[str, SpecialKey]:
    """Keys with x starting 0x00, x starting 0x04, y starting 0x00, and two ordinary ones."""
    found = {
        "x00": _find("x00", lambda x, y: x >> 248 == 0),
        "x04": _find("x04", lambda x, y: x >> 248 == 0x04),
        "y00": _find("y00", lambda x, y: y >> 248 == 0),
        "plain": _find("plain", lambda x, y: x >> 248 >= 0x10 and y >> 248 >= 0x10),
    }
    # The GB/T 32918.5 example key.
    d_a = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
    x, y = get_backend("pure").load_private(d_a).public_point
    found["gbt"] = SpecialKey("gbt", d_a, x, y)
    assert found["x00"].x_bytes[0] == 0 and found["x04"].x_bytes[0] == 4 and found["y00"].y_bytes[0] == 0
    return found


# ---- BouncyCastle ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bc(tmp_path_factory) -> BcTool:
    return BcTool(compile_java_tool(tmp_path_factory, SM2_TOOL, [BCPROV]))
