"""Seal versions: every SESeal a seal has had, so that a key rotation breaks no document.

A rotation gives a seal a new signer key, certificate and SESeal under the same esID; the
documents signed before still carry the old SESeal. So:

- ``seal_version`` keeps each version's DER and SM3 fingerprint (unique across all seals),
  its validity and when the next version superseded it. The seal row keeps the current
  version's DER, as before, so what signs is read from one place. Every made seal gets its
  version 1 here, from the seal row.
- ``seal_signer.version`` says which version's certList lists the certificate; the unique
  (seal, position) becomes (seal, version, position). Existing links are version 1.

Downgrade keeps each seal's current version (its row and its current signer links) and drops
the links and DER of the superseded versions; their certificates stay in the CA registry.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BACKFILL = """
INSERT INTO seal_version (seal_id, version, der, fingerprint, made_at, valid_start, valid_end)
SELECT id, 1, der, fingerprint, made_at, valid_start, valid_end FROM seal WHERE der IS NOT NULL
"""
_SUPERSEDED_LINKS = """
DELETE FROM seal_signer WHERE version < (
    SELECT MAX(newest.version) FROM seal_signer AS newest WHERE newest.seal_id = seal_signer.seal_id)
"""


def upgrade() -> None:
    op.create_table(
        "seal_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seal_id", sa.Integer, sa.ForeignKey("seal.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("der", sa.LargeBinary, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("seal_id", "version", name="uq_seal_version_seal_version"),
    )
    op.execute(_BACKFILL)
    with op.batch_alter_table("seal_signer") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
        batch.drop_constraint("uq_seal_signer_seal_position", type_="unique")
        batch.create_unique_constraint("uq_seal_signer_seal_version_position",
                                       ["seal_id", "version", "position"])


def downgrade() -> None:
    op.execute(_SUPERSEDED_LINKS)
    with op.batch_alter_table("seal_signer") as batch:
        batch.drop_constraint("uq_seal_signer_seal_version_position", type_="unique")
        batch.create_unique_constraint("uq_seal_signer_seal_position", ["seal_id", "position"])
        batch.drop_column("version")
    op.drop_table("seal_version")
