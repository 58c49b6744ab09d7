"""Shared fixtures: databases (SQLite always, PostgreSQL for real), homes, interop files.

Every test that takes ``db`` runs twice: on a fresh SQLite file and on a fresh schema of the
PostgreSQL server (``ZHENGYIN_TEST_POSTGRES_URL``, default the local server's ``test``
database). Without a reachable server the PostgreSQL half is skipped, except under CI=true,
where it fails: CI must exercise both.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from ledger.database import Database
from support.paths import INTEROP, REPO  # noqa: F401 - re-exported for fixtures

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _postgres_url() -> str:
    return os.environ.get("ZHENGYIN_TEST_POSTGRES_URL") or DEFAULT_PG


def _postgres_unavailable() -> str | None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(_postgres_url())
    try:
        psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                        dbname=u.database, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {u.host}:{u.port} not reachable: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    reason = _postgres_unavailable()
    if reason:
        if IN_CI:
            pytest.fail(reason + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)
    return _postgres_url()


def make_postgres_schema_db(url: str) -> tuple[Database, callable]:
    """A Database bound to a brand-new schema; returns it and a function that drops it."""
    schema = "zy_" + uuid.uuid4().hex[:12]
    admin = Database(url)
    with admin.engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    db = Database(url, connect_args={"options": f"-csearch_path={schema}"})

    def drop() -> None:
        db.dispose()
        with admin.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()

    return db, drop


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request, tmp_path) -> Database:
    """A migrated, empty database: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'test.db'}")
        database.migrate()
        yield database
        database.dispose()
    else:
        url = request.getfixturevalue("postgres_url")
        database, drop = make_postgres_schema_db(url)
        try:
            database.migrate()
            yield database
        finally:
            drop()


@pytest.fixture(scope="session")
def interop_dir() -> Path:
    if not INTEROP.is_dir():
        pytest.skip(f"interop samples not found at {INTEROP}")
    return INTEROP


@pytest.fixture(scope="session")
def postgres_schema_factory():
    """:func:`make_postgres_schema_db`, for tests that need a schema migrated their own way
    (test modules cannot import this conftest by name: tests/interop has its own)."""
    return make_postgres_schema_db
