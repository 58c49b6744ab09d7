"""Bearer secrets at rest: random 256-bit secrets kept only as a domain-separated SM3.

Shared by the signing service's API keys (:mod:`trust.service.credentials`), the holder
credentials (:mod:`licences.holders`) and the live presentations (:mod:`verify_api.presentations`):
each draws its secret with :func:`new_secret`, stores :func:`secret_hash` and checks a presented
one with :func:`matches`.

Why plain SM3 and not HMAC-SM3 with a server pepper or a slow password hash: the secret is 256
random bits, so a stolen hash cannot be reversed by guessing — the attack a pepper (or a slow
hash) defends against needs a low-entropy secret. A pepper would add a second secret to keep,
rotate and back up, whose loss locks every holder out, for no gain. The hash is
domain-separated (``purpose``) and bound to the public id of the row it belongs to, so a hash
copied onto another row, or from one kind of secret to another, does not authenticate.
"""

from __future__ import annotations

import hmac
import secrets

from hsm.sm3 import sm3

SECRET_BYTES = 32
#: What an unknown id's secret is compared with: no SM3 hex digest equals it.
DUMMY_HASH = "-" * 64


def new_secret(nbytes: int = SECRET_BYTES) -> str:
    """``nbytes`` from :mod:`secrets`, as lower-case hex."""
    return secrets.token_hex(nbytes)


def secret_hash(purpose: str, public_id: str, secret: str) -> str:
    """The stored form of ``secret``: SM3 of ``purpose ‖ 0 ‖ public_id ‖ 0 ‖ secret``, hex."""
    return sm3(purpose.encode() + b"\0" + public_id.encode() + b"\0" + secret.encode()).hex()


def matches(stored: str | None, purpose: str, public_id: str, secret: str) -> bool:
    """Whether ``secret`` is the one ``stored`` was made from, in constant time. A missing row
    (``stored`` None) is hashed and compared all the same, so the time taken does not tell an
    unknown id from a wrong secret."""
    given = secret_hash(purpose, public_id, secret)
    expected = stored if stored is not None else DUMMY_HASH
    return hmac.compare_digest(expected.encode("ascii", "replace"), given.encode()) and stored is not None
