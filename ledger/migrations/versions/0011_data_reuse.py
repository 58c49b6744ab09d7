"""Data reuse by departments (免提交): department clients and their permissions, holder grants,
and the append-only usage log (用证记录). Grants and usage rows belong to the licence version
they name (``identifier``, indexed): a holder sees and a client uses them only along that
version's chain of changes and renewals (licences.succession), never on a new licence that
reuses the licence number.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_MESSAGE = "reuse_usage is append-only"


def upgrade() -> None:
    op.create_table(
        "reuse_client",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("department_code", sa.String(18), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
    )
    op.create_table(
        "reuse_permission",
        sa.Column("client_id", sa.String(40), sa.ForeignKey("reuse_client.id"), primary_key=True),
        sa.Column("type_code", sa.String(21), primary_key=True),
        sa.Column("operation", sa.String(20), primary_key=True),
    )
    op.create_table(
        "reuse_grant",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("client_id", sa.String(40), sa.ForeignKey("reuse_client.id"), nullable=False),
        sa.Column("type_code", sa.String(21), nullable=False),
        sa.Column("licence_number", sa.String(100), nullable=False),
        sa.Column("identifier", sa.String(100), nullable=False),
        sa.Column("granted_by", sa.String(100), nullable=False),
        sa.Column("fields", sa.JSON, nullable=True),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_reuse_grant_licence", "type_code", "licence_number"),
        sa.Index("ix_reuse_grant_identifier", "identifier"),
        sa.Index("ix_reuse_grant_client", "client_id"),
    )
    op.create_table(
        "reuse_usage",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("response_id", sa.String(40), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(40), sa.ForeignKey("reuse_client.id"), nullable=False),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("identifier", sa.String(100), nullable=True),
        sa.Column("type_code", sa.String(21), nullable=True),
        sa.Column("licence_number", sa.String(100), nullable=True),
        sa.Column("grant_id", sa.String(40), nullable=True),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Index("ix_reuse_usage_licence", "type_code", "licence_number"),
        sa.Index("ix_reuse_usage_identifier", "identifier"),
        sa.Index("ix_reuse_usage_client", "client_id"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for when in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER reuse_usage_no_{when.lower()} BEFORE {when} ON reuse_usage "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END")
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION reuse_usage_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$")
        op.execute("CREATE TRIGGER reuse_usage_no_change BEFORE UPDATE OR DELETE ON reuse_usage "
                   "FOR EACH ROW EXECUTE FUNCTION reuse_usage_append_only()")
        op.execute("CREATE TRIGGER reuse_usage_no_truncate BEFORE TRUNCATE ON reuse_usage "
                   "FOR EACH STATEMENT EXECUTE FUNCTION reuse_usage_append_only()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for when in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS reuse_usage_no_{when}")
    op.drop_table("reuse_usage")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS reuse_usage_append_only()")
    op.drop_table("reuse_grant")
    op.drop_table("reuse_permission")
    op.drop_table("reuse_client")
