"""Holder credentials and live presentations (亮证): the holder's hashed bearer credential bound
to a licence (licences.holders), and the short-lived, single-use presentations the public
service mints for it (verify_api.presentations): only SM3 hashes of their secrets are stored.
A credential is found by the versions of its licence (``licence_identifier``, indexed); a
presentation must name a credential that exists (foreign key).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holder_credential",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("credential_id", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_sm3", sa.String(64), nullable=False),
        sa.Column("licence_identifier", sa.String(100), nullable=False),
        sa.Column("type_code", sa.String(21), nullable=False),
        sa.Column("licence_number", sa.String(100), nullable=False),
        sa.Column("holder_code", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_holder_credential_licence", "holder_credential", ["type_code", "licence_number"])
    op.create_index("ix_holder_credential_identifier", "holder_credential", ["licence_identifier"])
    op.create_table(
        "holder_presentation",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_sm3", sa.String(64), nullable=False, unique=True),
        sa.Column("credential_id", sa.String(32), sa.ForeignKey("holder_credential.credential_id"),
                  nullable=False, index=True),
        sa.Column("licence_identifier", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("holder_presentation")
    op.drop_index("ix_holder_credential_identifier", table_name="holder_credential")
    op.drop_index("ix_holder_credential_licence", table_name="holder_credential")
    op.drop_table("holder_credential")
