"""Seal registry: seals, their signer certificates, and the append-only history of their status.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_MESSAGE = "seal_event is append-only"


def upgrade() -> None:
    op.create_table(
        "seal",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("es_id", sa.String(14), nullable=False, unique=True),
        sa.Column("area_code", sa.String(6), nullable=False),
        sa.Column("serial", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("seal_type", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=False, index=True),
        sa.Column("holder", sa.String(100), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("valid_days", sa.Integer, nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signer_count", sa.Integer, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("der", sa.LargeBinary, nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=True, unique=True),
        sa.Column("picture_type", sa.String(8), nullable=True),
        sa.Column("width_mm", sa.Integer, nullable=True),
        sa.Column("height_mm", sa.Integer, nullable=True),
        sa.UniqueConstraint("area_code", "serial", name="uq_seal_area_code_serial"),
    )
    op.create_table(
        "seal_signer",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seal_id", sa.Integer, sa.ForeignKey("seal.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("certificate_id", sa.Integer, sa.ForeignKey("ca_certificate.id"), nullable=False,
                  unique=True),
        sa.UniqueConstraint("seal_id", "position", name="uq_seal_signer_seal_position"),
    )
    op.create_table(
        "seal_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seal_id", sa.Integer, sa.ForeignKey("seal.id"), nullable=False, index=True),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for when in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER seal_event_no_{when.lower()} BEFORE {when} ON seal_event "
                f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END")
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION seal_event_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$")
        op.execute("CREATE TRIGGER seal_event_no_change BEFORE UPDATE OR DELETE ON seal_event "
                   "FOR EACH ROW EXECUTE FUNCTION seal_event_append_only()")
        op.execute("CREATE TRIGGER seal_event_no_truncate BEFORE TRUNCATE ON seal_event "
                   "FOR EACH STATEMENT EXECUTE FUNCTION seal_event_append_only()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table("seal_event")
    op.drop_table("seal_signer")
    op.drop_table("seal")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS seal_event_append_only()")
