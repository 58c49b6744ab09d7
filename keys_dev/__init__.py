"""Development-only trust material: the demo trust domain that ``zhengyin init`` builds.

Nothing secret is committed here: keys are generated on the machine by ``zhengyin init``
and encrypted under a random passphrase written into the home. What lives here is the
*definition* of the development domain (names, credit codes, key labels) and the rule that
it may never serve in production: importing or using this package with
``ZHENGYIN_ENV=production`` raises :class:`DevelopmentMaterialRefused`.
"""

from __future__ import annotations

import os


class DevelopmentMaterialRefused(RuntimeError):
    """Development trust material was requested while running in production mode."""

    def __init__(self) -> None:
        super().__init__(
            "keys_dev holds development-only trust material and is refused when "
            "ZHENGYIN_ENV=production; create production keys with your key ceremony instead")


def ensure_development(env: str | None = None) -> None:
    """Raise unless the given (or the process's) environment is not production."""
    value = (env if env is not None else os.environ.get("ZHENGYIN_ENV", "")).strip().lower()
    if value == "production":
        raise DevelopmentMaterialRefused()


ensure_development()
