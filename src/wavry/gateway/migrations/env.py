"""Alembic environment: runs on the connection handed in by :func:`wavry.gateway.db.migrate`."""

from __future__ import annotations

from alembic import context

from wavry.gateway.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through wavry.gateway.db.migrate()")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
