"""An initialised development home on SQLite, or on a fresh schema of the PostgreSQL server.

Module-scoped homes that the command line builds (``zhengyin init``) need the database URL in
the environment, not a ``Database`` object: this sets ``ZHENGYIN_DATABASE_URL`` to a new schema
for the home's lifetime and drops the schema afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from .cli import run_cli


@contextlib.contextmanager
def initialised_home(path: Path, postgres_url: str | None = None) -> Iterator[Path]:
    """``path`` made a development home (``zhengyin init``): on SQLite, or with ``postgres_url``
    on a schema of its own that is dropped when the block ends."""
    saved = os.environ.get("ZHENGYIN_DATABASE_URL")
    admin = schema = None
    if postgres_url is not None:
        import psycopg
        from sqlalchemy.engine import make_url

        schema = "zy_" + uuid.uuid4().hex[:12]
        u = make_url(postgres_url)
        admin = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, password=u.password,
                                dbname=u.database, autocommit=True)
        admin.execute(f'CREATE SCHEMA "{schema}"')
        os.environ["ZHENGYIN_DATABASE_URL"] = f"{postgres_url}?options=-csearch_path%3D{schema}"
    try:
        code, _, err = run_cli(path, "init")
        assert code == 0, err
        yield path
    finally:
        if saved is None:
            os.environ.pop("ZHENGYIN_DATABASE_URL", None)
        else:
            os.environ["ZHENGYIN_DATABASE_URL"] = saved
        if admin is not None:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            admin.close()
