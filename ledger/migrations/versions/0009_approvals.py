"""Dual control: requests for dangerous acts that wait for a second security officer.

Destroying a key version, revoking a CA or seal certificate and declaring a key compromise
take effect only when an officer other than the requester approves (trust/approvals.py). A
row is the request (what, with which parameters, who, when, until when) and its outcome
(approved and executed, failed, rejected, expired). ``one_pending`` is unique while a request
is pending (``<action>/<subject>``, NULL afterwards), so the database refuses two pending
requests for the same act even when two officers race.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_request",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("action", sa.String(32), nullable=False, index=True),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("one_pending", sa.String(340), nullable=True, unique=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("approval_request")
