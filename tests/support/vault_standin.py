"""A stand-in for HashiCorp Vault: a real HTTP server speaking the part of Vault's API we use.

No registry ships a Vault server, so the ``vault`` key store's tests run against this: a
threading ``http.server`` on a random localhost port, reached through hvac exactly as a real
Vault would be. It implements, with the request and response bodies, status codes and error
bodies of Vault's API documentation (sources cited at each handler):

* ``sys/health``, ``sys/seal-status`` (unauthenticated);
* ``auth/token/lookup-self``, ``auth/approle/login``;
* KV v2: ``data`` (GET with ``?version=``, POST with ``options.cas``), ``metadata`` (GET,
  POST with ``custom_metadata``/``max_versions``/``cas_required``, DELETE, LIST),
  ``delete``, ``undelete``, ``destroy``;
* Transit: ``encrypt``, ``decrypt``, ``rewrap``, ``keys/<name>`` (create, read),
  ``keys/<name>/rotate``, ``keys/<name>/config`` — with real AES-256-GCM per key version and
  ciphertexts ``vault:v<N>:<base64(nonce || ciphertext || tag)>`` as Vault writes them.

Every error is Vault's ``{"errors": [...]}`` body (https://developer.hashicorp.com/vault/api-docs
"HTTP status codes"). ACL policies match paths as Vault does
(https://developer.hashicorp.com/vault/docs/concepts/policies): an exact path, a glob ``*``
only at the end (a prefix match), ``+`` for one whole segment; of several matching rules the
most specific wins ("priority matching"), the same path in several policies adds up, and a
LIST is checked against the path with a trailing slash. What Vault's default policy grants
every token (``auth/token/lookup-self``, ``renew-self``, ``revoke-self``) needs no policy.
Tokens expire on a clock the test controls (renewable up to a max TTL); switches seal the
server, make it unreachable (the listening socket is closed: connection refused) or slow, and
:meth:`VaultStandIn.fail` makes chosen requests fail once (or a few times) with a status.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT_POLICY = "root"
# custom_metadata limits of the KV v2 engine (Vault's kv plugin: 64 keys, key 128 and value
# 512 bytes), documented with the metadata endpoint.
MAX_CUSTOM_KEYS, MAX_CUSTOM_KEY_LEN, MAX_CUSTOM_VALUE_LEN = 64, 128, 512
DEFAULT_KV_MAX_VERSIONS = 10  # "When 0 is used or the value is unset, Vault will keep 10 versions."
# Vault's kv plugin (path_metadata.go, validateCustomMetadata): every message starts so.
CUSTOM_METADATA_PREFIX = "custom_metadata validation failed"
# Vault's default policy lets every token do these to itself.
DEFAULT_POLICY_PATHS = ("auth/token/lookup-self", "auth/token/renew-self", "auth/token/revoke-self")


class VaultHttpError(Exception):
    def __init__(self, status: int, *errors: str, body: dict | None = None):
        self.status = status
        self.body = body if body is not None else {"errors": list(errors)}


def _stamp(at: float | None = None) -> str:
    moment = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wrapper(data: dict | None = None, *, auth: dict | None = None) -> dict:
    """The response envelope every Vault endpoint uses (request_id, lease fields, data, auth)."""
    return {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False, "lease_duration": 0,
            "data": data, "wrap_info": None, "warnings": None, "auth": auth}


@dataclass
class KvVersion:
    data: dict | None
    created_time: str
    deletion_time: str = ""
    destroyed: bool = False


@dataclass
class KvSecret:
    created_time: str
    versions: dict[int, KvVersion] = field(default_factory=dict)
    current_version: int = 0
    oldest_version: int = 0
    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: str = "0s"
    custom_metadata: dict[str, str] | None = None
    updated_time: str = ""


@dataclass
class TransitKey:
    name: str
    versions: dict[int, bytes] = field(default_factory=dict)
    created: dict[int, int] = field(default_factory=dict)
    min_decryption_version: int = 1
    min_encryption_version: int = 0

    @property
    def latest_version(self) -> int:
        return max(self.versions)

    def rotate(self) -> None:
        number = max(self.versions, default=0) + 1
        self.versions[number] = AESGCM.generate_key(bit_length=256)
        self.created[number] = int(time.time())


@dataclass
class Token:
    policies: list[str]
    expires_at: float | None
    ttl: int
    max_expires_at: float | None = None  # renewals stop here (the token's max TTL)
    accessor: str = field(default_factory=lambda: secrets.token_hex(12))
    display_name: str = "token"


@dataclass
class Fault:
    method: str
    path: str
    status: int
    error: str
    times: int


def _multierror(problems: list[str]) -> str:
    """How go-multierror (used by Vault's validators) renders a list of errors."""
    count = len(problems)
    return f"{count} error{'s' if count > 1 else ''} occurred:\n\t* " + "\n\t* ".join(problems) + "\n\n"


class _Rule:
    """One ACL path rule: exact, prefix glob (``*`` only at the end) and ``+`` segments."""

    def __init__(self, pattern: str):
        if "*" in pattern[:-1]:
            raise ValueError(f"policy path {pattern!r}: Vault treats '*' as a glob only at the end")
        self.pattern = pattern
        self.glob = pattern.endswith("*")
        body = pattern[:-1] if self.glob else pattern
        segments = body.split("/")
        self.plus = sum(1 for segment in segments if segment == "+")
        self.exact = not self.glob and not self.plus
        self.regex = re.compile("/".join("[^/]+" if seg == "+" else re.escape(seg) for seg in segments)
                                + (".*" if self.glob else ""), re.DOTALL)
        wildcards = [len("/".join(segments[:i])) + (1 if i else 0) for i, seg in enumerate(segments)
                     if seg == "+"] + ([len(body)] if self.glob else [])
        self.first_wildcard = min(wildcards, default=len(pattern))

    def matches(self, path: str) -> bool:
        return self.regex.fullmatch(path) is not None

    def priority(self) -> tuple:
        """Vault's priority matching: a later first wildcard, not ending in '*', fewer '+',
        longer, then lexicographically greater wins."""
        return (self.first_wildcard, not self.glob, -self.plus, len(self.pattern), self.pattern)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


class VaultStandIn:
    """A Vault-shaped HTTP server; ``with VaultStandIn() as vault:`` starts and stops it."""

    def __init__(self, *, kv_mount: str = "secret", transit_mount: str = "transit",
                 approle_mount: str = "approle", namespace: str | None = None,
                 clock: Callable[[], float] = time.time, ssl_context: ssl.SSLContext | None = None):
        self.kv_mount, self.transit_mount, self.approle_mount = kv_mount, transit_mount, approle_mount
        self.namespace = namespace
        self.clock = clock
        self.ssl_context = ssl_context
        self.kv: dict[str, KvSecret] = {}
        self.kv_max_versions = DEFAULT_KV_MAX_VERSIONS
        self.transit: dict[str, TransitKey] = {}
        self.tokens: dict[str, Token] = {}
        self.policies: dict[str, dict[str, set[str]]] = {}
        self.approles: dict[str, dict] = {}
        self.sealed = False
        self.delay = 0.0
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._port = 0
        self.root_token = self.create_token([ROOT_POLICY])

    # ---- lifecycle and switches --------------------------------------------------------
    def start(self) -> VaultStandIn:
        standin = self

        class Handler(_Handler):
            vault = standin

        server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        server.daemon_threads = True
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(server.socket, server_side=True)
        self._port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="vault-standin",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> VaultStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self._port}"

    @contextlib.contextmanager
    def unreachable(self) -> Iterator[None]:
        """Nothing listens on the port meanwhile: clients get "connection refused"."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    # ---- identities and policies ---------------------------------------------------------
    def add_policy(self, name: str, rules: dict[str, list[str]]) -> None:
        """Vault ACL rules: ``{"secret/data/zhengyin/*": ["read", "create", "update"]}``."""
        for path in rules:
            _Rule(path)  # refuses a '*' that Vault would not treat as a glob
        self.policies[name] = {path: set(caps) for path, caps in rules.items()}

    def create_token(self, policies: list[str], ttl: int = 0, max_ttl: int = 0) -> str:
        token = "hvs." + secrets.token_urlsafe(24)
        now = self.clock()
        self.tokens[token] = Token(list(policies), now + ttl if ttl else None, ttl,
                                   now + max_ttl if max_ttl else None)
        return token

    def add_approle(self, name: str, policies: list[str], token_ttl: int = 3600,
                    token_max_ttl: int = 0) -> tuple[str, str]:
        role_id, secret_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.approles[role_id] = {"name": name, "secret_id": secret_id, "policies": policies,
                                  "token_ttl": token_ttl, "token_max_ttl": token_max_ttl}
        return role_id, secret_id

    def fail(self, method: str, path: str, *, status: int = 500, error: str = "internal error",
             times: int = 1) -> None:
        """The next ``times`` requests ``method path`` (``/v1/...``, no query) get ``status``."""
        self.faults.append(Fault(method.upper(), path, status, error, times))

    def live_tokens(self) -> int:
        now = self.clock()
        return sum(1 for t in self.tokens.values() if t.expires_at is None or t.expires_at > now)

    # ---- inspection ------------------------------------------------------------------------
    def stored_values(self) -> list[str]:
        """Every string the KV store holds (data and metadata), for leak scans."""
        out: list[str] = []

        def walk(value) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    out.append(str(k))
                    walk(v)
            elif isinstance(value, list):
                for v in value:
                    walk(v)
            elif value is not None:
                out.append(str(value))

        with self._lock:
            for path, secret in self.kv.items():
                out.append(path)
                walk(secret.custom_metadata or {})
                for version in secret.versions.values():
                    walk(version.data)
        return out

    # ---- dispatch -----------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, dict | None]:
        if self.delay:
            time.sleep(self.delay)
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        path = parts.path
        with self._lock:
            self.requests.append(Recorded(method, path, headers))
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path == path:
                    fault.times -= 1
                    raise VaultHttpError(fault.status, fault.error)
        if not path.startswith("/v1/"):
            raise VaultHttpError(404, "404 page not found")
        path = path[len("/v1/"):].strip("/")
        if method == "GET" and query.get("list") == ["true"]:
            method = "LIST"
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            raise VaultHttpError(400, "failed to parse JSON input: invalid character") from None
        if not isinstance(payload, dict):
            raise VaultHttpError(400, "failed to parse JSON input")
        with self._lock:
            return self._route(method, path, query, headers, payload)

    def _route(self, method, path, query, headers, payload) -> tuple[int, dict | None]:
        # https://developer.hashicorp.com/vault/api-docs/system/health and .../system/seal-status:
        # unauthenticated; health answers 503 with its body when sealed.
        if path == "sys/health" and method in ("GET", "HEAD"):
            return (503 if self.sealed else 200), self._health()
        if path == "sys/seal-status" and method == "GET":
            return 200, self._seal_status()
        if self.sealed:
            # Every other endpoint of a sealed Vault: 503 {"errors": ["Vault is sealed"]}.
            raise VaultHttpError(503, "Vault is sealed")
        if path == f"auth/{self.approle_mount}/login" and method in ("POST", "PUT"):
            return 200, self._approle_login(payload)
        token = self._token(headers)
        if path in DEFAULT_POLICY_PATHS:
            return self._token_self(path, method, token, headers)
        capability = {"GET": "read", "LIST": "list", "DELETE": "delete"}.get(method, "update")
        # A LIST is checked with a trailing slash, as Vault's HTTP layer adds one.
        acl_path = path + "/" if method == "LIST" else path
        self._authorize(token, acl_path, capability,
                        alternatives={"create"} if capability == "update" else set())
        kv, transit = self.kv_mount + "/", self.transit_mount + "/"
        if path.startswith(kv):
            return self._kv(method, path[len(kv):], query, payload)
        if path.startswith(transit):
            return self._transit(method, path[len(transit):], payload)
        raise VaultHttpError(404, f'no handler for route "{path}". route entry not found.')

    # ---- auth -------------------------------------------------------------------------------
    def _token(self, headers: dict[str, str]) -> Token:
        """Missing, unknown, expired or other-namespace tokens: 403 {"errors": ["permission denied"]}."""
        value = headers.get("x-vault-token") or ""
        if not value and headers.get("authorization", "").startswith("Bearer "):
            value = headers["authorization"][len("Bearer "):]
        token = self.tokens.get(value)
        if token is None or (token.expires_at is not None and self.clock() >= token.expires_at):
            raise VaultHttpError(403, "permission denied")
        if self.namespace is not None and headers.get("x-vault-namespace", "").strip("/") != self.namespace:
            raise VaultHttpError(403, "permission denied")
        return token

    def _authorize(self, token: Token, path: str, capability: str, alternatives: set[str]) -> None:
        """The token's policies merged into one ACL (capabilities of the same path add up);
        the exact rule for the path if there is one, else the highest-priority match."""
        if ROOT_POLICY in token.policies:
            return
        merged: dict[str, set[str]] = {}
        for name in token.policies:
            for pattern, caps in self.policies.get(name, {}).items():
                merged.setdefault(pattern, set()).update(caps)
        matching = [rule for rule in map(_Rule, merged) if rule.matches(path)]
        exact = [rule for rule in matching if rule.exact]
        chosen = exact[0] if exact else max(matching, key=_Rule.priority, default=None)
        allowed = merged[chosen.pattern] if chosen else set()
        if "deny" in allowed or not ({capability} | alternatives) & allowed:
            raise VaultHttpError(403, "permission denied")

    def _approle_login(self, payload: dict) -> dict:
        # https://developer.hashicorp.com/vault/api-docs/auth/approle#login-with-approle
        role = self.approles.get(str(payload.get("role_id", "")))
        if role is None or payload.get("secret_id") != role["secret_id"]:
            raise VaultHttpError(400, "invalid role or secret ID")
        token = self.create_token(role["policies"], ttl=role["token_ttl"], max_ttl=role["token_max_ttl"])
        return _wrapper(None, auth={
            "renewable": True, "lease_duration": role["token_ttl"], "metadata": {"role_name": role["name"]},
            "policies": ["default", *role["policies"]], "token_policies": ["default", *role["policies"]],
            "accessor": self.tokens[token].accessor, "client_token": token, "token_type": "service",
            "orphan": True, "entity_id": ""})

    def _token_self(self, path: str, method: str, token: Token, headers) -> tuple[int, dict | None]:
        """https://developer.hashicorp.com/vault/api-docs/auth/token: lookup-self (GET),
        renew-self and revoke-self (POST); the default policy allows them to every token."""
        if path == "auth/token/lookup-self" and method in ("GET", "POST"):
            return 200, self._lookup_self(token, headers)
        if method not in ("POST", "PUT"):
            raise VaultHttpError(405, "1 error occurred:\n\t* unsupported operation\n\n")
        value = headers.get("x-vault-token", "")
        if path == "auth/token/revoke-self":
            self.tokens.pop(value, None)
            return 204, None
        if not token.ttl:
            raise VaultHttpError(400, "lease is not renewable")
        now = self.clock()
        expires = now + token.ttl
        if token.max_expires_at is not None:
            expires = min(expires, token.max_expires_at)
        token.expires_at = expires
        return 200, _wrapper(None, auth={
            "client_token": value, "accessor": token.accessor, "policies": token.policies,
            "token_policies": token.policies, "metadata": None, "lease_duration": int(expires - now),
            "renewable": True, "entity_id": "", "token_type": "service", "orphan": True})

    def _lookup_self(self, token: Token, headers) -> dict:
        # https://developer.hashicorp.com/vault/api-docs/auth/token#lookup-a-token-self
        ttl = int(token.expires_at - self.clock()) if token.expires_at else 0
        return _wrapper({"accessor": token.accessor, "creation_ttl": token.ttl,
                         "display_name": token.display_name,
                         "expire_time": _stamp(token.expires_at) if token.expires_at else None,
                         "explicit_max_ttl": 0, "id": headers.get("x-vault-token", ""), "meta": None,
                         "num_uses": 0, "orphan": True, "path": "auth/token/create",
                         "policies": token.policies, "renewable": bool(token.ttl), "ttl": ttl,
                         "type": "service"})

    def _health(self) -> dict:
        return {"initialized": True, "sealed": self.sealed, "standby": False, "performance_standby": False,
                "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
                "server_time_utc": int(time.time()), "version": "1.15.6", "cluster_name": "vault-standin",
                "cluster_id": "00000000-0000-0000-0000-000000000000"}

    def _seal_status(self) -> dict:
        return {"type": "shamir", "initialized": True, "sealed": self.sealed, "t": 1, "n": 1, "progress": 0,
                "nonce": "", "version": "1.15.6", "build_date": "2024-02-28T17:07:34Z", "migration": False,
                "recovery_seal": False, "storage_type": "inmem", "cluster_name": "vault-standin",
                "cluster_id": "00000000-0000-0000-0000-000000000000"}

    # ---- KV v2: https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2 ----------------
    def _kv(self, method, rest, query, payload) -> tuple[int, dict | None]:
        kind, _, secret_path = rest.partition("/")
        if kind == "data" and secret_path:
            if method == "GET":
                return self._kv_read(secret_path, query)
            if method in ("POST", "PUT"):
                return 200, self._kv_write(secret_path, payload)
        if kind == "metadata":
            if method == "LIST":
                return 200, self._kv_list(secret_path)
            if method == "GET" and secret_path:
                return 200, self._kv_metadata(secret_path)
            if method in ("POST", "PUT") and secret_path:
                self._kv_metadata_write(secret_path, payload)
                return 204, None
            if method == "DELETE" and secret_path:
                self.kv.pop(secret_path, None)
                return 204, None
        if kind in ("delete", "undelete", "destroy") and method in ("POST", "PUT") and secret_path:
            self._kv_version_op(kind, secret_path, payload)
            return 204, None
        raise VaultHttpError(405, "1 error occurred:\n\t* unsupported operation\n\n")

    def _kv_version_meta(self, number: int, v: KvVersion, secret: KvSecret) -> dict:
        return {"created_time": v.created_time, "custom_metadata": secret.custom_metadata,
                "deletion_time": v.deletion_time, "destroyed": v.destroyed, "version": number}

    def _kv_read(self, path, query) -> tuple[int, dict]:
        """GET data/<path>?version=N. Unknown path: 404 {"errors": []}. A deleted or destroyed
        version: 404 with the envelope, data null and its metadata (as Vault does)."""
        secret = self.kv.get(path)
        if secret is None or not secret.versions:
            raise VaultHttpError(404, body={"errors": []})
        try:
            number = int(query.get("version", ["0"])[0]) or secret.current_version
        except ValueError:
            raise VaultHttpError(400, "invalid version") from None
        version = secret.versions.get(number)
        if version is None:
            raise VaultHttpError(404, body={"errors": []})
        meta = self._kv_version_meta(number, version, secret)
        if version.deletion_time or version.destroyed:
            raise VaultHttpError(404, body=_wrapper({"data": None, "metadata": meta}))
        return 200, _wrapper({"data": json.loads(json.dumps(version.data)), "metadata": meta})

    def _kv_write(self, path, payload) -> dict:
        data, options = payload.get("data"), payload.get("options") or {}
        if not isinstance(data, dict):
            raise VaultHttpError(400, "no data provided")
        secret = self.kv.get(path)
        cas = options.get("cas")
        if cas is None and (self.kv.get(path) and secret.cas_required):
            raise VaultHttpError(400, "check-and-set parameter required for this call")
        current = secret.current_version if secret else 0
        if cas is not None and int(cas) != current:
            raise VaultHttpError(400, "check-and-set parameter did not match the current version")
        if secret is None:
            secret = self.kv[path] = KvSecret(created_time=_stamp())
        number = secret.current_version + 1
        secret.versions[number] = KvVersion(json.loads(json.dumps(data)), _stamp())
        secret.current_version = number
        secret.updated_time = _stamp()
        keep = secret.max_versions or self.kv_max_versions
        while len(secret.versions) > keep:  # "the oldest version will be permanently deleted"
            del secret.versions[min(secret.versions)]
        secret.oldest_version = min(secret.versions)
        v = secret.versions[number]
        return _wrapper({"created_time": v.created_time, "custom_metadata": secret.custom_metadata,
                         "deletion_time": "", "destroyed": False, "version": number})

    def _kv_metadata(self, path) -> dict:
        secret = self.kv.get(path)
        if secret is None:
            raise VaultHttpError(404, body={"errors": []})
        return _wrapper({
            "cas_required": secret.cas_required, "created_time": secret.created_time,
            "current_version": secret.current_version, "custom_metadata": secret.custom_metadata,
            "delete_version_after": secret.delete_version_after, "max_versions": secret.max_versions,
            "oldest_version": secret.oldest_version,
            "updated_time": secret.updated_time or secret.created_time,
            "versions": {str(n): {"created_time": v.created_time, "deletion_time": v.deletion_time,
                                  "destroyed": v.destroyed} for n, v in sorted(secret.versions.items())}})

    def _kv_metadata_write(self, path, payload) -> None:
        """POST metadata/<path>: only the fields given change; custom_metadata is replaced whole."""
        custom = payload.get("custom_metadata")
        if custom is not None:
            custom = self._valid_custom_metadata(custom)
        secret = self.kv.get(path)
        if secret is None:
            secret = self.kv[path] = KvSecret(created_time=_stamp())
        if "max_versions" in payload:
            secret.max_versions = int(payload["max_versions"])
        if "cas_required" in payload:
            secret.cas_required = bool(payload["cas_required"])
        if "delete_version_after" in payload:
            secret.delete_version_after = str(payload["delete_version_after"])
        if custom is not None:
            secret.custom_metadata = dict(custom)
        secret.updated_time = _stamp()

    @staticmethod
    def _valid_custom_metadata(custom: object) -> dict[str, str]:
        """Vault's parseCustomMetadata + validateCustomMetadata (kv plugin, path_metadata.go):
        values weakly decoded to strings (null -> ""), 1..128-byte keys, 1..512-byte values,
        printable only; every problem listed, each with the same prefix."""
        if not isinstance(custom, dict):
            raise VaultHttpError(400, f"{CUSTOM_METADATA_PREFIX}: expected a map")
        values: dict[str, str] = {}
        for key, value in custom.items():
            if isinstance(value, (dict, list)):
                raise VaultHttpError(400, f"{CUSTOM_METADATA_PREFIX}: '' expected type 'string', got "
                                          f"unconvertible type '{type(value).__name__}'")
            values[key] = ("" if value is None else ("1" if value else "0") if isinstance(value, bool)
                           else str(value))
        if len(values) > MAX_CUSTOM_KEYS:
            raise VaultHttpError(400, _multierror([f"{CUSTOM_METADATA_PREFIX}: payload must contain at most "
                                                   f"{MAX_CUSTOM_KEYS} keys, provided {len(values)}"]))
        problems = []
        for key, value in values.items():
            if not 0 < len(key.encode()) <= MAX_CUSTOM_KEY_LEN:
                problems.append(f"{CUSTOM_METADATA_PREFIX}: length of key {json.dumps(key)} is "
                                f"{len(key.encode())} but must be 0 < len(key) <= {MAX_CUSTOM_KEY_LEN}")
            if not 0 < len(value.encode()) <= MAX_CUSTOM_VALUE_LEN:
                problems.append(f"{CUSTOM_METADATA_PREFIX}: length of value for key {json.dumps(key)} is "
                                f"{len(value.encode())} but must be 0 < len(value) <= {MAX_CUSTOM_VALUE_LEN}")
            if not key.isprintable():
                problems.append(f"{CUSTOM_METADATA_PREFIX}: key {json.dumps(key)} ({key}) contains "
                                "unprintable characters")
            if not value.isprintable():
                problems.append(f"{CUSTOM_METADATA_PREFIX}: value for key {json.dumps(key)} contains "
                                "unprintable characters")
        if problems:
            raise VaultHttpError(400, _multierror(problems))
        return values

    def _kv_list(self, prefix) -> dict:
        prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        names = set()
        for path in self.kv:
            if path.startswith(prefix):
                head, sep, _ = path[len(prefix):].partition("/")
                names.add(head + sep)
        if not names:
            raise VaultHttpError(404, body={"errors": []})
        return _wrapper({"keys": sorted(names)})

    def _kv_version_op(self, kind, path, payload) -> None:
        versions = payload.get("versions")
        if not isinstance(versions, list) or not versions:
            raise VaultHttpError(400, "no version number provided")
        secret = self.kv.get(path)
        if secret is None:
            return  # Vault answers 204 for unknown paths here too
        for number in versions:
            v = secret.versions.get(int(number))
            if v is None or v.destroyed:
                continue
            if kind == "delete":
                v.deletion_time = v.deletion_time or _stamp()
            elif kind == "undelete":
                v.deletion_time = ""
            else:  # destroy: the data is removed for good
                v.destroyed, v.data = True, None

    # ---- Transit: https://developer.hashicorp.com/vault/api-docs/secret/transit --------------
    def _transit(self, method, rest, payload) -> tuple[int, dict | None]:
        parts = rest.split("/")
        if parts[0] == "keys" and len(parts) == 2:
            if method in ("POST", "PUT"):
                if payload.get("type", "aes256-gcm96") != "aes256-gcm96":
                    raise VaultHttpError(400, f"unknown key type {payload.get('type')}")
                self._transit_key(parts[1], create=True)
                return 200, self._transit_read(parts[1])
            if method == "GET":
                return 200, self._transit_read(parts[1])
        if parts[0] == "keys" and len(parts) == 3 and method in ("POST", "PUT"):
            key = self._transit_key(parts[1])
            if parts[2] == "rotate":
                key.rotate()
                return 200, self._transit_read(parts[1])
            if parts[2] == "config":
                if "min_decryption_version" in payload:
                    wanted = int(payload["min_decryption_version"])
                    if wanted > key.latest_version:
                        raise VaultHttpError(400, "cannot set min decryption version to a value greater than "
                                                  "latest version")
                    key.min_decryption_version = max(1, wanted)
                return 200, self._transit_read(parts[1])
        if len(parts) == 2 and method in ("POST", "PUT"):
            operation, name = parts
            if operation == "encrypt":
                return 200, self._encrypt(name, payload)
            if operation == "decrypt":
                return 200, self._decrypt(name, payload)
            if operation == "rewrap":
                return 200, self._rewrap(name, payload)
        raise VaultHttpError(405, "1 error occurred:\n\t* unsupported operation\n\n")

    def _transit_key(self, name: str, *, create: bool = False) -> TransitKey:
        key = self.transit.get(name)
        if key is None:
            if not create:
                raise VaultHttpError(400, "encryption key not found")
            key = self.transit[name] = TransitKey(name)
            key.rotate()
        return key

    def _transit_read(self, name) -> dict:
        key = self.transit.get(name)
        if key is None:
            raise VaultHttpError(404, body={"errors": []})
        return _wrapper({"name": name, "type": "aes256-gcm96",
                         "keys": {str(n): t for n, t in key.created.items()},
                         "latest_version": key.latest_version, "min_available_version": 0,
                         "min_decryption_version": key.min_decryption_version,
                         "min_encryption_version": key.min_encryption_version, "deletion_allowed": False,
                         "derived": False, "exportable": False, "allow_plaintext_backup": False,
                         "supports_encryption": True, "supports_decryption": True,
                         "supports_derivation": True,
                         "supports_signing": False, "auto_rotate_period": 0, "imported_key": False})

    @staticmethod
    def _seal(key: TransitKey, number: int, plaintext: bytes) -> str:
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(key.versions[number]).encrypt(nonce, plaintext, None)
        return f"vault:v{number}:" + base64.b64encode(nonce + sealed).decode()

    @staticmethod
    def _open(key: TransitKey, ciphertext: object) -> bytes:
        if not isinstance(ciphertext, str) or not ciphertext.startswith("vault:"):
            raise VaultHttpError(400, "invalid ciphertext: no prefix")
        try:
            _, tag, body = ciphertext.split(":", 2)
            number = int(tag.removeprefix("v"))
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            raise VaultHttpError(400, "invalid ciphertext: could not decode") from None
        if number not in key.versions or number < key.min_decryption_version:
            raise VaultHttpError(400, "invalid key version" if number not in key.versions else
                                 "ciphertext or signature version is disallowed by policy (too old)")
        try:
            return AESGCM(key.versions[number]).decrypt(raw[:12], raw[12:], None)
        except (InvalidTag, ValueError):
            raise VaultHttpError(400, "cipher: message authentication failed") from None

    def _encrypt(self, name, payload) -> dict:
        # "if the key does not exist, it will be upserted with default values" (create capability)
        try:
            plaintext = base64.b64decode(str(payload.get("plaintext", "")), validate=True)
        except ValueError:
            raise VaultHttpError(400, "failed to base64-decode plaintext") from None
        key = self._transit_key(name, create=True)
        return _wrapper({"ciphertext": self._seal(key, key.latest_version, plaintext),
                         "key_version": key.latest_version})

    def _decrypt(self, name, payload) -> dict:
        key = self._transit_key(name)
        return _wrapper({"plaintext": base64.b64encode(self._open(key, payload.get("ciphertext"))).decode()})

    def _rewrap(self, name, payload) -> dict:
        key = self._transit_key(name)
        plaintext = self._open(key, payload.get("ciphertext"))
        return _wrapper({"ciphertext": self._seal(key, key.latest_version, plaintext),
                         "key_version": key.latest_version})


class _Handler(BaseHTTPRequestHandler):
    vault: VaultStandIn
    server_version = "vault-standin"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, answer = self.vault.handle(self.command, self.path, headers, body)
        except VaultHttpError as exc:
            status, answer = exc.status, exc.body
        encoded = b"" if answer is None else json.dumps(answer).encode()
        self.send_response(status)
        if answer is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        if encoded and self.command != "HEAD":
            self.wfile.write(encoded)

    do_GET = do_POST = do_PUT = do_DELETE = do_LIST = do_HEAD = _serve  # noqa: N815 - http.server's names

    def log_message(self, format, *args) -> None:
        pass
