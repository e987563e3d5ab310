"""Human reports on a region's images, and metadata backups.

Pure functions over :class:`~glancesync.image.Image` lists: the facade feeds
them with what the adapters return and prints or writes the result.

Names, ids and values come from the regions: every field of a report line
goes through :func:`glancesync.safenames.printable` (control characters
shown escaped: no ANSI escape reaches the terminal, no newline forges a
line), and every CSV cell through :func:`csv_cell` (no formula for a
spreadsheet).
"""
from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from glancesync import safenames
from glancesync.errors import ConfigError, UsageError
from glancesync.filemodes import PRIVATE_FILE, PRIVATE_FOLDER
from glancesync.image import AMI_PROPERTIES, Image, is_user_property, metadata_diff
from glancesync.integrity import open_regular_file

#: Markers of :func:`region_report`, in the order they are shown.
MARKERS = {
    "+": "not in the master region",
    "$": "not active (uploading, or in error)",
    "-": "in the master region, but not public there",
    "!": "in the master region, but the checksum differs",
    "#": "in the master region, but synchronised attributes differ",
}

#: Fields a restore from a backup sets (besides the user properties).
RESTORED_FIELDS = ("name", "visibility", "min_ram", "min_disk", "protected")


def legend() -> str:
    """The meaning of the markers, one per line."""
    return "\n".join(f"  {mark}  {text}" for mark, text in MARKERS.items())


def visible_images(images: Iterable[Image], project_id: str | None) -> list[Image]:
    """The project's images and the public ones, sorted by name."""
    kept = [i for i in images
            if i.is_public or project_id is None or i.owner == project_id]
    return sorted(kept, key=lambda i: (i.name or "", i.id))


def image_markers(image: Image, master: Mapping[str, Image],
                  metadata_set: frozenset[str]) -> str:
    """The markers of one regional image compared with the master's images."""
    marks = []
    reference = master.get(image.name or "")
    if reference is None:
        marks.append("+")
    if image.status != "active":
        marks.append("$")
    if reference is not None:
        if not reference.is_public:
            marks.append("-")
        if not image.same_content(reference):
            marks.append("!")
        if _synchronised_attributes_differ(image, reference, metadata_set):
            marks.append("#")
    return "".join(marks)


def _synchronised_attributes_differ(image: Image, reference: Image,
                                    metadata_set: frozenset[str]) -> bool:
    if reference.is_public and not image.is_public:
        return True
    keys = metadata_set or frozenset(reference.properties) | frozenset(image.properties)
    # kernel_id / ramdisk_id hold region-specific UUIDs: they always differ.
    keys = keys - frozenset(AMI_PROPERTIES)
    return any(image.properties.get(k) != reference.properties.get(k) for k in keys)


def region_report(region: str, images: Iterable[Image], master: Mapping[str, Image],
                  metadata_set: frozenset[str]) -> list[str]:
    """Lines of the ``print_images`` report: marker, name, id, size, status, checksum.

    The checksum is the one ``rename``, ``replace`` and ``dontupdate`` take:
    the md5 ``checksum``, else ``os_hash_value``; ``-`` for an image without.
    """
    show = safenames.printable
    lines = [f"Region {show(region)}:"]
    for image in images:
        marks = image_markers(image, master, metadata_set)
        checksum = image.checksum or image.os_hash_value or "-"
        lines.append(f"{marks:>3} {show(image.name or '(no name)')}  {show(image.id)}  "
                     f"{_mib(image.size)}  {show(image.status)}  {show(image.visibility)}  "
                     f"{show(checksum)}")
    return lines


def master_report(region: str, images: Iterable[Image]) -> list[str]:
    """Lines of ``print_images_master_region``: what will be synchronised."""
    show = safenames.printable
    lines = [f"Master region {show(region)}: images to synchronise"]
    for image in images:
        props = ", ".join(f"{show(k)}={show(v)}" for k, v in sorted(image.properties.items()))
        lines.append(f"  {show(image.name)}  {show(image.id)}  {_mib(image.size)}  "
                     f"{show(image.visibility)}  {props}")
    return lines


def _mib(size: int | None) -> str:
    return "?" if size is None else f"{size / 1048576:.1f} MiB"


# --- backups -----------------------------------------------------------------

#: The version of a backup line (its ``version``): 2 saves the whole image
#: model the sync keeps (tags, ``os_hidden``, members, GlanceSync's marks);
#: a line without ``version`` is of version 1 (restored as it always was).
BACKUP_VERSION = 2


def own_marks(image: Image) -> dict[str, str]:
    """GlanceSync's own ``glancesync.*`` properties of ``image``: provenance and marks."""
    marks = dict(image.provenance.as_properties()) if image.provenance else {}
    marks.update(image.marks)
    return marks


def backup_record(region: str, image: Image,
                  members: list[dict[str, str | None]] | None = None) -> dict[str, Any]:
    """One backup line's content (JSON object, :data:`BACKUP_RECORD_SCHEMA`).

    ``members``: the projects the image is shared with, each
    ``{"project": name, "domain": domain name, "project_id": id}`` (name
    and domain None when they could not be looked up); None: not read.
    """
    return {
        "version": BACKUP_VERSION,
        "region": region, "name": image.name, "id": image.id,
        "status": image.status, "size": image.size, "checksum": image.checksum,
        "owner": image.owner, "is_public": image.is_public,
        "visibility": image.visibility, "os_hidden": image.os_hidden,
        "min_ram": image.min_ram, "min_disk": image.min_disk,
        "protected": image.protected, "tags": sorted(image.tags),
        "properties": dict(image.properties), "marks": own_marks(image),
        "members": members,
    }


def backup_folder(parent: Path, now: datetime.datetime | None = None) -> Path:
    """``parent/backup_glance_<timestamp>``, created if needed."""
    now = now or datetime.datetime.now()
    folder = Path(parent) / f"backup_glance_{now:%Y%m%d_%H%M%S}"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the backup folder {folder}: {error.strerror}") from error
    return folder


def write_backup(folder: Path, region: str, images: Iterable[Image],
                 members: Mapping[str, list[dict[str, str | None]]] | None = None) -> Path:
    """Write one region's backup file (JSON lines) and return its path.

    ``members``: image id -> its members (:func:`backup_record`), for the
    images whose members were read.
    """
    path = safenames.join(folder, "backup_" + safenames.region_file_name(region, ".jsonl"))
    tmp = path.with_suffix(".tmp")
    # Owner only: private image metadata (glancesync.filemodes).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # a leftover .tmp of another mode
    with open(fd, "w", encoding="utf-8") as out:
        for image in images:
            record = backup_record(region, image, (members or {}).get(image.id))
            out.write(json.dumps(record, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


#: The longest line of a backup file read, in bytes (a record is a few KiB).
MAX_BACKUP_LINE = 1024 * 1024

#: The shape of one backup line (JSON Schema): what :func:`backup_record`
#: writes, with the limits Glance itself applies. Checked for every line
#: before a restore (or its dry run) changes anything.
BACKUP_RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "id", "properties"],
    "properties": {
        "version": {"enum": [1, BACKUP_VERSION]},
        "region": {"type": "string", "minLength": 1, "maxLength": 1024},
        "name": {"type": ["string", "null"], "maxLength": 255},
        "id": {"type": "string", "minLength": 1, "maxLength": 255},
        "status": {"type": ["string", "null"], "maxLength": 64},
        "size": {"type": ["integer", "null"], "minimum": 0},
        "checksum": {"type": ["string", "null"], "maxLength": 1024},
        "owner": {"type": ["string", "null"], "maxLength": 255},
        "is_public": {"type": ["boolean", "null"]},
        "visibility": {"enum": ["public", "community", "shared", "private", None]},
        "min_ram": {"type": ["integer", "null"], "minimum": 0, "maximum": 2 ** 31 - 1},
        "min_disk": {"type": ["integer", "null"], "minimum": 0, "maximum": 2 ** 31 - 1},
        "protected": {"type": ["boolean", "null"]},
        "os_hidden": {"type": ["boolean", "null"]},
        "tags": {"type": ["array", "null"], "maxItems": 128,
                 "items": {"type": "string", "minLength": 1, "maxLength": 255}},
        "properties": {
            "type": "object",
            "propertyNames": {"minLength": 1, "maxLength": 255},
            "additionalProperties": {"type": "string", "maxLength": 65535},
        },
        "marks": {
            "type": ["object", "null"],
            "propertyNames": {"pattern": "^glancesync\\.", "maxLength": 255},
            "additionalProperties": {"type": "string", "maxLength": 1024},
        },
        "members": {
            "type": ["array", "null"], "maxItems": 1024,
            "items": {
                "type": "object",
                "properties": {
                    "project": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                    "domain": {"type": ["string", "null"], "minLength": 1, "maxLength": 255},
                    "project_id": {"type": ["string", "null"], "minLength": 1,
                                   "maxLength": 255},
                },
                "anyOf": [{"required": ["project", "domain"],
                           "properties": {"project": {"type": "string"},
                                          "domain": {"type": "string"}}},
                          {"required": ["project_id"],
                           "properties": {"project_id": {"type": "string"}}}],
            },
        },
    },
}


def read_backup(path: Path) -> list[dict[str, Any]]:
    """The records of a backup file, every line checked before any is returned.

    Each line must be a JSON object of :data:`BACKUP_RECORD_SCHEMA`'s shape
    whose properties are user properties (a backup never holds others:
    ``glancesync.*``, ``os_glance_*``, core fields are refused). The file
    must be a regular file (a FIFO or ``/dev/zero`` would hang), in UTF-8,
    with lines of at most :data:`MAX_BACKUP_LINE` bytes.

    :raises UsageError: the file cannot be opened, or is not a regular file.
    :raises ConfigError: a line is malformed (the message names it).
    """
    validator = _backup_validator()
    try:
        handle = open_regular_file(path)
    except OSError as error:
        raise UsageError(f"cannot read the backup file {path}: "
                         f"{error.strerror or error}") from error
    records = []
    with handle:
        number = 0
        while True:
            number += 1
            try:
                raw = handle.readline(MAX_BACKUP_LINE + 1)
            except OSError as error:
                raise UsageError(f"cannot read the backup file {path}: "
                                 f"{error.strerror or error}") from error
            if not raw:
                return records
            if len(raw) > MAX_BACKUP_LINE:
                raise ConfigError(f"line {number} is longer than {MAX_BACKUP_LINE} bytes",
                                  path=str(path))
            if not raw.strip():
                continue
            record = _parse_backup_line(raw, number, path)
            error = next(iter(sorted(validator.iter_errors(record), key=_error_order)), None)
            if error is not None:
                where = ".".join(str(part) for part in error.absolute_path) or "the record"
                raise ConfigError(f"line {number}: {safenames.printable(where)[:100]}:"
                                  f" {safenames.printable(error.message)[:200]}",
                                  path=str(path))
            refused = [key for key in record["properties"] if not is_user_property(key)]
            if refused:
                raise ConfigError(f"line {number}: property {safenames.printable(refused[0])!r}"
                                  " is not a user property: a backup never holds it",
                                  path=str(path))
            records.append(record)


def _parse_backup_line(raw: bytes, number: int, path: Path) -> Any:
    """One line's JSON value (any: the schema checks it is an object)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"line {number} is not UTF-8 text ({error.reason})",
                          path=str(path)) from None
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise ConfigError(f"line {number} is not valid JSON ({error.msg})",
                          path=str(path)) from None
    except (ValueError, RecursionError) as error:  # huge numbers, deep nesting
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise ConfigError(f"line {number} is not valid JSON ({reason[:200]})",
                          path=str(path)) from None


def _error_order(error: Any) -> tuple[int, str]:
    """The error reported first: the shallowest, then the first by path."""
    return len(error.absolute_path), str(list(error.absolute_path))


def _backup_validator() -> Any:
    import jsonschema  # only backups need it
    return jsonschema.Draft202012Validator(BACKUP_RECORD_SCHEMA)


def restore_changes(current: Image, record: Mapping[str, Any], *,
                    same_region: bool = True) -> tuple[dict[str, Any], list[str]]:
    """Changes that bring ``current`` back to a backup ``record``.

    The saved :data:`RESTORED_FIELDS` (and, from version 2, ``os_hidden``
    and ``tags``) and user properties are set; user properties that were
    not saved are removed. GlanceSync's own ``glancesync.*`` marks of a
    version 2 line are set, and those it did not hold are removed (a line
    without ``marks`` leaves them alone). ``same_region`` false (a backup
    of another region, forced): the region-specific ids
    (:data:`~glancesync.image.AMI_PROPERTIES`, which name images of the
    region that was saved) and marks (which record that region's copies)
    are neither set nor removed.
    """
    kept = () if same_region else AMI_PROPERTIES
    saved = {k: str(v) for k, v in (record.get("properties") or {}).items() if k not in kept}
    properties: dict[str, str | None] = {k: None for k in sorted(current.properties)
                                         if k not in saved and k not in kept}
    properties.update(saved)
    fields = {k: record.get(k) for k in (*RESTORED_FIELDS, "os_hidden", "tags")}
    changes, remove = metadata_diff(current, fields, properties)
    if record.get("marks") is not None and same_region:
        wanted = {str(k): str(v) for k, v in record["marks"].items()}
        present = own_marks(current)
        changes.update((k, v) for k, v in wanted.items() if present.get(k) != v)
        remove.extend(k for k in sorted(present) if k not in wanted)
    return changes, remove


#: First characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(field: object) -> str:
    """A CSV cell for ``field``: printable, and never a spreadsheet formula.

    Control characters are shown escaped (:func:`~glancesync.safenames.printable`);
    a cell beginning with ``=``, ``+``, ``-``, ``@``, a tab or a CR (after
    any blanks) gets a leading ``'``, which spreadsheets take as "text" (OWASP's CSV injection
    advice): ``=HYPERLINK(...)`` is shown, never run.
    """
    text = "" if field is None else str(field)
    cell = safenames.printable(text)
    # Spreadsheets skip leading blanks before they look for a formula.
    formula = text.startswith(FORMULA_STARTS) or text.lstrip().startswith(FORMULA_STARTS)
    return "'" + cell if formula else cell


#: The record end the quoting is decided against: a field holding a
#: carriage return or a newline is quoted, whatever the Python version.
_RECORD_END = "\r\n"


def as_csv_row(*fields: object) -> str:
    """One CSV record, without its line terminator; cells by :func:`csv_cell`.

    The standard quoting (RFC 4180; the csv module's ``QUOTE_MINIMAL``): a
    cell holding a comma, a double quote, a carriage return or a newline is
    quoted, so a CSV reader always reads the record as one row.
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=_RECORD_END).writerow(csv_cell(field)
                                                            for field in fields)
    return buffer.getvalue()[:-len(_RECORD_END)]


def statuses_as_json(statuses: Iterable[Any]) -> str:
    """JSON array of status dataclasses (``--show-status --output json``)."""
    return json.dumps([dataclasses.asdict(s) if dataclasses.is_dataclass(s) else s
                       for s in statuses], indent=2, default=str)
