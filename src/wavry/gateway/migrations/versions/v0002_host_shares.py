"""Hosts shared with other accounts.

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
        "host_shares",
        sa.Column(
            "host_wavry_id",
            sa.String(43),
            sa.ForeignKey("devices.wavry_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_host_shares_user_id", "host_shares", ["user_id"])


def downgrade() -> None:
    op.drop_table("host_shares")
