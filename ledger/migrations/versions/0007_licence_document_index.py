"""Indexes on the licence documents' SM3 digests.

The public verification service asks, for every uploaded file, whether it is one of the
register's licence documents (``licence.ofd_sm3 = :digest OR licence.pdf_sm3 = :digest``).
Without an index that is a scan of the whole licence table per upload — an anonymous caller
could make the database read millions of rows a minute. Two plain (non-unique) indexes: the
same document may in principle be recorded twice (a re-issue of identical bytes), and a
lookup only needs the first.

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_licence_ofd_sm3", "licence", ["ofd_sm3"])
    op.create_index("ix_licence_pdf_sm3", "licence", ["pdf_sm3"])


def downgrade() -> None:
    op.drop_index("ix_licence_pdf_sm3", table_name="licence")
    op.drop_index("ix_licence_ofd_sm3", table_name="licence")
