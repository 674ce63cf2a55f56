"""Hardening: device-key login, TOTP replay guard, per-(address, login) lockout, e-mail privacy.

- ``users.totp_last_step``: the last TOTP time step accepted for the user (RFC 6238 §5.2: a
  code is never accepted twice).
- ``users.failed_logins`` / ``users.locked_until`` go: an account-wide lock let anyone lock
  anyone out. Failures are counted per (source address, login) in ``login_failures``.
- ``users.email`` is no longer unique (registration must not reveal whether an address is
  registered); its index stays for lookups.
- ``sessions.device_wavry_id``: the device a token was issued to by ``POST /v1/auth/device``
  (such a token dies with its device).
- ``device_logins``: (wavry_id, timestamp) pairs already accepted by device-key login.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger, nullable=True))
        batch.drop_column("failed_logins")
        batch.drop_column("locked_until")
        batch.drop_index("ix_users_email")
        batch.create_index("ix_users_email", ["email"], unique=False)
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("device_wavry_id", sa.String(43), nullable=True))
        batch.create_index("ix_sessions_device_wavry_id", ["device_wavry_id"])
    op.create_table(
        "device_logins",
        sa.Column("wavry_id", sa.String(43), primary_key=True),
        sa.Column("timestamp", sa.BigInteger, primary_key=True),
    )
    op.create_index("ix_device_logins_timestamp", "device_logins", ["timestamp"])
    op.create_table(
        "login_failures",
        sa.Column("ip", sa.String(64), primary_key=True),
        sa.Column("login", sa.String(254), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("locked_until", sa.Float, nullable=False),
    )
    op.create_index("ix_login_failures_window_start", "login_failures", ["window_start"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("device_logins")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_index("ix_sessions_device_wavry_id")
        batch.drop_column("device_wavry_id")
    # 0002 had one account per e-mail address: this fails (and changes nothing) while two
    # accounts share an address; merge or rename them first.
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_email")
        batch.create_index("ix_users_email", ["email"], unique=True)
        batch.add_column(sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.Float, nullable=False, server_default="0"))
        batch.drop_column("totp_last_step")
