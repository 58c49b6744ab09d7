"""API keys (``zhengyin service key …`` and the registry) and the idempotency store, on SQLite and
PostgreSQL: secrets shown once and stored only as hashes, scopes checked when a key is made,
revocation and expiry, every change audited; one claim wins however many race for a key."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from keys_dev.domain import DEMO_DEPARTMENT_CODE
from ledger.audit import AuditLog
from support.cli import run_cli
from trust.service.credentials import (
    ApiKeyRefused,
    ApiKeyRegistry,
    ApiKeyRequestError,
    AuthenticationFailed,
    secret_hash,
)
from trust.service.errors import ApiError
from trust.service.idempotency import IdempotencyStore, StoredResponse
from trust.service.models import ApiKeyRecord

BUSINESS = "11100000MB0000019L001"
KNOWN = [BUSINESS]


@pytest.fixture
def registry(db):
    return ApiKeyRegistry(db, AuditLog(db), actor="test:officer")


def test_a_key_authenticates_and_only_its_hash_is_stored(registry, db):
    made = registry.create(DEMO_DEPARTMENT_CODE, [BUSINESS], ["issue", "read"], "窗口系统", known_types=KNOWN)
    prefix, key_id, secret = made.token.split("_")
    assert prefix == "zy" and len(secret) == 64 and key_id == made.key.key_id
    assert secret not in repr(made)
    assert registry.authenticate(made.token).department == DEMO_DEPARTMENT_CODE
    with db.transaction() as s:
        row = s.query(ApiKeyRecord).one()
        assert row.secret_sm3 == secret_hash(key_id, secret) and secret not in json.dumps(
            {c.name: str(getattr(row, c.name)) for c in ApiKeyRecord.__table__.columns}
        )
    audit = [e.payload for e in AuditLog(db).entries()]
    assert any("service.key.create" in p for p in audit) and not any(secret in p for p in audit)
    # The hash is bound to its key id: a secret is no good under another id.
    other = registry.create(DEMO_DEPARTMENT_CODE, ["*"], ["read"], "other", known_types=KNOWN)
    with pytest.raises(AuthenticationFailed) as caught:
        registry.authenticate(f"zy_{other.key.key_id}_{secret}")
    assert caught.value.reason == "invalid"


def test_revoked_and_expired_keys_fail(registry):
    made = registry.create(DEMO_DEPARTMENT_CODE, ["*"], ["read"], "k", known_types=KNOWN)
    registry.revoke(made.key.key_id, "rotated")
    with pytest.raises(AuthenticationFailed) as caught:
        registry.authenticate(made.token)
    assert caught.value.reason == "revoked"
    with pytest.raises(ApiKeyRefused):
        registry.revoke(made.key.key_id)
    then = datetime.now(UTC) - timedelta(days=2)
    old = registry.create(
        DEMO_DEPARTMENT_CODE,
        ["*"],
        ["read"],
        "k",
        known_types=KNOWN,
        expires_at=then + timedelta(days=1),
        now=then,
    )
    with pytest.raises(AuthenticationFailed) as caught:
        registry.authenticate(old.token)
    assert caught.value.reason == "expired"


@pytest.mark.parametrize(
    "department, types, ops, label",
    [
        ("11350100MB0000000X", ["*"], ["read"], "bad check character"),
        (DEMO_DEPARTMENT_CODE, ["11100000MB0000019L999"], ["read"], "unknown type"),
        (DEMO_DEPARTMENT_CODE, ["*"], ["delete"], "unknown operation"),
        (DEMO_DEPARTMENT_CODE, ["*"], [], "no operation"),
        (DEMO_DEPARTMENT_CODE, ["*"], ["read"], "  "),
    ],
)
def test_bad_key_requests_are_refused_and_change_nothing(registry, db, department, types, ops, label):
    with pytest.raises(ApiKeyRequestError):
        registry.create(department, types, ops, label, known_types=KNOWN)
    with db.transaction() as s:
        assert s.query(ApiKeyRecord).count() == 0


def test_one_claim_wins_a_race_and_the_others_get_its_answer(db):
    store = IdempotencyStore(db, ttl=timedelta(hours=24), wait=timedelta(seconds=20))
    runs: list[int] = []
    answers: list = []
    gate = threading.Barrier(5)

    def act() -> StoredResponse:
        runs.append(1)
        return StoredResponse(201, {"identifier": f"licence-{len(runs)}"})

    def request() -> None:
        gate.wait()
        answers.append(store.run("key1", "same-key", "f" * 64, act))

    threads = [threading.Thread(target=request) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(runs) == 1
    assert {a[0].body["identifier"] for a in answers} == {"licence-1"}
    assert sorted(replayed for _, replayed in answers) == [False, True, True, True, True]
    with pytest.raises(ApiError) as caught:
        store.run("key1", "same-key", "e" * 64, act)
    assert caught.value.code == "idempotency_key_reused"
    # Another API key's same idempotency key is another request.
    assert store.run("key2", "same-key", "e" * 64, act)[1] is False


def test_a_pending_key_is_409_after_the_wait_and_keys_expire(db):
    store = IdempotencyStore(db, ttl=timedelta(hours=24), wait=timedelta(seconds=0))
    assert store.claim("key1", "slow", "a" * 64) is None
    with pytest.raises(ApiError) as caught:
        store.claim("key1", "slow", "a" * 64)
    assert caught.value.code == "request_in_progress"
    store.complete("key1", "slow", StoredResponse(201, {"n": 1}))
    assert store.claim("key1", "slow", "a" * 64) == StoredResponse(201, {"n": 1})
    expired = IdempotencyStore(db, ttl=timedelta(seconds=-1), wait=timedelta(seconds=0))
    assert expired.claim("key1", "slow", "b" * 64) is None  # past its TTL: a fresh key


# ---- the command line ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


def test_cli_creates_lists_and_revokes_keys(home):
    code, out, err = run_cli(
        home,
        "service",
        "key",
        "create",
        "--department",
        DEMO_DEPARTMENT_CODE,
        "--types",
        f"{BUSINESS}",
        "--ops",
        "issue,read",
        "--label",
        "业务系统",
        "--expires",
        "2099-01-01T00:00:00Z",
        "--json",
    )
    assert code == 0, err
    made = json.loads(out)
    secret = made["key"].split("_")[2]
    assert made["operations"] == ["issue", "read"] and made["state"] == "active"
    code, out, err = run_cli(home, "service", "key", "list", "--json")
    assert code == 0 and secret not in out
    assert [k["key_id"] for k in json.loads(out)] == [made["key_id"]]
    code, out, err = run_cli(
        home, "service", "key", "revoke", made["key_id"], "--reason", "系统下线", "--json"
    )
    assert code == 0 and json.loads(out)["state"] == "revoked", err
    assert run_cli(home, "service", "key", "revoke", made["key_id"])[0] == 5
    assert run_cli(home, "service", "key", "revoke", "0" * 16)[0] == 4
    code, _, err = run_cli(
        home,
        "service",
        "key",
        "create",
        "--department",
        DEMO_DEPARTMENT_CODE,
        "--types",
        "*",
        "--ops",
        "issue,fly",
        "--label",
        "x",
    )
    assert code == 6 and "fly" in err
    code, out, err = run_cli(home, "audit", "list", "--json")
    assert code == 0 and secret not in out
    assert {"service.key.create", "service.key.list", "service.key.revoke"} <= {
        e["action"] for e in json.loads(out)
    }


def test_serve_refuses_clear_text_on_a_network_address_in_production(home):
    code, _, err = run_cli(home, "serve", "--host", "0.0.0.0", env={"ZHENGYIN_ENV": "production"})
    assert code == 3 and "TLS" in err


# ---- idempotency: short waits, rare purges, documents outside the rows ------------------------------


def _statements(db):
    """The SQL statements ``db`` runs while the returned list is being filled."""
    from sqlalchemy import event

    seen: list[str] = []

    def before(conn, cursor, statement, *args):
        seen.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(db.engine, "before_cursor_execute", before)
    return seen, lambda: event.remove(db.engine, "before_cursor_execute", before)


def test_a_waiting_retry_polls_gently_and_purges_nothing(db):
    store = IdempotencyStore(db, ttl=timedelta(hours=24), wait=timedelta(seconds=0.8))
    assert store.claim("key1", "busy", "a" * 64) is None
    seen, stop = _statements(db)
    try:
        with pytest.raises(ApiError) as caught:
            store.claim("key1", "busy", "a" * 64)
    finally:
        stop()
    assert caught.value.code == "request_in_progress"
    assert caught.value.headers["Retry-After"] == "2"
    assert "DELETE" not in seen  # the purge ran with the first claim; none in the wait loop
    assert seen.count("SELECT") <= 8  # a growing interval, not a query every 50 ms


def test_expired_rows_are_purged_at_most_once_a_minute_and_never_replayed(db):
    store = IdempotencyStore(db, ttl=timedelta(hours=24), wait=timedelta(0))
    assert store.claim("key1", "first", "a" * 64) is None
    seen, stop = _statements(db)
    try:
        for n in range(5):
            assert store.claim("key1", f"other-{n}", "a" * 64) is None
    finally:
        stop()
    assert "DELETE" not in seen
    store.complete("key1", "first", StoredResponse(201, {"n": 1}))
    store.ttl = timedelta(seconds=-1)  # every row is now past its TTL, the purge not yet due
    assert store.claim("key1", "first", "b" * 64) is None  # a fresh key, not the old answer
    assert store.purge_expired(force=True) == 6


def test_a_purged_answer_takes_its_document_with_it(db, tmp_path):
    from licences.storage import DocumentStore
    from trust.service.idempotency import DOCUMENT_KEY

    documents = DocumentStore(tmp_path / "sealed", durable=False)
    store = IdempotencyStore(db, ttl=timedelta(hours=24), wait=timedelta(0), documents=documents)
    digest = documents.put(b"%PDF-sealed")
    kept = store.run("key1", "seal-1", "a" * 64, lambda: StoredResponse(200, {DOCUMENT_KEY: digest}))
    assert kept[0].body == {DOCUMENT_KEY: digest} and documents.exists(digest)
    assert store.purge_expired(force=True) == 0 and documents.exists(digest)
    store.ttl = timedelta(seconds=-1)
    assert store.purge_expired(force=True) == 1 and not documents.exists(digest)


def test_the_default_wait_is_short():
    from trust.service.settings import ServiceSettings, load_service_settings

    assert ServiceSettings().idempotency_wait <= timedelta(seconds=2)
    assert load_service_settings({}).idempotency_wait == timedelta(seconds=2)


# ---- refusals: audited, but not one entry per request -----------------------------------------------


def test_refusals_past_the_burst_are_counted_into_one_entry(db):
    from trust.service.refusals import RefusalAudit

    audit = AuditLog(db)
    clock = [0.0]
    refusals = RefusalAudit(lambda: audit, burst=3, window_seconds=60, clock=lambda: clock[0])

    def refuse(key_id="k1", reason="operation_not_permitted") -> None:
        refusals.refused(
            "service.access.refused",
            key_id=key_id,
            actor=f"api:{key_id}",
            subject="department:X",
            details={"operation": "issue", "reason": reason},
        )

    for _ in range(10):
        refuse()
    refuse(reason="another_department")
    refuse("k2")  # another key has its own window
    assert len(audit.entries(action="service.access.refused")) == 4
    assert audit.entries(action="service.access.refused.suppressed") == []
    clock[0] = 61.0
    refuse()
    (summary,) = audit.entries(action="service.access.refused.suppressed")
    assert summary.actor == "api:k1" and summary.subject == "api-key:k1"
    assert summary.details["suppressed"] == 8
    assert summary.details["reasons"] == {"operation_not_permitted": 7, "another_department": 1}
    for _ in range(5):
        refuse()
    refusals.flush()  # at shutdown: what the window suppressed is written
    assert [e.details["suppressed"] for e in audit.entries(action="service.access.refused.suppressed")] == [
        3,
        8,
    ]
    assert audit.verify().ok
