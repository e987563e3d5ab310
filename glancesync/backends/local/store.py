"""Glance's image database API on SQLite, plus a folder of image data.

A :class:`LocalStore` is one local region: ``PATH/images.db`` holds
Glance's image model (tables ``images``, ``image_properties``,
``image_locations``, ``image_members``, ``image_tags``; rows are soft
deleted with ``deleted`` / ``deleted_at``) and ``PATH/data/<image id>`` holds
each image's bytes. The methods follow Glance's database API (seed 004): the
same names, the same parameters, a :class:`RequestContext` first, and the
same visibility rules. They return plain dicts.

Shape of an image dict (see :meth:`LocalStore.image_get`): every column of
``images`` (``protected``, ``os_hidden`` and ``deleted`` as bools,
timestamps as ISO 8601 UTC strings with microseconds), ``properties`` as a
dict ``{name: value}`` (Glance's DB layer returns a list of rows; a dict is
what every caller here wants), ``locations`` as a list of
``{'id', 'url', 'metadata', 'status'}`` and, from :meth:`image_get` or when
``return_tag`` is true, ``tags`` as a list of strings.

Data is written to a temporary file, hashed while streaming (md5 and
sha512, like Glance), fsynced and renamed into place; only then does the
row become ``active``. A writer killed half way leaves the image ``saving``
(or ``queued``), never ``active`` with partial data.

Errors: a missing or invisible image (or member, property, tag, location)
raises :class:`ImageNotFoundError`; a mutation the context may not make or a
``from_state`` mismatch raises :class:`ConflictError`; a bad argument raises
:class:`UsageError`; SQLite errors become :class:`ServiceError` and OS errors
on data files :class:`TransferError`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import re
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from glancesync import safenames
from glancesync.errors import (ConflictError, GlanceSyncError, ImageNotFoundError,
                               ServiceError, TransferError, UnsafeNameError, UsageError)
from glancesync.image import VISIBILITIES
from glancesync.integrity import CHUNK_SIZE, HashingStream, atomic_file, open_regular_file

__all__ = ["RequestContext", "LocalStore", "DB_NAME", "DATA_DIR"]

LOG = logging.getLogger(__name__)

#: File name of the database inside the store's folder.
DB_NAME = "images.db"
#: Folder of the image data files inside the store's folder.
DATA_DIR = "data"

IMAGE_COLUMNS = (
    "id", "name", "disk_format", "container_format", "size", "virtual_size",
    "status", "visibility", "checksum", "os_hash_algo", "os_hash_value",
    "min_disk", "min_ram", "owner", "protected", "os_hidden", "created_at",
    "updated_at", "deleted_at", "deleted",
)
#: Columns a caller may set through ``image_create`` / ``image_update``.
WRITABLE_COLUMNS = frozenset(IMAGE_COLUMNS) - {"id", "created_at", "updated_at",
                                               "deleted_at", "deleted"}
BOOL_COLUMNS = frozenset({"protected", "os_hidden", "deleted"})
INT_COLUMNS = frozenset({"size", "virtual_size", "min_disk", "min_ram"})
NOT_NULL_COLUMNS = frozenset({"status", "visibility", "min_disk", "min_ram",
                              "protected", "os_hidden"})
STATUSES = frozenset({"queued", "saving", "active", "killed", "deleted",
                      "pending_delete", "deactivated", "uploading", "importing"})
MEMBER_STATUSES = frozenset({"pending", "accepted", "rejected"})
LOCATION_STATUSES = frozenset({"active", "deleted", "pending_delete"})

#: What an image id may be: it names the image's data file, so never a
#: path (Glance's ids are UUIDs, which match). Checked on writing and on
#: reading: a row altered to ``../../x`` is never seen, never acted upon.
_SAFE_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
#: The same rule in SQL, for listings (a filter after LIMIT would cut pages).
_SAFE_ID_SQL = ("(typeof(id) = 'text' AND length(id) BETWEEN 1 AND 128"
                " AND id GLOB '[A-Za-z0-9_-]*' AND id NOT GLOB '*[^A-Za-z0-9._-]*')")


def is_safe_id(image_id: Any) -> bool:
    """True when ``image_id`` may name an image (and its data file)."""
    return isinstance(image_id, str) and _SAFE_ID.fullmatch(image_id) is not None

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    name TEXT,
    disk_format TEXT,
    container_format TEXT,
    size INTEGER,
    virtual_size INTEGER,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL DEFAULT 'shared',
    checksum TEXT,
    os_hash_algo TEXT,
    os_hash_value TEXT,
    min_disk INTEGER NOT NULL DEFAULT 0,
    min_ram INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    protected INTEGER NOT NULL DEFAULT 0,
    os_hidden INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_images_deleted ON images (deleted);
CREATE INDEX IF NOT EXISTS ix_images_owner ON images (owner);
CREATE INDEX IF NOT EXISTS ix_images_visibility ON images (visibility);
CREATE INDEX IF NOT EXISTS ix_images_created_at ON images (created_at, id);
CREATE TABLE IF NOT EXISTS image_properties (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL REFERENCES images (id),
    name TEXT NOT NULL,
    value TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (image_id, name)
);
CREATE INDEX IF NOT EXISTS ix_image_properties_name ON image_properties (name);
CREATE TABLE IF NOT EXISTS image_locations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL REFERENCES images (id),
    value TEXT NOT NULL,
    meta_data TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_image_locations_image ON image_locations (image_id);
CREATE TABLE IF NOT EXISTS image_members (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL REFERENCES images (id),
    member TEXT NOT NULL,
    can_share INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_image_members_live
    ON image_members (image_id, member) WHERE deleted = 0;
CREATE INDEX IF NOT EXISTS ix_image_members_member ON image_members (member);
CREATE TABLE IF NOT EXISTS image_tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL REFERENCES images (id),
    value TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    deleted_at TEXT,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_image_tags_image ON image_tags (image_id, value);
PRAGMA user_version = 1;
"""


@dataclasses.dataclass(frozen=True)
class RequestContext:
    """Who asks: the project (Glance's ``context.owner``) and the admin flag."""

    project_id: str | None
    is_admin: bool = False


def _now() -> str:
    """UTC now, ISO 8601 with microseconds: sorts as text like as time."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _coalesce_default(column: str) -> Any:
    """The value NULLs of ``column`` sort as (like Glance's pagination)."""
    return 0 if column in INT_COLUMNS or column in BOOL_COLUMNS else ""


def _member_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"], "image_id": row["image_id"], "member": row["member"],
        "can_share": bool(row["can_share"]), "status": row["status"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
        "deleted_at": row["deleted_at"], "deleted": bool(row["deleted"]),
    }


def _property_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"], "image_id": row["image_id"], "name": row["name"],
        "value": row["value"], "created_at": row["created_at"],
        "updated_at": row["updated_at"], "deleted_at": row["deleted_at"],
        "deleted": bool(row["deleted"]),
    }


def _location_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "url": row["value"],
            "metadata": json.loads(row["meta_data"] or "{}"), "status": row["status"]}


def _check_value(column: str, value: Any) -> Any:
    """Validate one column value; return it as stored."""
    if value is None:
        if column in NOT_NULL_COLUMNS:
            raise UsageError(f"image field {column!r} cannot be null")
        return None
    if column in BOOL_COLUMNS:
        if not isinstance(value, (bool, int)):
            raise UsageError(f"image field {column!r} must be a boolean, not {value!r}")
        return int(bool(value))
    if column in INT_COLUMNS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"image field {column!r} must be an integer >= 0, not {value!r}")
        return value
    if not isinstance(value, str):
        raise UsageError(f"image field {column!r} must be a string, not {value!r}")
    if column == "status" and value not in STATUSES:
        raise UsageError(f"unknown image status {value!r}")
    if column == "visibility" and value not in VISIBILITIES:
        raise UsageError(f"visibility must be one of {', '.join(VISIBILITIES)}, not {value!r}")
    return value



def _soft_delete_one(conn: sqlite3.Connection, table: str, key_column: str,
                     image_id: str, key: str, now: str, what: str) -> None:
    """Soft delete the live row of ``table`` keyed by ``key`` for one image.

    ``table`` and ``key_column`` are constants of this module, never input.
    ImageNotFoundError when there is no such live row.
    """
    cursor = conn.execute(f"UPDATE {table} SET deleted = 1, deleted_at = ?, updated_at = ? "
                          f"WHERE image_id = ? AND {key_column} = ? AND deleted = 0",
                          (now, now, image_id, key))
    if cursor.rowcount == 0:
        raise ImageNotFoundError(f"no {what} {key!r}", image=image_id, status_code=404)

class LocalStore:
    """One local region: Glance's image database API plus a data folder.

    Safe to share between threads (one SQLite connection per thread) and
    between processes (WAL, ``BEGIN IMMEDIATE`` for writes, busy timeout).
    The folder is created if missing.

    With ``readonly`` the store only reads: it creates nothing (no folder,
    no schema) and every change raises :class:`ServiceError`. The database
    must exist. A folder this process may write to is read through a normal
    connection made ``query_only`` (so that other processes writing the
    region are seen as usual); a folder it may not write to (an offline
    mirror on read-only media) through a SQLite ``mode=ro`` connection, or
    ``immutable=1`` when SQLite cannot even read it so (a WAL database
    without its ``-shm`` file).
    """

    def __init__(self, path: Path | str, *, busy_timeout: float = 30.0,
                 readonly: bool = False) -> None:
        self.path = Path(path)
        self.db_path = self.path / DB_NAME
        self.data_path = self.path / DATA_DIR
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._reported: set[Any] = set()
        self.readonly = readonly
        if readonly:
            if not self.db_path.is_file():
                raise ServiceError(f"{self.db_path} does not exist: no local region to read")
            self._connection()  # fails now if the database cannot be read at all
            return
        try:
            self.data_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServiceError(f"cannot create the local region folder {self.path}: {exc}") from exc
        conn = self._connection()
        try:
            conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise ServiceError(f"cannot initialise {self.db_path}: {exc}") from exc

    # -- plumbing ---------------------------------------------------------

    def __repr__(self) -> str:
        return f"<LocalStore {self.path}>"

    def __enter__(self) -> "LocalStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection; the store is not used afterwards."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise ServiceError(f"local store {self.path} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise ServiceError(f"local store {self.path} is closed")
            try:
                if self.readonly:
                    conn = self._reading_connection()
                else:
                    conn = self._connect(self.db_path)
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = FULL")
                    conn.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error as exc:
                raise ServiceError(f"cannot open {self.db_path}: {exc}") from exc
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def _connect(self, target: str | Path, uri: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=self._busy_timeout, isolation_level=None,
                               check_same_thread=False, uri=uri)
        conn.row_factory = sqlite3.Row
        return conn

    def _reading_connection(self) -> sqlite3.Connection:
        """A connection that never writes (see the class docstring)."""
        if os.access(self.path, os.W_OK) and os.access(self.db_path, os.W_OK):
            conn = self._connect(self.db_path)
            conn.execute("PRAGMA query_only = 1")
            return conn
        uri = self.db_path.resolve().as_uri()
        for options in ("?mode=ro", "?mode=ro&immutable=1"):
            conn = self._connect(uri + options, uri=True)
            try:
                conn.execute("SELECT count(*) FROM images").fetchone()
                return conn
            except sqlite3.Error as exc:
                conn.close()
                error = exc
        raise error

    @contextlib.contextmanager
    def _transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction; SQLite errors become :class:`ServiceError`."""
        if write and self.readonly:
            raise ServiceError(f"local region {self.path} is open for reading only")
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise ServiceError(f"local store {self.path}: {exc}") from exc

    def _data_file(self, image_id: str, *, resolve: bool = True) -> Path:
        """``data/<image id>``, checked to stay in the data folder.

        With ``resolve``, a data file that is a link is followed and must stay
        in the folder too (to read it); removing a link needs no such check.
        """
        if not is_safe_id(image_id):
            raise UnsafeNameError(f"image id {image_id!r} cannot name a data file",
                                  image=str(image_id))
        return safenames.join(self.data_path, image_id, resolve=resolve)

    # -- visibility -------------------------------------------------------

    @staticmethod
    def is_image_mutable(context: RequestContext, image: Mapping[str, Any]) -> bool:
        """True when ``context`` may modify ``image`` (admin or owner)."""
        if context.is_admin:
            return True
        if image["owner"] is None or context.project_id is None:
            return False
        return image["owner"] == context.project_id

    def is_image_visible(self, context: RequestContext, image: Mapping[str, Any],
                         status: str | None = None) -> bool:
        """True when ``context`` may see ``image``.

        Admin sees all; images without owner, public and community images
        are seen by all; the owner sees its images; a member sees a shared
        image when its membership has ``status`` (any status if None).
        """
        with self._transaction(write=False) as conn:
            return self._visible(conn, context, image, status)

    @staticmethod
    def _visible(conn: sqlite3.Connection, context: RequestContext,
                 image: Mapping[str, Any], status: str | None = None) -> bool:
        if context.is_admin or image["owner"] is None:
            return True
        if image["visibility"] in ("public", "community"):
            return True
        if context.project_id is None:
            return False
        if image["owner"] == context.project_id:
            return True
        if image["visibility"] != "shared":
            return False
        sql = "SELECT 1 FROM image_members WHERE image_id = ? AND member = ? AND deleted = 0"
        params: list[Any] = [image["id"], context.project_id]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        return conn.execute(sql, params).fetchone() is not None

    def _image_row(self, conn: sqlite3.Connection, context: RequestContext, image_id: str,
                   force_show_deleted: bool = False) -> sqlite3.Row:
        """The image's row if it exists and ``context`` sees it, else ImageNotFoundError."""
        if not is_safe_id(image_id):
            raise ImageNotFoundError("no such image (not a valid image id)",
                                     image=repr(image_id), status_code=404)
        row = conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        if row is None or (row["deleted"] and not force_show_deleted):
            raise ImageNotFoundError("no such image", image=image_id, status_code=404)
        if not self._visible(conn, context, row):
            LOG.debug("image %s is not visible to project %s", image_id, context.project_id)
            raise ImageNotFoundError("no such image", image=image_id, status_code=404)
        return row

    def _mutable_row(self, conn: sqlite3.Connection, context: RequestContext,
                     image_id: str) -> sqlite3.Row:
        row = self._image_row(conn, context, image_id)
        if not self.is_image_mutable(context, row):
            raise ConflictError(f"project {context.project_id} may not modify this image",
                                image=image_id, status_code=403)
        return row

    # -- formatting -------------------------------------------------------

    def _format_images(self, conn: sqlite3.Connection, rows: list[sqlite3.Row],
                       with_tags: bool, force_show_deleted: bool = False) -> list[dict[str, Any]]:
        """Image dicts of ``rows`` with properties, locations and maybe tags."""
        images: dict[str, dict[str, Any]] = {}
        for row in rows:
            image = {column: row[column] for column in IMAGE_COLUMNS}
            for column in BOOL_COLUMNS:
                image[column] = bool(image[column])
            image["properties"] = {}
            image["locations"] = []
            if with_tags:
                image["tags"] = []
            images[row["id"]] = image
        if not images:
            return []
        marks = ",".join("?" * len(images))
        ids = list(images)
        for prop in conn.execute(
                f"SELECT image_id, name, value, deleted, deleted_at FROM image_properties "
                f"WHERE image_id IN ({marks}) ORDER BY id", ids):
            image = images[prop["image_id"]]
            if self._shown(prop, image):
                image["properties"][prop["name"]] = prop["value"]
        for loc in conn.execute(
                f"SELECT * FROM image_locations WHERE image_id IN ({marks}) ORDER BY id", ids):
            if force_show_deleted or (not loc["deleted"] and loc["status"] != "deleted"):
                images[loc["image_id"]]["locations"].append(_location_dict(loc))
        if with_tags:
            for tag in conn.execute(
                    f"SELECT image_id, value, deleted, deleted_at FROM image_tags "
                    f"WHERE image_id IN ({marks}) ORDER BY created_at, id", ids):
                if self._shown(tag, images[tag["image_id"]]):
                    images[tag["image_id"]]["tags"].append(tag["value"])
        return list(images.values())

    @staticmethod
    def _shown(child: sqlite3.Row, image: Mapping[str, Any]) -> bool:
        """Live rows; a deleted image also shows those deleted with it."""
        return not child["deleted"] or (image["deleted"]
                                        and child["deleted_at"] == image["deleted_at"])

    def _format_image(self, conn: sqlite3.Connection, image_id: str,
                      force_show_deleted: bool = False) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM images WHERE id = ?", (image_id,)).fetchone()
        return self._format_images(conn, [row], True, force_show_deleted)[0]

    # -- images -----------------------------------------------------------

    def image_create(self, context: RequestContext, values: Mapping[str, Any]) -> dict[str, Any]:
        """Create an image from ``values`` (columns and a ``properties`` dict).

        ``id`` defaults to a uuid4, ``status`` to ``queued``, ``visibility``
        to ``shared`` and ``owner`` to the context's project. An id that
        exists or existed raises :class:`ConflictError`, as in Glance.
        """
        values = dict(values)
        props = values.pop("properties", None) or {}
        image_id = values.pop("id", None) or str(uuid.uuid4())
        if not is_safe_id(image_id):
            raise UsageError(f"invalid image id {image_id!r}")
        values.setdefault("status", "queued")
        values.setdefault("visibility", "shared")
        values.setdefault("owner", context.project_id)
        columns = self._checked_columns(values)
        now = _now()
        columns.update(id=image_id, created_at=now, updated_at=now, deleted=0)
        for column in ("min_disk", "min_ram", "protected", "os_hidden"):
            columns.setdefault(column, 0)
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone():
                raise ConflictError("an image with this id exists or existed",
                                    image=image_id, status_code=409)
            names = ", ".join(columns)
            conn.execute(f"INSERT INTO images ({names}) VALUES ({','.join('?' * len(columns))})",
                         list(columns.values()))
            self._set_properties(conn, image_id, props, False, now)
            return self._format_image(conn, image_id)

    @staticmethod
    def _checked_columns(values: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(values) - WRITABLE_COLUMNS
        if unknown:
            raise UsageError(f"cannot set image field(s) {', '.join(sorted(unknown))}")
        return {column: _check_value(column, value) for column, value in values.items()}

    def _set_properties(self, conn: sqlite3.Connection, image_id: str, props: Mapping[str, Any],
                        purge: bool, now: str) -> bool:
        """Upsert ``props`` (reviving soft-deleted rows); purge the others if asked."""
        changed = False
        for name, value in props.items():
            if not isinstance(name, str) or not name:
                raise UsageError(f"invalid property name {name!r}")
            value = None if value is None else str(value)
            current = conn.execute("SELECT value, deleted FROM image_properties "
                                   "WHERE image_id = ? AND name = ?", (image_id, name)).fetchone()
            if current is None:
                conn.execute("INSERT INTO image_properties (image_id, name, value, created_at, "
                             "updated_at) VALUES (?, ?, ?, ?, ?)",
                             (image_id, name, value, now, now))
                changed = True
            elif current["deleted"] or current["value"] != value:
                conn.execute("UPDATE image_properties SET value = ?, deleted = 0, "
                             "deleted_at = NULL, updated_at = ? WHERE image_id = ? AND name = ?",
                             (value, now, image_id, name))
                changed = True
        if purge:
            keep = list(props)
            sql = ("UPDATE image_properties SET deleted = 1, deleted_at = ?, updated_at = ? "
                   "WHERE image_id = ? AND deleted = 0")
            if keep:
                sql += f" AND name NOT IN ({','.join('?' * len(keep))})"
            changed = conn.execute(sql, [now, now, image_id, *keep]).rowcount > 0 or changed
        return changed

    def image_update(self, context: RequestContext, image_id: str, values: Mapping[str, Any],
                     purge_props: bool = False, from_state: str | None = None) -> dict[str, Any]:
        """Update columns and properties (``values['properties']``, a dict).

        ``purge_props`` deletes the properties not in ``values['properties']``;
        ``from_state`` requires the image's current status (else ConflictError).
        """
        values = dict(values)
        props = values.pop("properties", None) or {}
        columns = self._checked_columns(values)
        with self._transaction() as conn:
            row = self._mutable_row(conn, context, image_id)
            if from_state is not None and row["status"] != from_state:
                raise ConflictError(f"image is {row['status']}, not {from_state}",
                                    image=image_id, status_code=409)
            now = _now()
            changed = self._set_properties(conn, image_id, props, purge_props, now)
            if columns or changed:
                columns["updated_at"] = now
                assignments = ", ".join(f"{column} = ?" for column in columns)
                conn.execute(f"UPDATE images SET {assignments} WHERE id = ?",
                             [*columns.values(), image_id])
            return self._format_image(conn, image_id)

    def image_destroy(self, context: RequestContext, image_id: str) -> dict[str, Any]:
        """Soft delete the image, its properties, tags and members; drop its data.

        Locations are marked ``deleted``. Returns the deleted image's dict.
        """
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            now = _now()
            conn.execute("UPDATE images SET status = 'deleted', deleted = 1, deleted_at = ?, "
                         "updated_at = ? WHERE id = ?", (now, now, image_id))
            for table in ("image_properties", "image_tags", "image_members"):
                conn.execute(f"UPDATE {table} SET deleted = 1, deleted_at = ?, updated_at = ? "
                             "WHERE image_id = ? AND deleted = 0", (now, now, image_id))
            conn.execute("UPDATE image_locations SET status = 'deleted', deleted = 1, "
                         "deleted_at = ?, updated_at = ? WHERE image_id = ? AND deleted = 0",
                         (now, now, image_id))
            image = self._format_image(conn, image_id)
        try:
            self._data_file(image_id, resolve=False).unlink(missing_ok=True)
        except OSError as exc:
            raise TransferError(f"image deleted but its data file remains: {exc}",
                                image=image_id) from exc
        return image

    def image_get(self, context: RequestContext, image_id: str,
                  force_show_deleted: bool = False) -> dict[str, Any]:
        """One image dict (with ``tags``); deleted ones only with ``force_show_deleted``."""
        with self._transaction(write=False) as conn:
            self._image_row(conn, context, image_id, force_show_deleted)
            return self._format_image(conn, image_id, force_show_deleted)

    def image_get_all(self, context: RequestContext, filters: Mapping[str, Any] | None = None,
                      marker: str | None = None, limit: int | None = None,
                      sort_key: str | Iterable[str] | None = None,
                      sort_dir: str | Iterable[str] | None = None,
                      member_status: str = "accepted", is_public: bool | None = None,
                      admin_as_user: bool = False,
                      return_tag: bool = False) -> list[dict[str, Any]]:
        """The images ``context`` sees that match ``filters``, one page.

        ``filters``: a column name to a value (a list/tuple/set means any of
        them); ``properties`` (a dict: every pair must match); ``tags`` (a
        list: every tag present); ``deleted`` (bool, default False);
        ``visibility`` (a value or ``'all'``; without it, community images
        of other projects are left out, as in Glance); ``is_public``;
        ``size_min`` / ``size_max``; ``changes-since`` (``updated_at >=``).
        Other keys are property filters, as in Glance. Sorted by
        ``sort_key`` / ``sort_dir`` (lists; default ``created_at`` desc, then
        ``id``); ``marker`` is the id of the last image of the previous page.
        """
        filters = dict(filters or {})
        show_deleted = bool(filters.get("deleted"))  # read before the filters are consumed
        where: list[str] = []
        params: list[Any] = []
        self._filter_conditions(context, filters, is_public, where, params)
        regular_user = not context.is_admin or admin_as_user
        if regular_user:
            self._visibility_conditions(context, member_status, where, params)
        keys, dirs = self._sort_spec(sort_key, sort_dir)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise UsageError(f"limit must be an integer >= 0, not {limit!r}")
        where.append(_SAFE_ID_SQL)
        with self._transaction(write=False) as conn:
            if marker is None:
                self._warn_unsafe_ids(conn)
            if marker is not None:
                marker_row = conn.execute("SELECT * FROM images WHERE id = ?", (marker,)).fetchone()
                if marker_row is None or not self._visible(conn, context, marker_row):
                    raise ImageNotFoundError("marker image not found", image=marker,
                                             status_code=400)
                where.append(self._marker_condition(keys, dirs, marker_row, params))
            order = ", ".join(f"COALESCE({key}, ?) {direction.upper()}"
                              for key, direction in zip(keys, dirs))
            params.extend(_coalesce_default(key) for key in keys)
            sql = "SELECT * FROM images"
            if where:
                sql += " WHERE " + " AND ".join(f"({condition})" for condition in where)
            sql += f" ORDER BY {order}"
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
            rows = conn.execute(sql, params).fetchall()
            return self._format_images(conn, rows, return_tag, show_deleted)

    def _warn_unsafe_ids(self, conn: sqlite3.Connection) -> None:
        """Report, once per store, the live rows whose id is not a valid image id.

        They are left out of every listing and refused by every call: such an
        id (``../../x``) can only come from a database altered by hand or by
        an attacker, and would name a file outside the data folder.
        """
        for (image_id,) in conn.execute(
                f"SELECT id FROM images WHERE deleted = 0 AND NOT {_SAFE_ID_SQL} LIMIT 100"):
            if image_id not in self._reported:
                self._reported.add(image_id)
                LOG.warning("local region %s: ignoring the image row with id %r: not a"
                            " valid image id (was the database altered?)", self.path,
                            image_id)

    @staticmethod
    def _filter_conditions(context: RequestContext, filters: dict[str, Any],
                           is_public: bool | None, where: list[str], params: list[Any]) -> None:
        deleted = filters.pop("deleted", False)
        where.append("deleted = ?")
        params.append(int(bool(deleted)))
        if "is_public" in filters:
            legacy = filters.pop("is_public")
            is_public = legacy if is_public is None else is_public
        if is_public is not None:
            where.append("visibility = 'public'" if is_public else "visibility != 'public'")
        if "visibility" in filters:
            visibility = filters.pop("visibility")
            if visibility != "all":
                where.append("visibility = ?")
                params.append(visibility)
        elif context.project_id is None:
            where.append("visibility != 'community'")
        else:
            where.append("owner = ? OR visibility != 'community'")
            params.append(context.project_id)
        if filters.get("size_min") is not None:
            where.append("size >= ?")
            params.append(filters.pop("size_min"))
        if filters.get("size_max") is not None:
            where.append("size <= ?")
            params.append(filters.pop("size_max"))
        if filters.get("changes-since") is not None:
            where.append("updated_at >= ?")
            params.append(filters.pop("changes-since"))
        for tag in filters.pop("tags", None) or ():
            where.append("EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id "
                         "AND t.deleted = 0 AND t.value = ?)")
            params.append(tag)
        props = dict(filters.pop("properties", None) or {})
        for key, value in filters.items():
            if value is None:
                continue
            if key not in IMAGE_COLUMNS:
                props[key] = value
                continue
            values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
            values = [int(bool(v)) if key in BOOL_COLUMNS else v for v in values]
            where.append(f"{key} IN ({','.join('?' * len(values))})")
            params.extend(values)
        for name, value in props.items():
            where.append("EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = images.id "
                         "AND p.deleted = 0 AND p.name = ? AND p.value = ?)")
            params.extend([name, str(value)])

    @staticmethod
    def _visibility_conditions(context: RequestContext, member_status: str,
                               where: list[str], params: list[Any]) -> None:
        clauses = ["visibility IN ('public', 'community')", "owner IS NULL"]
        if context.project_id is not None:
            clauses.append("owner = ?")
            params.append(context.project_id)
            member = ("visibility = 'shared' AND EXISTS (SELECT 1 FROM image_members m "
                      "WHERE m.image_id = images.id AND m.deleted = 0 AND m.member = ?")
            params.append(context.project_id)
            if member_status != "all":
                member += " AND m.status = ?"
                params.append(member_status)
            clauses.append(member + ")")
        where.append(" OR ".join(clauses))

    @staticmethod
    def _sort_spec(sort_key: str | Iterable[str] | None,
                   sort_dir: str | Iterable[str] | None) -> tuple[list[str], list[str]]:
        keys = [sort_key] if isinstance(sort_key, str) else list(sort_key or ["created_at"])
        dirs = [sort_dir] if isinstance(sort_dir, str) else list(sort_dir or [])
        if not dirs:
            dirs = ["desc"] * len(keys)
        elif len(dirs) == 1:
            dirs = dirs * len(keys)
        if len(dirs) != len(keys):
            raise UsageError("sort_dir must have one direction, or one per sort_key")
        for key in keys:
            if key not in IMAGE_COLUMNS:
                raise UsageError(f"cannot sort on {key!r}")
        for direction in dirs:
            if direction not in ("asc", "desc"):
                raise UsageError(f"sort direction must be asc or desc, not {direction!r}")
        for key in ("created_at", "id"):
            if key not in keys:
                keys.append(key)
                dirs.append("desc")
        return keys, dirs

    @staticmethod
    def _marker_condition(keys: list[str], dirs: list[str], marker: sqlite3.Row,
                          params: list[Any]) -> str:
        """Rows strictly after ``marker`` in the (keys, dirs) order."""
        alternatives = []
        for index, key in enumerate(keys):
            parts = []
            for previous in keys[:index]:
                parts.append(f"COALESCE({previous}, ?) = ?")
                default = _coalesce_default(previous)
                params.extend([default, default if marker[previous] is None else marker[previous]])
            operator = ">" if dirs[index] == "asc" else "<"
            parts.append(f"COALESCE({key}, ?) {operator} ?")
            default = _coalesce_default(key)
            params.extend([default, default if marker[key] is None else marker[key]])
            alternatives.append("(" + " AND ".join(parts) + ")")
        return " OR ".join(alternatives)

    # -- locations --------------------------------------------------------

    def image_location_add(self, context: RequestContext, image_id: str,
                           location: Mapping[str, Any]) -> dict[str, Any]:
        """Add ``{'url', 'metadata'?, 'status'?}``; return it with its ``id``."""
        url = location.get("url")
        if not isinstance(url, str) or not url:
            raise UsageError("a location needs a url")
        status = location.get("status", "active")
        if status not in LOCATION_STATUSES:
            raise UsageError(f"invalid location status {status!r}")
        metadata = json.dumps(dict(location.get("metadata") or {}))
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            now = _now()
            cursor = conn.execute(
                "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (image_id, url, metadata, status, now, now))
            row = conn.execute("SELECT * FROM image_locations WHERE id = ?",
                               (cursor.lastrowid,)).fetchone()
            return _location_dict(row)

    def _location_row(self, conn: sqlite3.Connection, image_id: str,
                      location_id: Any) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM image_locations WHERE id = ? AND image_id = ? "
                           "AND deleted = 0", (location_id, image_id)).fetchone()
        if row is None:
            raise ImageNotFoundError(f"no location {location_id}", image=image_id, status_code=404)
        return row

    def image_location_update(self, context: RequestContext, image_id: str,
                              location: Mapping[str, Any]) -> dict[str, Any]:
        """Update url / metadata / status of the location ``location['id']``."""
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            row = self._location_row(conn, image_id, location.get("id"))
            url = location.get("url", row["value"])
            status = location.get("status", row["status"])
            if status not in LOCATION_STATUSES:
                raise UsageError(f"invalid location status {status!r}")
            metadata = (json.dumps(dict(location["metadata"] or {})) if "metadata" in location
                        else row["meta_data"])
            deleted = int(status == "deleted")
            now = _now()
            conn.execute("UPDATE image_locations SET value = ?, meta_data = ?, status = ?, "
                         "deleted = ?, deleted_at = ?, updated_at = ? WHERE id = ?",
                         (url, metadata, status, deleted, now if deleted else None, now, row["id"]))
            return _location_dict(conn.execute("SELECT * FROM image_locations WHERE id = ?",
                                               (row["id"],)).fetchone())

    def image_location_delete(self, context: RequestContext, image_id: str, location_id: Any,
                              status: str, delete_time: str | None = None) -> None:
        """Mark a location ``deleted`` or ``pending_delete`` (soft delete)."""
        if status not in ("deleted", "pending_delete"):
            raise UsageError("a location is deleted with status deleted or pending_delete,"
                             f" not {status!r}")
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            row = self._location_row(conn, image_id, location_id)
            now = _now()
            conn.execute("UPDATE image_locations SET status = ?, deleted = 1, deleted_at = ?, "
                         "updated_at = ? WHERE id = ?",
                         (status, delete_time or now, now, row["id"]))

    # -- properties -------------------------------------------------------

    def image_property_create(self, context: RequestContext,
                              values: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``{'image_id', 'name', 'value'}``; an existing live one is a conflict."""
        image_id, name = values.get("image_id"), values.get("name")
        if not isinstance(name, str) or not name:
            raise UsageError(f"invalid property name {name!r}")
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            live = conn.execute("SELECT 1 FROM image_properties WHERE image_id = ? AND name = ? "
                                "AND deleted = 0", (image_id, name)).fetchone()
            if live:
                raise ConflictError(f"property {name!r} exists", image=image_id, status_code=409)
            now = _now()
            self._set_properties(conn, image_id, {name: values.get("value")}, False, now)
            conn.execute("UPDATE images SET updated_at = ? WHERE id = ?", (now, image_id))
            return _property_dict(conn.execute(
                "SELECT * FROM image_properties WHERE image_id = ? AND name = ?",
                (image_id, name)).fetchone())

    def image_property_delete(self, context: RequestContext, prop_ref: str,
                              image_ref: str) -> dict[str, Any]:
        """Soft delete the property named ``prop_ref`` of image ``image_ref``."""
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_ref)
            now = _now()
            _soft_delete_one(conn, "image_properties", "name", image_ref, prop_ref, now,
                             "property")
            conn.execute("UPDATE images SET updated_at = ? WHERE id = ?", (now, image_ref))
            return _property_dict(conn.execute(
                "SELECT * FROM image_properties WHERE image_id = ? AND name = ?",
                (image_ref, prop_ref)).fetchone())

    # -- members ----------------------------------------------------------

    def image_member_create(self, context: RequestContext,
                            values: Mapping[str, Any]) -> dict[str, Any]:
        """Share ``values['image_id']`` with ``values['member']`` (owner or admin).

        ``status`` defaults to ``pending``, ``can_share`` to False.
        """
        image_id, member = values.get("image_id"), values.get("member")
        if not isinstance(member, str) or not member:
            raise UsageError(f"invalid member {member!r}")
        status = values.get("status", "pending")
        if status not in MEMBER_STATUSES:
            raise UsageError(f"invalid member status {status!r}")
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            if conn.execute("SELECT 1 FROM image_members WHERE image_id = ? AND member = ? "
                            "AND deleted = 0", (image_id, member)).fetchone():
                raise ConflictError(f"{member} is already a member", image=image_id,
                                    status_code=409)
            now = _now()
            cursor = conn.execute(
                "INSERT INTO image_members (image_id, member, can_share, status, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (image_id, member, int(bool(values.get("can_share", False))), status, now, now))
            return _member_dict(conn.execute("SELECT * FROM image_members WHERE id = ?",
                                             (cursor.lastrowid,)).fetchone())

    def _member_row(self, conn: sqlite3.Connection, context: RequestContext,
                    memb_id: int) -> tuple[sqlite3.Row, sqlite3.Row]:
        row = conn.execute("SELECT * FROM image_members WHERE id = ? AND deleted = 0",
                           (memb_id,)).fetchone()
        if row is None:
            raise ImageNotFoundError(f"no member record {memb_id}", status_code=404)
        image = conn.execute("SELECT * FROM images WHERE id = ?", (row["image_id"],)).fetchone()
        if not (context.is_admin or context.project_id in (row["member"], image["owner"])):
            raise ImageNotFoundError(f"no member record {memb_id}", status_code=404)
        return row, image

    def image_member_update(self, context: RequestContext, memb_id: int,
                            values: Mapping[str, Any]) -> dict[str, Any]:
        """Change ``status`` (the member or admin) or ``can_share`` (owner or admin)."""
        unknown = set(values) - {"status", "can_share", "image_id", "member"}
        if unknown:
            raise UsageError(f"cannot set member field(s) {', '.join(sorted(unknown))}")
        with self._transaction() as conn:
            row, image = self._member_row(conn, context, memb_id)
            for key in ("image_id", "member"):
                if key in values and values[key] != row[key]:
                    raise UsageError(f"a member's {key} cannot change")
            status = values.get("status", row["status"])
            if status not in MEMBER_STATUSES:
                raise UsageError(f"invalid member status {status!r}")
            if status != row["status"] and not (context.is_admin
                                                 or context.project_id == row["member"]):
                raise ConflictError("only the member may accept or reject a share",
                                    image=row["image_id"], status_code=403)
            can_share = int(bool(values.get("can_share", row["can_share"])))
            if can_share != row["can_share"] and not (context.is_admin
                                                      or context.project_id == image["owner"]):
                raise ConflictError("only the owner may change can_share",
                                    image=row["image_id"], status_code=403)
            conn.execute("UPDATE image_members SET status = ?, can_share = ?, updated_at = ? "
                         "WHERE id = ?", (status, can_share, _now(), memb_id))
            return _member_dict(conn.execute("SELECT * FROM image_members WHERE id = ?",
                                             (memb_id,)).fetchone())

    def image_member_delete(self, context: RequestContext, memb_id: int) -> None:
        """Soft delete a member record (owner or admin)."""
        with self._transaction() as conn:
            row, image = self._member_row(conn, context, memb_id)
            if not self.is_image_mutable(context, image):
                raise ConflictError("only the owner may remove a member",
                                    image=row["image_id"], status_code=403)
            now = _now()
            conn.execute("UPDATE image_members SET deleted = 1, deleted_at = ?, updated_at = ? "
                         "WHERE id = ?", (now, now, memb_id))

    def image_member_find(self, context: RequestContext, image_id: str | None = None,
                          member: str | None = None, status: str | None = None,
                          include_deleted: bool = False) -> list[dict[str, Any]]:
        """Member records; a non-admin sees those of its images and its own."""
        sql = ("SELECT m.* FROM image_members m JOIN images i ON i.id = m.image_id WHERE 1 = 1")
        params: list[Any] = []
        if not include_deleted:
            sql += " AND m.deleted = 0"
        if not context.is_admin:
            sql += " AND (i.owner = ? OR m.member = ?)"
            params.extend([context.project_id, context.project_id])
        for column, value in (("image_id", image_id), ("member", member), ("status", status)):
            if value is not None:
                sql += f" AND m.{column} = ?"
                params.append(value)
        sql += " ORDER BY m.id"
        with self._transaction(write=False) as conn:
            return [_member_dict(row) for row in conn.execute(sql, params)]

    def image_member_count(self, context: RequestContext, image_id: str) -> int:
        """How many live members the (visible) image has."""
        if not image_id:
            raise UsageError("image_member_count needs an image id")
        with self._transaction(write=False) as conn:
            self._image_row(conn, context, image_id)
            return conn.execute("SELECT COUNT(*) FROM image_members WHERE image_id = ? "
                                "AND deleted = 0", (image_id,)).fetchone()[0]

    # -- tags -------------------------------------------------------------

    def image_tag_get_all(self, context: RequestContext, image_id: str) -> list[str]:
        """The image's tags, oldest first."""
        with self._transaction(write=False) as conn:
            self._image_row(conn, context, image_id)
            return [row["value"] for row in conn.execute(
                "SELECT value FROM image_tags WHERE image_id = ? AND deleted = 0 "
                "ORDER BY created_at, id", (image_id,))]

    def image_tag_set_all(self, context: RequestContext, image_id: str,
                          tags: Iterable[str]) -> list[str]:
        """Make ``tags`` the image's tags (an empty list removes all)."""
        wanted = list(dict.fromkeys(tags))
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            now = _now()
            existing = {row["value"] for row in conn.execute(
                "SELECT value FROM image_tags WHERE image_id = ? AND deleted = 0", (image_id,))}
            for value in existing - set(wanted):
                conn.execute("UPDATE image_tags SET deleted = 1, deleted_at = ?, updated_at = ? "
                             "WHERE image_id = ? AND value = ? AND deleted = 0",
                             (now, now, image_id, value))
            for value in wanted:
                if value not in existing:
                    self._insert_tag(conn, image_id, value, now)
            return wanted

    @staticmethod
    def _insert_tag(conn: sqlite3.Connection, image_id: str, value: Any, now: str) -> None:
        if not isinstance(value, str) or not value:
            raise UsageError(f"invalid tag {value!r}")
        conn.execute("INSERT INTO image_tags (image_id, value, created_at, updated_at) "
                     "VALUES (?, ?, ?, ?)", (image_id, value, now, now))

    def image_tag_create(self, context: RequestContext, image_id: str, value: str) -> str:
        """Add one tag (no-op if present); return it."""
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            if not conn.execute("SELECT 1 FROM image_tags WHERE image_id = ? AND value = ? "
                                "AND deleted = 0", (image_id, value)).fetchone():
                self._insert_tag(conn, image_id, value, _now())
            return value

    def image_tag_delete(self, context: RequestContext, image_id: str, value: str) -> None:
        """Remove one tag; ImageNotFoundError if the image lacks it."""
        with self._transaction() as conn:
            self._mutable_row(conn, context, image_id)
            now = _now()
            _soft_delete_one(conn, "image_tags", "value", image_id, value, now, "tag")

    # -- data -------------------------------------------------------------

    def write_data(self, context: RequestContext, image_id: str, chunks: Iterable[bytes],
                   expected_size: int | None = None) -> dict[str, Any]:
        """Store the image's bytes; return the now ``active`` image dict.

        The image goes ``queued`` -> ``saving`` -> ``active``. Bytes go to a
        temporary file, hashed (md5, sha512) while streaming, are fsynced
        and renamed into place before the row becomes ``active``. If
        writing fails (or ``expected_size`` does not match) the temporary
        file is removed, the image goes back to ``queued`` and the error is
        raised; a killed writer leaves ``saving``.
        """
        # The new file is renamed over whatever is there (a link too).
        final = self._data_file(image_id, resolve=False)
        self.image_update(context, image_id, {"status": "saving"}, from_state="queued")
        try:
            size, md5, sha512 = self._write_file(image_id, chunks, final, expected_size)
        except BaseException:
            self._reset_to_queued(context, image_id)
            raise
        try:
            with self._transaction() as conn:
                row = self._mutable_row(conn, context, image_id)
                if row["status"] != "saving":
                    raise ConflictError(f"image became {row['status']} during the upload",
                                        image=image_id, status_code=409)
                now = _now()
                conn.execute("UPDATE images SET status = 'active', size = ?, checksum = ?, "
                             "os_hash_algo = 'sha512', os_hash_value = ?, updated_at = ? "
                             "WHERE id = ?", (size, md5, sha512, now, image_id))
                conn.execute("INSERT INTO image_locations (image_id, value, meta_data, status, "
                             "created_at, updated_at) VALUES (?, ?, '{}', 'active', ?, ?)",
                             (image_id, final.resolve().as_uri(), now, now))
                image = self._format_image(conn, image_id)
        except GlanceSyncError:
            final.unlink(missing_ok=True)
            raise
        LOG.debug("stored %d bytes for image %s", size, image_id)
        return image

    def _write_file(self, image_id: str, chunks: Iterable[bytes], final: Path,
                    expected_size: int | None) -> tuple[int, str, str]:
        """Write, hash, fsync and rename; return (size, md5 hex, sha512 hex)."""
        stream = HashingStream(chunks, "sha512", md5=True)
        try:
            with atomic_file(final, prefix=f".{final.name}.", suffix=".part") as out:
                for chunk in stream:
                    out.write(chunk)
                if expected_size is not None and stream.size != expected_size:
                    raise TransferError(f"received {stream.size} bytes, expected "
                                        f"{expected_size}", image=image_id)
        except OSError as exc:
            raise TransferError(f"cannot write image data: {exc}", image=image_id) from exc
        assert stream.md5 is not None and stream.os_hash is not None
        return stream.size, stream.md5, stream.os_hash

    def _reset_to_queued(self, context: RequestContext, image_id: str) -> None:
        """After a failed write: ``saving`` back to ``queued`` if the image is still there."""
        try:
            self.image_update(context, image_id, {"status": "queued"}, from_state="saving")
        except GlanceSyncError as exc:
            LOG.warning("image %s: could not reset status after a failed upload: %s",
                        image_id, exc)

    def read_data(self, context: RequestContext, image_id: str) -> Iterator[bytes]:
        """The ``active`` image's bytes in chunks of :data:`CHUNK_SIZE`.

        Checks happen now (ImageNotFoundError, ConflictError if not active);
        the file is read as the iterator is consumed. Opening never blocks:
        a data file that is a FIFO, a device or a socket (a mirror from
        elsewhere is data, not trust) is a ``TransferError``.
        """
        image = self.image_get(context, image_id)
        if image["status"] != "active":
            raise ConflictError(f"image is {image['status']}, it has no data",
                                image=image_id, status_code=409)
        try:
            handle = open_regular_file(self._data_file(image_id))
        except OSError as exc:
            raise TransferError(f"cannot read image data: {exc}", image=image_id) from exc
        return self._read_chunks(handle, image_id)

    @staticmethod
    def _read_chunks(handle: Any, image_id: str) -> Iterator[bytes]:
        with handle:
            while True:
                try:
                    chunk = handle.read(CHUNK_SIZE)
                except OSError as exc:
                    raise TransferError(f"cannot read image data: {exc}", image=image_id) from exc
                if not chunk:
                    return
                yield chunk
