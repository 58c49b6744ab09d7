"""Certificate authority: issued certificates (with their revocation) and published CRLs.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ca_certificate",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("issuer_id", sa.Integer, sa.ForeignKey("ca_certificate.id"), nullable=True),
        sa.Column("profile", sa.String(32), nullable=False, index=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("credit_code", sa.String(18), nullable=True, index=True),
        sa.Column("key_label", sa.String(100), nullable=True),
        sa.Column("key_version", sa.Integer, nullable=True),
        sa.Column("key_id", sa.String(64), nullable=False, index=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("renews_id", sa.Integer, sa.ForeignKey("ca_certificate.id"), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
        sa.Column("invalidity_date", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("issuer_id", "serial", name="uq_ca_certificate_issuer_serial"),
    )
    op.create_index("ix_ca_certificate_serial", "ca_certificate", ["serial"])
    op.create_table(
        "ca_crl",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issuer_id", sa.Integer, sa.ForeignKey("ca_certificate.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("issuer_id", "number", name="uq_ca_crl_issuer_number"),
    )


def downgrade() -> None:
    op.drop_table("ca_crl")
    op.drop_table("ca_certificate")
