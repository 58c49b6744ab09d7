"""Where test material lives: the repository and ../shared/interop beside it (read in place)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INTEROP = REPO.parent / "shared" / "interop"
