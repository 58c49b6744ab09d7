"""Purpose-limited annotated copies (加注件).

* The usage log row of an access records the copy served with it — its format, the SM3 of its
  exact bytes (indexed: the public service recognises an uploaded copy by it), when it expires
  and the department's name as the copy prints it. Columns added to the append-only
  reuse_usage; its triggers refuse row UPDATE and DELETE, not ALTER TABLE, so old rows simply
  have none.
* The licence row keeps the text of the QR code printed on its documents (``qr_payload``), so a
  copy prints the very code the issuer signed without reading it back from a PDF. Licences
  recorded before have none, and get no copy.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_COLUMNS = ("copy_format", "copy_sm3", "copy_expires", "copy_client_name")


def upgrade() -> None:
    op.add_column("reuse_usage", sa.Column("copy_format", sa.String(8), nullable=True))
    op.add_column("reuse_usage", sa.Column("copy_sm3", sa.String(64), nullable=True))
    op.add_column("reuse_usage", sa.Column("copy_expires", sa.DateTime(timezone=True), nullable=True))
    op.add_column("reuse_usage", sa.Column("copy_client_name", sa.String(200), nullable=True))
    op.create_index("ix_reuse_usage_copy_sm3", "reuse_usage", ["copy_sm3"])
    op.add_column("licence", sa.Column("qr_payload", sa.Text(), nullable=True))


def downgrade() -> None:
    # Not through batch_alter_table: on SQLite that re-creates the table and loses its
    # append-only triggers. ALTER TABLE … DROP COLUMN (SQLite 3.35+) keeps them; the index goes first.
    op.drop_column("licence", "qr_payload")
    op.drop_index("ix_reuse_usage_copy_sm3", table_name="reuse_usage")
    for name in reversed(_COLUMNS):
        op.drop_column("reuse_usage", name)
