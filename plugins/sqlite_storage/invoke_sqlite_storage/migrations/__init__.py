"""Every schema migration of the SQLite backend, in version order.

A new store adds a module ``mNNNN_<what>.py`` with one :class:`Migration` and appends it here;
versions are never reused or edited once released.
"""

from __future__ import annotations

from invoke_sqlite_storage.migrations.m0001_session_queue import MIGRATION as M0001
from invoke_sqlite_storage.migrations.m0002_images import MIGRATION as M0002
from invoke_sqlite_storage.migrations.m0003_model_records import MIGRATION as M0003
from invoke_sqlite_storage.migrations.m0004_image_counts import MIGRATION as M0004
from invoke_sqlite_storage.migrations.m0005_session_rows import MIGRATION as M0005
from invoke_sqlite_storage.migrations.m0006_leases import MIGRATION as M0006
from invoke_sqlite_storage.migrations.m0007_workflows import MIGRATION as M0007
from invoke_sqlite_storage.migrations.m0008_image_changes import MIGRATION as M0008
from invoke_sqlite_storage.migrator import Migration

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[Migration, ...] = (M0001, M0002, M0003, M0004, M0005, M0006, M0007, M0008)
