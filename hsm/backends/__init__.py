"""Choice of SM2 backend.

``tongsuo`` (C, constant-time) signs wherever its wheel installs; ``pure`` needs no C
extension. ``ZHENGYIN_SM2_BACKEND`` (``auto`` | ``tongsuo`` | ``pure``) overrides the choice,
for tests and for machines without the wheel.
"""

from __future__ import annotations

import os
from functools import cache

from ..errors import UnsupportedAlgorithm
from .base import PrivateKeyOps, SM2Backend

__all__ = ["PrivateKeyOps", "SM2Backend", "available", "get_backend", "signing_backend",
           "verifying_backend"]


def available() -> list[str]:
    """Names of the backends that load on this machine, best first."""
    names = []
    try:
        from . import tongsuo  # noqa: F401
        names.append("tongsuo")
    except ImportError:
        pass
    names.append("pure")
    return names


@cache
def get_backend(name: str) -> SM2Backend:
    if name == "tongsuo":
        try:
            from .tongsuo import TongsuoBackend
        except ImportError as exc:
            raise UnsupportedAlgorithm(
                "the tongsuo backend is not installed (pip install tongsuopy)") from exc
        return TongsuoBackend()
    if name == "pure":
        from .pure import PureBackend
        return PureBackend()
    raise UnsupportedAlgorithm(f"unknown SM2 backend {name!r} (choose tongsuo or pure)")


def _configured() -> str:
    choice = os.environ.get("ZHENGYIN_SM2_BACKEND", "auto").strip().lower() or "auto"
    return available()[0] if choice == "auto" else choice


def signing_backend() -> SM2Backend:
    """The backend for private-key operations."""
    return get_backend(_configured())


def verifying_backend() -> SM2Backend:
    """The backend for verification."""
    return get_backend(_configured())
