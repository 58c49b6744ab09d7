"""Licence QR nonces, one live licence per licence number, serials counted per issuer.

- ``licence.qr_nonce``: the hex of the 16-byte random part the licence's QR code carries, so
  that the public verification service can look a licence up by (identifier, nonce) and an
  enumerated identifier alone tells nothing. NULL for licences issued before this revision.
- ``licence.live_key``: ``<type code>/<licence number>`` while the licence is live (valid or
  suspended), NULL otherwise, under a unique index: the database itself refuses a second live
  licence of one type with the same licence number (统一社会信用代码, 许可证编号 …), also when
  two issues race. Rows recorded before this revision get the key when live; of several live
  rows with one number (possible before), only one gets it, so the upgrade never fails on old
  data: the one still live by the clock today (China date: no end, or an end not yet passed)
  before one that has expired unrecorded, then valid (01) before suspended (02), then the
  newest. So an expired duplicate never takes the key from a live licence (which would leave
  the live one unkeyed and the number issuable twice). The others can still be revoked or
  cancelled; a change of one is refused.
- ``licence_serial`` becomes one counter per issuer (it was per issuer and type), so that a
  serial is never given twice within an issuer across types. Each issuer's counter starts past
  every serial it has given out or reserved under any type.

Revision ID: 0005
Revises: 0004
"""
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BACKFILL = """
UPDATE licence SET live_key = type_code || '/' || licence_number
WHERE id IN (
    SELECT id FROM (
        SELECT id, ROW_NUMBER() OVER (
            PARTITION BY type_code, licence_number
            ORDER BY CASE WHEN valid_until IS NULL OR valid_until >= :today THEN 0 ELSE 1 END,
                     status, id DESC) AS place
        FROM licence WHERE status IN ('01', '02')) AS ranked
    WHERE place = 1)
"""


def _china_today() -> date:
    """Today in China (UTC+8, no daylight saving): licence validity is in China days."""
    return (datetime.now(UTC) + timedelta(hours=8)).date()


def upgrade() -> None:
    op.add_column("licence", sa.Column("qr_nonce", sa.String(32), nullable=True))
    op.add_column("licence", sa.Column("live_key", sa.String(130), nullable=True))
    bind = op.get_bind()
    # One statement, the same on both databases: of the live rows with one number, the one
    # ranked first gets the key (window functions: SQLite >= 3.25, PostgreSQL).
    backfill = sa.text(_BACKFILL).bindparams(sa.bindparam("today", type_=sa.Date))
    bind.execute(backfill, {"today": _china_today()})
    op.create_index("uq_licence_live_key", "licence", ["live_key"], unique=True)

    counters: dict[str, int] = {}
    for issuer, next_serial in bind.execute(sa.text(
            "SELECT issuer_code, MAX(next_serial) FROM licence_serial GROUP BY issuer_code")):
        counters[issuer] = max(counters.get(issuer, 1), int(next_serial))
    given = sa.text("SELECT issuer_code, MAX(serial) FROM licence GROUP BY issuer_code")
    for issuer, top in bind.execute(given):
        counters[issuer] = max(counters.get(issuer, 1), int(top) + 1)
    op.drop_table("licence_serial")
    table = op.create_table(
        "licence_serial",
        sa.Column("issuer_code", sa.String(18), primary_key=True),
        sa.Column("next_serial", sa.BigInteger, nullable=False),
    )
    if counters:
        op.bulk_insert(table, [{"issuer_code": k, "next_serial": v} for k, v in sorted(counters.items())])


def downgrade() -> None:
    bind = op.get_bind()
    counters = dict(bind.execute(sa.text("SELECT issuer_code, next_serial FROM licence_serial")).all())
    pairs = bind.execute(sa.text("SELECT DISTINCT issuer_code, type_code FROM licence")).all()
    op.drop_table("licence_serial")
    table = op.create_table(
        "licence_serial",
        sa.Column("issuer_code", sa.String(18), primary_key=True),
        sa.Column("type_code", sa.String(21), primary_key=True),
        sa.Column("next_serial", sa.BigInteger, nullable=False),
    )
    # Every (issuer, type) pair continues from the issuer's counter: no serial is reused.
    rows = [{"issuer_code": i, "type_code": t, "next_serial": counters.get(i, 1)} for i, t in pairs]
    if rows:
        op.bulk_insert(table, rows)
    op.drop_index("uq_licence_live_key", table_name="licence")
    with op.batch_alter_table("licence") as batch:
        batch.drop_column("live_key")
        batch.drop_column("qr_nonce")
