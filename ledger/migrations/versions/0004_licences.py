"""Licence library: licences, the append-only history of their status, and serial counters.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_MESSAGE = "licence_event is append-only"


def upgrade() -> None:
    op.create_table(
        "licence",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("identifier", sa.String(100), nullable=False, unique=True),
        sa.Column("type_code", sa.String(21), nullable=False, index=True),
        sa.Column("issuer_code", sa.String(18), nullable=False, index=True),
        sa.Column("serial", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("licence_number", sa.String(100), nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("holder_code", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(2), nullable=False, index=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_until", sa.Date, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("ofd_sm3", sa.String(64), nullable=False),
        sa.Column("pdf_sm3", sa.String(64), nullable=False),
        sa.Column("previous_identifier", sa.String(100), nullable=True, unique=True),
        sa.Column("superseded_by", sa.String(100), nullable=True),
        sa.Column("source_id", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("type_code", "issuer_code", "serial", "version",
                            name="uq_licence_type_code_issuer_serial_version"),
        sa.UniqueConstraint("issuer_code", "type_code", "source_id", name="uq_licence_issuer_code_source"),
    )
    op.create_table(
        "licence_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("licence_id", sa.Integer, sa.ForeignKey("licence.id"), nullable=False, index=True),
        sa.Column("from_status", sa.String(2), nullable=True),
        sa.Column("to_status", sa.String(2), nullable=False),
        sa.Column("act", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_table(
        "licence_serial",
        sa.Column("issuer_code", sa.String(18), primary_key=True),
        sa.Column("type_code", sa.String(21), primary_key=True),
        sa.Column("next_serial", sa.BigInteger, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for when in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER licence_event_no_{when.lower()} BEFORE {when} ON licence_event "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END")
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION licence_event_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$")
        op.execute("CREATE TRIGGER licence_event_no_change BEFORE UPDATE OR DELETE ON licence_event "
                   "FOR EACH ROW EXECUTE FUNCTION licence_event_append_only()")
        op.execute("CREATE TRIGGER licence_event_no_truncate BEFORE TRUNCATE ON licence_event "
                   "FOR EACH STATEMENT EXECUTE FUNCTION licence_event_append_only()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table("licence_serial")
    op.drop_table("licence_event")
    op.drop_table("licence")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS licence_event_append_only()")
