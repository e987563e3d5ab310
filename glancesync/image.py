"""The image model shared by every region backend.

An :class:`Image` is what an adapter returns, whatever the backend: Glance v2
or a local folder region. Core fields are attributes; the user properties are
in :attr:`Image.properties`. Fields computed by Glance or added by tools are
never user properties (see :data:`NON_USER_PROPERTIES`).
"""
from __future__ import annotations

import dataclasses
import datetime
import fnmatch
from typing import Any, Mapping

#: Attributes Glance v2 reports at the top level of an image that are not
#: user properties.
CORE_FIELDS = frozenset({
    "id", "name", "owner", "status", "size", "virtual_size", "checksum",
    "os_hash_algo", "os_hash_value", "visibility", "disk_format",
    "container_format", "min_ram", "min_disk", "protected", "created_at",
    "updated_at", "tags", "os_hidden",
})

#: Patterns of keys that Glance computes or tools add: never compared,
#: never copied.
NON_USER_PROPERTIES = (
    "stores", "locations", "direct_url", "file", "schema", "self",
    "os_glance_*", "owner_specified.openstack.*", "deleted", "deleted_at",
    "is_public", "members", "glancesync.*",
)

VISIBILITIES = ("public", "community", "shared", "private")

#: Core fields an update may change (besides user properties). ``tags`` is
#: set as a whole: the image's tags become exactly the list given.
UPDATABLE_FIELDS = ("name", "visibility", "min_ram", "min_disk", "protected",
                    "disk_format", "container_format", "os_hidden", "tags")

#: Fields that describe an image but are never changed by an update.
READ_ONLY_FIELDS = frozenset({"id", "status", "size", "virtual_size", "checksum",
                              "os_hash_algo", "os_hash_value", "created_at",
                              "updated_at", "owner", "region", "properties", "members"})

#: Properties of a signed image (Glance's image signature verification): a
#: region verifies them against its own key manager when data is uploaded.
SIGNATURE_PROPERTIES = ("img_signature", "img_signature_hash_method",
                        "img_signature_key_type", "img_signature_certificate_uuid")

#: Properties holding the ids of other images of the same region (AMI
#: images): a sync translates them, they never compare equal across regions.
AMI_PROPERTIES = ("kernel_id", "ramdisk_id")

#: Properties every upload carries, even outside ``metadata_set``.
UPLOAD_PROPERTIES = ("architecture", "os_distro", "os_version", "os_type")

#: Prefix of the properties recording where a copy made by GlanceSync came
#: from (:class:`Provenance`). They are never user properties: never
#: compared, never copied from the master.
PROVENANCE_PREFIX = "glancesync."
PROVENANCE_REGION = "glancesync.master_region"
PROVENANCE_IMAGE_ID = "glancesync.master_image_id"
PROVENANCE_HASH = "glancesync.master_hash"
PROVENANCE_TIME = "glancesync.copied_at"
#: The region's hash of a converted copy, recorded once the copy is verified
#: against the file GlanceSync made (``convert_to``).
PROVENANCE_COPY_HASH = "glancesync.copy_hash"
#: The provenance keys (the record of :class:`Provenance`).
PROVENANCE_KEYS = (PROVENANCE_IMAGE_ID, PROVENANCE_REGION, PROVENANCE_HASH, PROVENANCE_TIME,
                   PROVENANCE_COPY_HASH)

#: Lifecycle marks (:attr:`Image.marks`), set by a sync on regional images,
#: in the same namespace: when a sync first found the master image of a copy
#: gone or no longer selected (the grace period of ``removal_policy`` counts
#: from it), when a rename made an image ``NAME.old`` (``keep_old_copies``
#: counts only such images), and what ``removal_policy`` did to the copy
#: (``hide`` or ``deactivate``).
MARK_ORPHANED = "glancesync.orphaned_at"
MARK_RENAMED = "glancesync.renamed_at"
MARK_RETIRED = "glancesync.retired"


def is_user_property(key: str) -> bool:
    """True when ``key`` is a user property (not core, not Glance-managed)."""
    if key in CORE_FIELDS:
        return False
    return not any(fnmatch.fnmatchcase(key, pattern) for pattern in NON_USER_PROPERTIES)


def utc_stamp(when: datetime.datetime | None = None) -> str:
    """``when`` (default: now) as the ISO 8601 UTC text of the records: ``2026-11-30T12:00:05Z``.

    A naive ``when`` is taken as UTC.
    """
    when = when or datetime.datetime.now(datetime.timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_hash(image: "Image") -> str | None:
    """``"<algorithm>:<hex>"`` naming the image's bytes, or None without a hash.

    The multihash (``os_hash_algo``/``os_hash_value``) when the image has
    one, else the md5 ``checksum``: ``"sha512:9b71..."``, ``"md5:d41d..."``.
    """
    if image.os_hash_algo and image.os_hash_value:
        return f"{image.os_hash_algo.lower()}:{image.os_hash_value.lower()}"
    if image.checksum:
        return f"md5:{image.checksum.lower()}"
    return None


@dataclasses.dataclass(frozen=True)
class Provenance:
    """Where a regional copy made by GlanceSync came from.

    Stored on the copy as the ``glancesync.*`` properties
    (:data:`PROVENANCE_PREFIX`) from its creation on: ``master_region`` the
    master region's name, ``master_image_id`` the master image's id,
    ``master_hash`` the master content as :func:`content_hash` writes it,
    ``copied_at`` the creation time (ISO 8601 UTC, ``...Z``);
    ``copy_hash`` (a converted copy) the region's hash of the copy, as
    :func:`content_hash` writes it, once verified against the converted file.
    GlanceSync recognises its own copies by it, together with their owner:
    anyone who can set properties can write such a record.
    """

    master_image_id: str
    master_region: str | None = None
    master_hash: str | None = None
    copied_at: str | None = None
    copy_hash: str | None = None

    @classmethod
    def of(cls, master: "Image", master_region: str | None) -> "Provenance":
        """The record of a copy of ``master`` (``copied_at`` unset: see :meth:`stamped`)."""
        return cls(master.id, master_region, content_hash(master))

    def stamped(self, when: datetime.datetime | None = None) -> "Provenance":
        """The same record with ``copied_at`` set to ``when`` (default: now, UTC)."""
        return dataclasses.replace(self, copied_at=utc_stamp(when))

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any]) -> "Provenance | None":
        """The record held by an image's properties; None without a master image id."""
        image_id = properties.get(PROVENANCE_IMAGE_ID)
        if not image_id:
            return None

        def text(key: str) -> str | None:
            value = properties.get(key)
            return None if value in (None, "") else str(value)

        return cls(str(image_id), text(PROVENANCE_REGION), text(PROVENANCE_HASH),
                   text(PROVENANCE_TIME), text(PROVENANCE_COPY_HASH))

    def as_properties(self) -> dict[str, str]:
        """The ``glancesync.*`` properties recording it (unset values left out)."""
        pairs = ((PROVENANCE_IMAGE_ID, self.master_image_id),
                 (PROVENANCE_REGION, self.master_region),
                 (PROVENANCE_HASH, self.master_hash), (PROVENANCE_TIME, self.copied_at),
                 (PROVENANCE_COPY_HASH, self.copy_hash))
        return {key: value for key, value in pairs if value}

    def is_copy_of(self, master: "Image") -> bool:
        """True when it records ``master``'s id and ``master``'s current content."""
        return (self.master_image_id == master.id
                and self.master_hash is not None
                and self.master_hash == content_hash(master))


@dataclasses.dataclass
class Image:
    """One image of one region.

    ``provenance`` is the record of a copy made by GlanceSync (None for
    every other image); it is not among ``properties``. ``os_hidden``: the
    image is left out of Glance's default listings. ``members`` holds the
    ids of the projects the image is shared with, when they were read
    (None otherwise: listings do not read them). ``marks`` holds the
    lifecycle marks a sync set on the image (``MARK_*`` keys, string
    values); like the provenance, they are not among ``properties``.
    """

    id: str
    name: str | None
    status: str
    owner: str | None = None
    visibility: str = "shared"
    os_hidden: bool = False
    size: int | None = None
    virtual_size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    min_ram: int = 0
    min_disk: int = 0
    protected: bool = False
    created_at: str | None = None
    updated_at: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)
    properties: dict[str, str] = dataclasses.field(default_factory=dict)
    provenance: Provenance | None = None
    members: tuple[str, ...] | None = None
    marks: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def is_public(self) -> bool:
        return self.visibility == "public"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Image":
        """Build an image from a Glance v2 style dict (core + properties flat)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"properties", "tags",
                                                             "provenance", "members",
                                                             "marks"}
        kwargs: dict[str, Any] = {k: data[k] for k in known if k in data and data[k] is not None}
        kwargs.setdefault("id", data.get("id"))
        kwargs.setdefault("name", data.get("name"))
        kwargs.setdefault("status", data.get("status", "queued"))
        kwargs["tags"] = list(data.get("tags") or [])
        if "os_hidden" in kwargs:
            kwargs["os_hidden"] = bool(kwargs["os_hidden"])
        if data.get("members") is not None:
            kwargs["members"] = tuple(data["members"])
        props = dict(data.get("properties") or {})
        for key, value in data.items():
            if is_user_property(key) and key != "properties":
                props[key] = value
        kwargs["properties"] = {k: "" if v is None else str(v)
                                for k, v in props.items() if is_user_property(k)}
        recorded = {k: v for k, v in props.items() if k.startswith(PROVENANCE_PREFIX)}
        recorded.update((k, v) for k, v in data.items() if k.startswith(PROVENANCE_PREFIX))
        kwargs["provenance"] = Provenance.from_properties(recorded)
        kwargs["marks"] = {k: str(v) for k, v in recorded.items()
                           if k not in PROVENANCE_KEYS and v not in (None, "")}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The image as a flat Glance v2 style dict: core fields and properties."""
        data = dataclasses.asdict(self)
        props = data.pop("properties")
        data.pop("provenance")
        data.update(data.pop("marks"))
        members = data.pop("members")
        if members is not None:
            data["members"] = list(members)
        data.update(props)
        if self.provenance is not None:
            data.update(self.provenance.as_properties())
        data["is_public"] = self.is_public
        return data

    def same_content(self, other: "Image") -> bool:
        """True when both images hold the same bytes, judged by their hashes.

        ``os_hash_value`` is used when both sides use the same algorithm,
        else the md5 ``checksum``. Images without any hash never match.
        """
        if (self.os_hash_algo and self.os_hash_value and other.os_hash_value
                and self.os_hash_algo == other.os_hash_algo):
            return self.os_hash_value == other.os_hash_value
        if self.checksum and other.checksum:
            return self.checksum == other.checksum
        return False


def metadata_diff(current: Image, fields: Mapping[str, Any],
                  properties: Mapping[str, str | None]) -> tuple[dict[str, Any], list[str]]:
    """The changes that give ``current`` these core fields and user properties.

    ``fields`` maps core fields (:data:`UPDATABLE_FIELDS`) to the wanted
    values, None meaning "leave as it is"; ``properties`` maps user
    properties to the wanted string values, None meaning "absent". Returns
    ``(changes, remove)`` as :meth:`RegionAdapter.update_image` takes them:
    the properties and fields to set (properties first, each group in the
    order given) and the properties to remove (in the order given).
    """
    changes: dict[str, Any] = {}
    remove: list[str] = []
    for key, value in properties.items():
        if value is None:
            if key in current.properties:
                remove.append(key)
        elif current.properties.get(key) != value:
            changes[key] = value
    for field, value in fields.items():
        if value is None:
            continue
        if field == "tags":
            if set(current.tags) != set(value):
                changes[field] = sorted(set(value))
        elif getattr(current, field) != value:
            changes[field] = value
    return changes, remove
