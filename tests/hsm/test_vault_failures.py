"""The vault key store when Vault fails: sealed, unreachable, slow, denied, versions gone; auth upkeep."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl

import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hsm.errors import (
    KeyNotFound,
    KeyStorePermissionDenied,
    KeyStoreSealed,
    KeyStoreUnavailable,
    KeyUnavailable,
)
from hsm.keystore import KeyState
from hsm.vault import AppRoleAuth, TokenAuth, VaultConnection, VaultKeyStore
from support.vault_standin import VaultStandIn

PREFIX = "zhengyin/keys"
SIGNER_POLICY = {
    "secret/data/zhengyin/keys/*": ["read"],
    "secret/metadata/zhengyin/keys/*": ["read", "list"],
    "secret/metadata/zhengyin/keys/": ["list"],
    "transit/decrypt/zhengyin": ["update"],
}
OFFICER_POLICY = {
    "secret/data/zhengyin/keys/*": ["create", "read", "update"],
    "secret/metadata/zhengyin/keys/*": ["create", "read", "update", "list"],
    "secret/metadata/zhengyin/keys/": ["list"],
    "secret/destroy/zhengyin/keys/*": ["update"],
    "transit/encrypt/zhengyin": ["update"],
    "transit/decrypt/zhengyin": ["update"],
}


class FakeClock:
    def __init__(self, now: float = 10_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vault():
    with VaultStandIn() as server:
        yield server


def store_for(vault, auth, **kwargs) -> VaultKeyStore:
    options = {k: kwargs.pop(k) for k in ("namespace", "timeout", "clock", "ca_bundle") if k in kwargs}
    return VaultKeyStore(VaultConnection(vault.url, auth, **options), **kwargs)


def snapshot(vault) -> str:
    def versions(secret):
        return {n: [v.data, v.deletion_time, v.destroyed] for n, v in secret.versions.items()}

    return json.dumps({p: {"custom": s.custom_metadata, "current": s.current_version, "versions": versions(s)}
                       for p, s in vault.kv.items()}, sort_keys=True, default=str)


@pytest.fixture
def seeded(vault):
    store = store_for(vault, TokenAuth(vault.root_token), unwrap_cache_seconds=0)
    store.generate("k")
    store.rotate("k")
    return store


def _every_operation(store):
    return [lambda: store.generate("new"), lambda: store.rotate("k"), lambda: store.sign("k", b"m"),
            lambda: store.disable("k", 1), lambda: store.destroy("k", 1), lambda: store.versions("k"),
            lambda: store.list()]


def test_sealed_vault_refuses_everything_and_nothing_changes(vault, seeded):
    before = snapshot(vault)
    vault.sealed = True
    for operation in _every_operation(seeded):
        with pytest.raises(KeyStoreSealed, match="sealed") as caught:
            operation()
        assert vault.root_token not in str(caught.value)
    vault.sealed = False
    assert snapshot(vault) == before
    seeded.sign("k", b"m")


def test_unreachable_vault(vault, seeded):
    before = snapshot(vault)
    with vault.unreachable():
        for operation in _every_operation(seeded):
            with pytest.raises(KeyStoreUnavailable, match="unreachable"):
                operation()
    assert snapshot(vault) == before
    seeded.sign("k", b"m")


def test_slow_vault_times_out(vault, seeded):
    store = store_for(vault, TokenAuth(vault.root_token), timeout=0.3)
    vault.delay = 1.0
    with pytest.raises(KeyStoreUnavailable, match="in time"):
        store.sign("k", b"m")


def test_permission_denied_is_specific_and_changes_nothing(vault, seeded):
    vault.add_policy("signer", SIGNER_POLICY)
    token = vault.create_token(["signer"])
    signer = store_for(vault, TokenAuth(token), unwrap_cache_seconds=0)
    signer.public_key("k", 1).verify(signer.sign("k", b"m", version=1), b"m")  # signing is allowed
    before = snapshot(vault)
    for operation in (lambda: signer.generate("new"), lambda: signer.rotate("k"),
                      lambda: signer.disable("k", 1), lambda: signer.destroy("k", 1)):
        with pytest.raises(KeyStorePermissionDenied, match="denied permission") as caught:
            operation()
        assert token not in str(caught.value)
    assert snapshot(vault) == before


def test_a_failed_sign_leaves_nothing_behind(vault, seeded):
    vault.add_policy("reader", {k: v for k, v in SIGNER_POLICY.items() if not k.startswith("transit/")})
    events = []
    reader = store_for(vault, TokenAuth(vault.create_token(["reader"])), on_event=events.append)
    before = snapshot(vault)
    with pytest.raises(KeyStorePermissionDenied, match="unwrap version 2"):
        reader.sign("k", b"m")
    assert len(reader._cache) == 0 and events == [] and snapshot(vault) == before


def test_officer_policy_is_enough_for_the_whole_lifecycle(vault):
    vault.add_policy("officer", OFFICER_POLICY)
    store = store_for(vault, TokenAuth(vault.create_token(["officer"])))
    vault.transit.clear()
    store_for(vault, TokenAuth(vault.root_token)).ensure_transit_key()
    store.generate("k")
    store.rotate("k")
    store.disable("k", 1)
    store.enable("k", 1)
    store.destroy("k", 1)
    assert [v.state for v in store.list()] == [KeyState.DESTROYED, KeyState.ACTIVE]


def test_expired_token_is_named_as_such(vault, seeded):
    clock = FakeClock()
    vault.clock = clock
    token = vault.create_token(["root"], ttl=30)
    store = store_for(vault, TokenAuth(token))
    store.versions("k")
    clock.now += 31
    with pytest.raises(KeyStorePermissionDenied, match="expired or revoked") as caught:
        store.sign("k", b"m")
    assert token not in str(caught.value)


def test_deleted_in_vault_is_a_missing_version(vault, seeded):
    root = hvac.Client(url=vault.url, token=vault.root_token)
    root.secrets.kv.v2.delete_secret_versions(path=f"{PREFIX}/k", versions=[2])
    with pytest.raises(KeyUnavailable, match="deleted in Vault"):
        seeded.sign("k", b"m")
    assert [v.state for v in seeded.versions("k")] == [KeyState.ACTIVE, KeyState.DISABLED]
    seeded.sign("k", b"m", version=1)
    with pytest.raises(KeyNotFound, match="version 3"):
        seeded.sign("k", b"m", version=3)
    root.secrets.kv.v2.undelete_secret_versions(path=f"{PREFIX}/k", versions=[2])
    seeded.sign("k", b"m")
    root.secrets.kv.v2.destroy_secret_versions(path=f"{PREFIX}/k", versions=[2])
    with pytest.raises(KeyUnavailable, match="destroyed"):
        seeded.sign("k", b"m")
    assert seeded.versions("k")[1].state is KeyState.DESTROYED


def test_approle_login_and_relogin_when_the_token_runs_out(vault, seeded):
    clock = FakeClock()
    vault.clock = clock
    vault.add_policy("officer", OFFICER_POLICY)
    role_id, secret_id = vault.add_approle("zhengyin", ["officer"], token_ttl=600)
    store = store_for(vault, AppRoleAuth(role_id, lambda: secret_id), clock=clock, unwrap_cache_seconds=0)

    def logins() -> int:
        return sum(1 for r in vault.requests if r.path == "/v1/auth/approle/login")

    store.sign("k", b"m")
    assert logins() == 1
    clock.now += 500  # within the lease: same token
    store.sign("k", b"m")
    assert logins() == 1
    clock.now += 200  # the lease ran out unnoticed (nothing was signed near its end): log in again
    store.sign("k", b"m")
    assert logins() == 2
    vault.tokens.pop(store.connection.client.token)  # revoked behind our back: 403, re-login, retry
    store.sign("k", b"m")
    assert logins() == 3


def test_approle_with_a_wrong_secret_id(vault, seeded):
    role_id, _ = vault.add_approle("zhengyin", ["root"])
    store = store_for(vault, AppRoleAuth(role_id, "not-the-secret-id"))
    with pytest.raises(KeyStorePermissionDenied, match="AppRole login") as caught:
        store.sign("k", b"m")
    assert "not-the-secret-id" not in str(caught.value)
    assert "not-the-secret-id" not in repr(store.connection) + repr(store.connection.auth)


def test_namespace_header_on_every_request(vault):
    vault.namespace = "gov/licences"
    store = store_for(vault, TokenAuth(vault.root_token), namespace="gov/licences")
    store.generate("k")
    store.sign("k", b"m")
    assert vault.requests
    assert all(r.headers.get("x-vault-namespace") == "gov/licences" for r in vault.requests)
    elsewhere = store_for(vault, TokenAuth(vault.root_token))
    with pytest.raises(KeyStorePermissionDenied):
        elsewhere.sign("k", b"m")


def _tls_material(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "vault.pem", tmp_path / "vault.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


def test_tls_is_verified_with_the_configured_ca_bundle(tmp_path):
    context, bundle = _tls_material(tmp_path)
    with VaultStandIn(ssl_context=context) as vault:
        trusting = store_for(vault, TokenAuth(vault.root_token), ca_bundle=bundle)
        trusting.generate("k")
        trusting.sign("k", b"m")
        default = store_for(vault, TokenAuth(vault.root_token))
        with pytest.raises(KeyStoreUnavailable, match="TLS verification"):
            default.sign("k", b"m")
