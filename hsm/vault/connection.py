"""One authenticated connection to HashiCorp Vault, with Vault's failures turned into ours.

Everything the ``vault`` key store sends goes through :meth:`VaultConnection.call`, which

* logs in lazily (a token, or AppRole ``POST /v1/auth/<mount>/login``) and keeps the token
  alive: shortly before its lease ends it is renewed (``POST auth/token/renew-self``) when it
  is renewable; an AppRole token that cannot be extended any more (its max TTL is near) is
  replaced by a fresh login and the old one revoked (``POST auth/token/revoke-self``), so no
  live token is left behind. A 403 is first checked with ``GET auth/token/lookup-self``
  (allowed to every token by Vault's default policy): only a token Vault no longer knows
  leads to a new AppRole login; a valid token refused by the policy is reported as such,
  without burning secret-ID uses or minting tokens;
* sends ``X-Vault-Namespace`` when a namespace is configured and verifies TLS with the
  configured CA bundle (hvac does both for us once told; a bundle file that does not exist
  is refused when the connection is made);
* turns transport errors and Vault's status codes into :mod:`hsm.errors` types whose
  messages say what to do and never carry a token, a secret ID or key material.

Vault's error bodies are ``{"errors": [...]}`` with the status code telling the class of
failure (https://developer.hashicorp.com/vault/api-docs#http-status-codes): 400 invalid
request, 403 permission denied (also for an expired or unknown token), 404 unknown path,
405 unsupported operation (the path exists but is not that kind of engine), 503 sealed
(``{"errors": ["Vault is sealed"]}``). Token endpoints: https://developer.hashicorp.com/vault/
api-docs/auth/token (lookup-self, renew-self, revoke-self).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import hvac
import hvac.exceptions
import requests

from ..errors import (
    KeyStoreBackendError,
    KeyStoreClosed,
    KeyStoreMisconfigured,
    KeyStorePermissionDenied,
    KeyStoreSealed,
    KeyStoreUnavailable,
)

T = TypeVar("T")

#: Renew (or replace) a token when less than this share of its lease is left.
RELOGIN_FRACTION = 0.1


@dataclass(frozen=True)
class TokenAuth:
    """A Vault token given by the operator: renewed while renewable, never replaced by us."""

    token: str = field(repr=False)

    name = "token"


@dataclass(frozen=True)
class AppRoleAuth:
    """AppRole credentials: the service logs in itself and again when its token expires."""

    role_id: str
    secret_id: str | Callable[[], str] = field(repr=False)
    mount: str = "approle"

    name = "approle"

    def secret(self) -> str:
        return self.secret_id() if callable(self.secret_id) else self.secret_id


class VaultConnection:
    """hvac's client plus authentication upkeep and error translation; thread-safe for calls."""

    def __init__(self, address: str, auth: TokenAuth | AppRoleAuth, *, namespace: str | None = None,
                 ca_bundle: str | Path | None = None, timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.address = address.rstrip("/")
        self.auth = auth
        self.namespace = namespace
        self._clock = clock
        self._lock = threading.RLock()
        self._renew_at: float | None = None  # when to renew (or replace) the token
        self._expires_at: float | None = None  # when its lease ends
        self._renewable = False
        if ca_bundle and not Path(ca_bundle).is_file():
            raise KeyStoreMisconfigured(f"the CA bundle {ca_bundle} for Vault at {self.address} does not "
                                        "exist or is not a file; fix keys.vault.ca_bundle "
                                        "(ZHENGYIN_VAULT_CACERT)")
        self._verify: bool | str = str(ca_bundle) if ca_bundle else True
        self._timeout = timeout
        # token="" stops hvac from falling back to VAULT_TOKEN or ~/.vault-token: the token
        # used is exactly the configured one.
        self.client = self._client("")
        self._logged_in = False
        self._closed = False

    def _client(self, token: str) -> hvac.Client:
        return hvac.Client(url=self.address, token=token, verify=self._verify, timeout=self._timeout,
                           namespace=self.namespace or None)

    # ---- authentication ---------------------------------------------------------------
    def _schedule(self, lease: int, renewable: bool) -> None:
        now = self._clock()
        self._renewable = renewable
        self._expires_at = now + lease if lease else None
        self._renew_at = now + lease * (1 - RELOGIN_FRACTION) if lease else None

    def _login(self) -> None:
        if isinstance(self.auth, TokenAuth):
            self.client.token = self.auth.token
            answer = self._translate("look up the configured token", lambda c: c.auth.token.lookup_self(),
                                     relogin=False)
            data = (answer or {}).get("data") or {}
            self._schedule(int(data.get("ttl") or 0), bool(data.get("renewable")))
        else:
            try:
                answer = self._translate("log in with AppRole", lambda c: c.auth.approle.login(
                    role_id=self.auth.role_id, secret_id=self.auth.secret(), mount_point=self.auth.mount),
                    relogin=False)
            except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath) as exc:
                raise KeyStorePermissionDenied(
                    f"Vault at {self.address} refused the AppRole login at auth/{self.auth.mount} "
                    f"({_first_error(exc) or 'invalid role or secret ID'}); check the role ID and secret ID"
                ) from None
            auth = (answer or {}).get("auth") or {}
            self._schedule(int(auth.get("lease_duration") or 0), bool(auth.get("renewable")))
        self._logged_in = True

    def _keep_alive(self) -> None:
        """Near the end of the lease: renew; an AppRole token that no longer extends is replaced."""
        remaining = (self._expires_at or 0) - self._clock()
        lease = 0
        if self._renewable:
            try:
                answer = self._translate("renew the Vault token", lambda c: c.auth.token.renew_self(),
                                         relogin=False)
                lease = int(((answer or {}).get("auth") or {}).get("lease_duration") or 0)
            except (KeyStorePermissionDenied, hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath):
                lease = 0  # expired meanwhile or not renewable after all
        if lease > remaining + 1:
            self._schedule(lease, True)
            return
        if isinstance(self.auth, AppRoleAuth):
            old = self.client.token
            self._login()
            self._revoke(old)
        else:
            # An operator's token that cannot be extended: use it until Vault refuses it, then
            # the error says to give the service a new one.
            self._renew_at = None

    def _revoke(self, token: str) -> None:
        """Best effort: the old token is revoked with itself (default policy), else it expires."""
        if not token:
            return
        try:
            self._client(token).auth.token.revoke_self()
        except (hvac.exceptions.VaultError, requests.exceptions.RequestException, ValueError):
            pass

    def _ensure_login(self) -> None:
        with self._lock:
            if self._closed:
                raise KeyStoreClosed(f"the connection to Vault at {self.address} was closed")
            if not self._logged_in:
                self._login()
            elif self._renew_at is not None and self._clock() >= self._renew_at:
                self._keep_alive()

    def token_valid(self) -> bool:
        """Whether Vault still accepts the current token (``GET auth/token/lookup-self``)."""
        try:
            self.client.auth.token.lookup_self()
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            return False
        return True

    def close(self) -> None:
        """Stop using Vault: a token this connection logged in for (AppRole) is revoked."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if isinstance(self.auth, AppRoleAuth) and self._logged_in:
                self._revoke(self.client.token)
            self.client.token = ""

    # ---- requests ---------------------------------------------------------------------
    def call(self, what: str, request: Callable[[hvac.Client], T]) -> T:
        """Run one request; ``what`` says in words what it was for ("decrypt key 'x' v2").

        404 (hvac ``InvalidPath``) and 400 (``InvalidRequest``) are left to the caller, who
        knows what a missing path or a refused write means there.
        """
        self._ensure_login()
        return self._translate(what, request, relogin=isinstance(self.auth, AppRoleAuth))

    def _translate(self, what: str, request: Callable[[hvac.Client], T], *, relogin: bool) -> T:
        where = f"Vault at {self.address}" + (f" (namespace {self.namespace})" if self.namespace else "")
        try:
            return request(self.client)
        except (hvac.exceptions.InvalidPath, hvac.exceptions.InvalidRequest):
            raise
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized) as exc:
            refused = self.client.token
            if relogin and not self._safe_token_valid():
                # The AppRole token expired or was revoked since the last login: one fresh
                # login (unless another thread did it already), one retry.
                with self._lock:
                    if self.client.token == refused:
                        self._login()
                return self._translate(what, request, relogin=False)
            if isinstance(self.auth, TokenAuth) and not self._safe_token_valid():
                raise KeyStorePermissionDenied(
                    f"{where} no longer accepts the configured token (expired or revoked) while trying "
                    f"to {what}; give the service a new token") from None
            raise KeyStorePermissionDenied(
                f"{where} denied permission to {what}: the {self.auth.name} policy must allow it "
                f"({_first_error(exc) or 'permission denied'})") from None
        except hvac.exceptions.VaultDown as exc:
            if "sealed" in (_first_error(exc) or "").lower():
                raise KeyStoreSealed(f"{where} is sealed, so it could not {what}; an operator must "
                                     "unseal it") from None
            raise KeyStoreUnavailable(f"{where} is unavailable (503) and could not {what}") from None
        except (hvac.exceptions.UnsupportedOperation, hvac.exceptions.UnexpectedError) as exc:
            # hvac has no class for 405: it raises UnexpectedError with Vault's body, which for
            # 405 is "unsupported operation".
            if "unsupported operation" not in (_first_error(exc) or "") and not isinstance(
                    exc, hvac.exceptions.UnsupportedOperation):
                raise KeyStoreUnavailable(f"{where} failed to {what} (unexpected answer: "
                                          f"{_first_error(exc) or 'no detail'})") from None
            raise KeyStoreMisconfigured(
                f"{where} does not support the request to {what} "
                f"(405: {_first_error(exc) or 'unsupported'}): check that keys.vault.kv_mount is a KV "
                "version 2 mount and transit_mount a Transit mount"
            ) from None
        except hvac.exceptions.VaultError as exc:
            status = type(exc).__name__
            detail = _first_error(exc) or "no detail"
            raise KeyStoreUnavailable(f"{where} failed to {what} ({status}: {detail})") from None
        except requests.exceptions.SSLError:
            raise KeyStoreUnavailable(f"TLS verification of {where} failed while trying to {what}; check the "
                                      "configured CA bundle (keys.vault.ca_bundle)") from None
        except requests.exceptions.Timeout:
            raise KeyStoreUnavailable(f"{where} did not answer in time while trying to {what}") from None
        except requests.exceptions.ConnectionError:
            raise KeyStoreUnavailable(f"{where} is unreachable (connection refused or reset) while trying "
                                      f"to {what}; check the address and that Vault runs") from None
        except requests.exceptions.RequestException as exc:
            raise KeyStoreUnavailable(f"{where}: {type(exc).__name__} while trying to {what}") from None
        except ValueError:
            # hvac parses every answer as JSON; something that is not Vault answered.
            raise KeyStoreBackendError(f"{where} gave an answer that is not Vault's JSON while trying "
                                       f"to {what}") from None
        except OSError as exc:
            # requests raises a bare OSError when the CA bundle vanished after start-up.
            raise KeyStoreMisconfigured(f"cannot verify TLS to {where} while trying to {what}: "
                                        f"{exc.strerror or 'the CA bundle cannot be read'}; "
                                        "check keys.vault.ca_bundle") from None

    def _safe_token_valid(self) -> bool:
        try:
            return self.token_valid()
        except Exception:  # only decides between two messages, or whether to log in again
            return True

    def __repr__(self) -> str:
        return f"VaultConnection({self.address!r}, auth={self.auth.name}, namespace={self.namespace!r})"


def _first_error(exc: hvac.exceptions.VaultError) -> str | None:
    """Vault's own error text (never a secret: Vault does not echo credentials back)."""
    errors = getattr(exc, "errors", None)
    if errors:
        return " ".join("; ".join(str(e) for e in errors).split())[:300]  # one line, whatever Vault sent
    return None


def vault_error_text(exc: hvac.exceptions.VaultError) -> str:
    """What Vault said, for callers that handle 400/404 themselves."""
    return _first_error(exc) or ""
