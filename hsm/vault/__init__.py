"""The ``vault`` key backend: SM2 keys wrapped by HashiCorp Vault Transit, versioned in KV v2.

:class:`VaultKeyStore` implements the :class:`~hsm.keystore.KeyStore` protocol, as
:class:`~hsm.soft.SoftKeyStore` does; :class:`VaultConnection` logs in (token or AppRole) and
turns Vault's failures into :mod:`hsm.errors` types. See :mod:`hsm.vault.store` for the layout and
:mod:`hsm.vault.state` for how concurrent state changes are kept (check-and-set). Call
:meth:`VaultKeyStore.close` when done: cached clear keys are dropped and an AppRole token revoked.
"""

from .cache import UnwrapCache
from .connection import AppRoleAuth, TokenAuth, VaultConnection
from .store import MAX_VERSIONS, RewrapResult, VaultKeyStore

__all__ = ["MAX_VERSIONS", "AppRoleAuth", "RewrapResult", "TokenAuth", "UnwrapCache", "VaultConnection",
           "VaultKeyStore"]
