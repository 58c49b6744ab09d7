"""Bulk conversion on PostgreSQL (the production database): two workers issue every record once,
and a re-run finds them all recorded."""

from __future__ import annotations

import json
import uuid
from urllib.parse import quote

import pytest

from ca.names import credit_code_check_character
from licences.catalogue import Catalogue
from support.cli import run_cli

BUSINESS = "11100000MB0000019L001"


@pytest.fixture
def postgres_home(postgres_url, tmp_path):
    import psycopg
    from sqlalchemy.engine import make_url

    schema = "zy_" + uuid.uuid4().hex[:12]
    u = make_url(postgres_url)
    connect = {"host": u.host, "port": u.port or 5432, "user": u.username, "password": u.password,
               "dbname": u.database}
    with psycopg.connect(**connect, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{postgres_url}?options={quote(f'-csearch_path={schema}')}"
    env = {"ZHENGYIN_DATABASE_URL": url}
    home = tmp_path / "home"
    code, _, err = run_cli(home, "init", env=env)
    assert code == 0, err
    try:
        yield home, env, connect, schema
    finally:
        with psycopg.connect(**connect, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.postgres
def test_two_workers_on_postgresql_issue_each_record_once(postgres_home, tmp_path):
    import psycopg

    home, env, connect, schema = postgres_home
    example = dict(Catalogue.load().get(BUSINESS).example)
    source = tmp_path / "pg.jsonl"
    lines = []
    for i in range(12):
        first = f"91350100P{i:08d}"
        data = example | {"统一社会信用代码": first + credit_code_check_character(first)}
        lines.append(json.dumps({"source_id": f"P-{i}", "data": data}, ensure_ascii=False))
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code, out, err = run_cli(home, "licence", "batch", str(source), "--type", BUSINESS, "--workers", "2",
                             "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["issued"] == 12
    code, out, err = run_cli(home, "licence", "batch", str(source), "--type", BUSINESS, "--workers", "2",
                             "--json", env=env)
    assert code == 0, err
    assert (json.loads(out)["issued"], json.loads(out)["already_issued"]) == (0, 12)
    with psycopg.connect(**connect) as conn:
        rows = conn.execute(f'SELECT source_id, count(*) FROM "{schema}".licence '
                            "GROUP BY source_id").fetchall()
        serials = conn.execute(f'SELECT count(DISTINCT serial), count(*) FROM "{schema}".licence').fetchone()
    assert dict(rows) == {f"P-{i}": 1 for i in range(12)}
    assert serials[0] == serials[1] == 12
