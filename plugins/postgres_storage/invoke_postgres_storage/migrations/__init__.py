"""Every schema migration of the PostgreSQL backend, in version order.

A new store adds a module ``mNNNN_<what>.py`` with one :class:`Migration` and appends it here; versions are never
reused or edited once released. (Numbering is this backend's own: it started with the schema the SQLite backend
had reached at its migration 5, so its history has no steps from before.)
"""

from __future__ import annotations

from invoke_postgres_storage.migrations.m0001_session_queue import MIGRATION as M0001
from invoke_postgres_storage.migrations.m0002_images import MIGRATION as M0002
from invoke_postgres_storage.migrations.m0003_model_records import MIGRATION as M0003
from invoke_postgres_storage.migrations.m0004_leases import MIGRATION as M0004
from invoke_postgres_storage.migrations.m0005_workflows import MIGRATION as M0005
from invoke_postgres_storage.migrations.m0006_image_changes import MIGRATION as M0006
from invoke_postgres_storage.migrator import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[Migration, ...] = (M0001, M0002, M0003, M0004, M0005, M0006)
