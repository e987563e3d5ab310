"""The plan's data: statuses, operations and the plan of a region (SPEC sections 5 and 6).

Plain data, no planning: :class:`Status` (the one table of statuses, each
with its :class:`StatusCategory`), :class:`ImageStatus` (one image in one
region), :class:`OperationKind` and :class:`Operation` (one step of a
sync) and :class:`RegionPlan` (a region's statuses and ordered
operations). The planner (:mod:`glancesync.plan`) makes them; status
reports, dry runs, the executor, ``--image`` and the views read them, and
import only this module for it. Also the policy values the planner reads
of a target (:class:`TargetPolicy`).
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Protocol

from glancesync.image import Image, Provenance
from glancesync.report import as_csv_row
from glancesync.selection import SelectionPolicy
from glancesync.strategy import Transfer

#: Suffix given to the old image by a rename.
OLD_SUFFIX = ".old"

#: The longest image name Glance accepts, in characters (its image schema:
#: ``name`` ``maxLength`` 255; the database column is ``VARCHAR(255)``).
MAX_NAME_LENGTH = 255


def name_problem(name: str) -> str | None:
    """Why a region would refuse ``name`` as an image name; None when it is fine."""
    if len(name) > MAX_NAME_LENGTH:
        return (f"the name {name[:40]}... would have {len(name)} characters, more than the"
                f" {MAX_NAME_LENGTH} Glance accepts")
    return None


class StatusCategory(str, enum.Enum):
    """What a status means for a run's outcome (and exit status)."""

    OK = "ok"  #: nothing to do
    PENDING = "pending"  #: a sync will act (exit status 3 for status and dry run)
    NEEDS_OPERATOR = "needs_operator"  #: only an operator can resolve it (exit status 4)
    INFO = "info"  #: reported, no effect on the exit status

    def __str__(self) -> str:
        return self.value


class Status(str, enum.Enum):
    """Per-image status in a region (the table of SPEC section 5).

    The one table of statuses: each member carries its :class:`~glancesync.plan.StatusCategory`
    (``category``), a one-character ``symbol`` for compact views (lower case
    for pending work, upper case for what needs an operator) and a one-line
    ``description``. Add a status here and nowhere else.
    """

    def __new__(cls, value: str, category: StatusCategory, symbol: str,
                description: str) -> "Status":
        member = str.__new__(cls, value)
        member._value_ = value
        member.category = category
        member.symbol = symbol
        member.description = description
        return member

    category: StatusCategory
    symbol: str
    description: str

    OK = ("ok", StatusCategory.OK, ".", "same content and synchronised metadata")
    OK_STALLED_CHECKSUM = ("ok_stalled_checksum", StatusCategory.OK, "s",
                           "different content, regional checksum in dontupdate")
    PENDING_METADATA = ("pending_metadata", StatusCategory.PENDING, "m",
                        "same content, metadata to update")
    PENDING_UPLOAD = ("pending_upload", StatusCategory.PENDING, "u",
                      "missing in the region: to upload")
    PENDING_REPLACE = ("pending_replace", StatusCategory.PENDING, "r",
                       "different content: to upload, then delete the old image")
    PENDING_RENAME = ("pending_rename", StatusCategory.PENDING, "n",
                      "different content: to upload, then rename the old image NAME.old")
    PENDING_AMI = ("pending_ami", StatusCategory.PENDING, "a",
                   "waits for its kernel or ramdisk, pending itself")
    PENDING_CLEANUP = ("pending_cleanup", StatusCategory.PENDING, "c",
                       "a leftover of an interrupted upload of GlanceSync: to delete")
    ERROR_CHECKSUM = ("error_checksum", StatusCategory.NEEDS_OPERATOR, "C",
                      "different content and no directive for its checksum")
    ERROR_AMI = ("error_ami", StatusCategory.NEEDS_OPERATOR, "A",
                 "its kernel or ramdisk is not synchronised")
    ERROR_DUPLICATE = ("error_duplicate", StatusCategory.NEEDS_OPERATOR, "M",
                       "several master images have the name: none is synchronised")
    OK_DEACTIVATED = ("ok_deactivated", StatusCategory.OK, "d",
                      "same content, the regional copy deactivated and kept so"
                      " (deactivated_copies = keep)")
    PENDING_REACTIVATE = ("pending_reactivate", StatusCategory.PENDING, "v",
                          "the regional copy is deactivated: to reactivate"
                          " (deactivated_copies = reactivate)")
    ERROR_DEACTIVATED = ("error_deactivated", StatusCategory.NEEDS_OPERATOR, "D",
                         "the regional copy is deactivated: reactivate or delete it"
                         " (deactivated_copies = report)")
    ERROR_UNVERIFIABLE = ("error_unverifiable", StatusCategory.NEEDS_OPERATOR, "U",
                          "the master image has no checksum: a copy cannot be verified"
                          " (sync_without_checksum = false)")
    ERROR_REFUSED = ("error_refused", StatusCategory.NEEDS_OPERATOR, "R",
                     "the region refused a change (upload, metadata, members, marks) for"
                     " a reason that repeats at every run (the region's message says"
                     " which), or GlanceSync's inspection refused an upload before a"
                     " conversion (it says what it found)")
    ERROR_PROTECTED = ("error_protected", StatusCategory.NEEDS_OPERATOR, "P",
                       "different content and the regional image is protected: GlanceSync"
                       " never unprotects nor removes it, whatever the conflict rule")
    ERROR_NAME = ("error_name", StatusCategory.NEEDS_OPERATOR, "N",
                  "a name GlanceSync would write is longer than the region accepts"
                  " (Glance: 255 characters): nothing changed")
    ERROR_REGIONAL_DUPLICATE = ("error_regional_duplicate", StatusCategory.NEEDS_OPERATOR,
                                "W", "the region shows several images of the synchronised"
                                " name: never ok until an operator removes or renames the"
                                " extra ones")
    INFO_MASTER_DEACTIVATED = ("info_master_deactivated", StatusCategory.INFO, "x",
                               "deactivated in the master region: not synchronised,"
                               " regional copies left as they are")
    INFO_RENAMED = ("info_renamed", StatusCategory.INFO, "h",
                    "a copy GlanceSync made of the master image, under another name in the"
                    " region (renamed by hand): recognised by its provenance, not uploaded"
                    " again")
    INFO_MEMBERS_UNMAPPED = ("info_members_unmapped", StatusCategory.INFO, "?",
                             "shared in the master with projects the region's identity"
                             " service does not have: not shared with them")
    # The image lifecycle (removal_policy, keep_old_copies).
    PENDING_REMOVAL = ("pending_removal", StatusCategory.PENDING, "t",
                       "a copy whose master image is gone or no longer selected, or a"
                       " NAME.old copy beyond keep_old_copies: to hide, deactivate or"
                       " delete (removal_policy)")
    INFO_REMOVAL_GRACE = ("info_removal_grace", StatusCategory.INFO, "g",
                          "a copy whose master image is gone or no longer selected, within"
                          " removal_grace_hours (the reason says how long is left)")
    OK_RETIRED = ("ok_retired", StatusCategory.OK, "~",
                  "a copy hidden or deactivated by removal_policy")
    INFO_REMOVAL_SKIPPED = ("info_removal_skipped", StatusCategory.INFO, "k",
                            "removal_policy would remove it, but it is protected or another"
                            " project's: never touched")
    # Releasing images (validate_command, rollout_waves).
    ERROR_VALIDATION = ("error_validation", StatusCategory.NEEDS_OPERATOR, "F",
                        "validate_command refused the new copy (or did not finish): it is"
                        " kept private, the previous copy stays in service (the reason"
                        " has the command's last lines)")
    INFO_WAVE_WAITING = ("info_wave_waiting", StatusCategory.INFO, "w",
                    "new content waiting for its wave: the regions of the previous wave"
                    " of rollout_waves do not all hold an accepted copy yet, or not for"
                    " wave_soak_hours (the reason says which)")
    INFO_END_OF_LIFE = ("info_end_of_life", StatusCategory.INFO, "e",
                        "the master image is past its provided_until (SCS image metadata);"
                        " with a removal_policy, no longer synchronised")
    INFO_REPLACEMENT_OVERDUE = ("info_replacement_overdue", StatusCategory.INFO, "o",
                                "the master image is overdue for replacement: built longer"
                                " ago than its replace_frequency (SCS image metadata)")
    ERROR_MAX_DELETES = ("error_max_deletes", StatusCategory.NEEDS_OPERATOR, "X",
                         "a removal step of a run that would take more than max_deletes:"
                         " none of them taken (check them, then allow the run once with"
                         " --config max_deletes=N)")
    ERROR_MASTER_SHRANK = ("error_master_shrank", StatusCategory.NEEDS_OPERATOR, "Z",
                           "a removal step of a run whose master listing shrank more than"
                           " max_master_shrink since the last run: none of them taken"
                           " (check the master, then allow the run once with --config"
                           " max_master_shrink=100)")

    def __str__(self) -> str:
        return self.value

    @property
    def is_pending(self) -> bool:
        """True for work a sync will do (category ``pending``)."""
        return self.category is StatusCategory.PENDING

    @property
    def is_error(self) -> bool:
        """True for what only an operator can resolve (category ``needs_operator``)."""
        return self.category is StatusCategory.NEEDS_OPERATOR


class OperationKind(str, enum.Enum):
    """What an :class:`Operation` does; the executor has one handler per kind."""

    UPDATE_METADATA = "update_metadata"  #: set/remove metadata of the regional copy
    UPLOAD = "upload"  #: upload a missing image
    REPLACE = "replace"  #: upload, then delete the old regional image
    RENAME = "rename"  #: upload, then rename the old one ``.old`` and make it private
    OBSOLETE_RENAME = "obsolete_rename"  #: rename a regional copy ``NAME_obsolete``
    OBSOLETE_UPDATE = "obsolete_update"  #: correct an obsolete copy's metadata
    CLEANUP = "cleanup"  #: delete a leftover queued/saving image GlanceSync created
    REACTIVATE = "reactivate"  #: reactivate a deactivated copy, then update it
    HIDE = "hide"  #: removal step: hide a copy (``os_hidden``)
    DEACTIVATE = "deactivate"  #: removal step: deactivate a copy
    DELETE = "delete"  #: removal step: delete a copy

    def __str__(self) -> str:
        return self.value

    @property
    def uploads(self) -> bool:
        """True for the kinds that upload a new regional image."""
        return self in (OperationKind.UPLOAD, OperationKind.REPLACE, OperationKind.RENAME)

    @property
    def removes(self) -> bool:
        """True for the lifecycle's removal steps (what ``max_deletes`` counts)."""
        return self in REMOVAL_STEPS.values()


#: The removal step of each ``removal_policy`` (``keep`` has none).
REMOVAL_STEPS = {"hide": OperationKind.HIDE, "deactivate": OperationKind.DEACTIVATE,
                 "delete": OperationKind.DELETE}


#: Statuses whose regional image will get new content.
CONTENT_PENDING = frozenset({Status.PENDING_UPLOAD, Status.PENDING_REPLACE,
                             Status.PENDING_RENAME})

#: Statuses whose regional image holds the master's content (its id is the
#: one AMI images of the region refer to).
CONTENT_SAME = frozenset({Status.OK, Status.PENDING_METADATA, Status.OK_STALLED_CHECKSUM,
                          Status.OK_DEACTIVATED, Status.PENDING_REACTIVATE,
                          Status.ERROR_DEACTIVATED, Status.INFO_MEMBERS_UNMAPPED,
                          Status.ERROR_REGIONAL_DUPLICATE})

#: ``signature_properties`` policies (see :data:`~glancesync.image.SIGNATURE_PROPERTIES`):
#: set on the copy after its data is verified, at its creation (the region
#: verifies the signature while receiving the data), or never.
SIGNATURES_AFTER_UPLOAD = "after-upload"
SIGNATURES_AT_UPLOAD = "at-upload"
SIGNATURES_DROP = "drop"

#: ``deactivated_copies`` policies.
DEACTIVATED_REPORT = "report"
DEACTIVATED_REACTIVATE = "reactivate"
DEACTIVATED_KEEP = "keep"


class TargetPolicy(SelectionPolicy, Protocol):
    """The part of a target's configuration that planning reads."""

    replace: frozenset[str]
    rename: frozenset[str]
    dontupdate: frozenset[str]
    only_tenant_images: bool
    support_obsolete_images: bool
    obsolete_syncprops: frozenset[str]
    sync_tags: bool
    sync_members: bool
    deactivated_copies: str
    signature_properties: str
    sync_without_checksum: bool
    removal_policy: str
    removal_grace_hours: float
    keep_old_copies: int | None
    keep_image_id: bool
    validate_command: str | None


#: How a master project maps to a region: (how messages name it, the id of
#: the project of the same name and domain in the region, or None).
MemberTarget = tuple[str, str | None]


@dataclasses.dataclass
class ImageStatus:
    """The status of one master image in one region."""

    status: Status
    region: str
    name: str
    master_id: str | None
    regional_id: str | None
    reason: str = ""
    #: How a pending upload gets its data (``stream``, ``glance-download``), else None.
    transfer: str | None = None

    def csv(self) -> str:
        """The ``status,region,image`` record of ``--show-status``, CSV-quoted."""
        return as_csv_row(self.status.value, self.region, self.name)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data


@dataclasses.dataclass
class Operation:
    """One step that brings an image of a region to ``ok``.

    ``kind`` is an :class:`OperationKind` (its value is accepted too). ``master`` is the master
    image (none for ``cleanup``), ``regional`` the existing regional image
    acted upon (none for ``upload``). ``changes`` holds the fields and
    properties to set (for uploads: every field of the new image),
    ``remove`` the properties to delete. ``ami_refs`` maps ``kernel_id`` /
    ``ramdisk_id`` to the master *name* of an image uploaded earlier in the
    same plan, whose new regional UUID the executor fills in.
    ``provenance`` (uploads) is the record the new copy carries; the
    executor stamps its time when it creates the copy. ``add_members`` and
    ``remove_members`` are project ids of the region to share the image
    with, or to stop sharing it with, after the other changes. ``transfer``
    (uploads) says how the data gets there and in which disk format;
    ``reason`` says why (lifecycle steps), for logs and dry runs.
    ``image_id`` (uploads, ``keep_image_id``) is the id the new copy is
    asked to have.
    """

    kind: OperationKind
    name: str
    master: Image | None = None
    regional: Image | None = None
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)
    remove: tuple[str, ...] = ()
    ami_refs: dict[str, str] = dataclasses.field(default_factory=dict)
    size: int = 0
    provenance: Provenance | None = None
    add_members: tuple[str, ...] = ()
    remove_members: tuple[str, ...] = ()
    transfer: Transfer | None = None
    reason: str = ""
    #: The id a new copy is asked to have (``keep_image_id``: the master's), else None.
    image_id: str | None = None

    def __post_init__(self) -> None:
        self.kind = OperationKind(self.kind)

    @property
    def uploads(self) -> bool:
        """True when the operation uploads a new regional image."""
        return self.kind.uploads

    def describe(self) -> str:
        """A short human description, for logs and dry runs."""
        if self.uploads:
            mib = self.size / (1024 * 1024)
            how = f", {self.transfer.describe()}" if self.transfer else ""
            text = f"{self.kind} {self.name} ({mib:.1f} MiB{how})"
            if self.image_id:
                text += f" as id {self.image_id}"
        elif self.kind is OperationKind.CLEANUP:
            text = f"cleanup {self.name} ({self.regional.status if self.regional else '?'})"
        elif self.kind.removes:
            text = f"{self.kind} {self.name} ({self.regional.id if self.regional else '?'})"
        else:
            keys = sorted(self.changes) + [f"-{k}" for k in self.remove]
            keys += [f"+member {p}" for p in self.add_members]
            keys += [f"-member {p}" for p in self.remove_members]
            text = f"{self.kind} {self.name} [{', '.join(keys)}]"
        return text


@dataclasses.dataclass
class RegionPlan:
    """Statuses and ordered operations of one region."""

    region: str
    statuses: list[ImageStatus] = dataclasses.field(default_factory=list)
    operations: list[Operation] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    #: Master image id -> the region's copy that may serve server-side copies
    #: (a relay): only the project's own active copy, recorded as made by
    #: GlanceSync from that master content, with the master's hashes.
    relays: dict[str, str] = dataclasses.field(default_factory=dict)

    def counts(self) -> dict[Status, int]:
        """Number of images per status (every status present, maybe 0)."""
        result = {status: 0 for status in Status}
        for item in self.statuses:
            result[item.status] += 1
        return result

    def status_of(self, name: str) -> ImageStatus | None:
        for item in self.statuses:
            if item.name == name:
                return item
        return None

    def line_of(self, op: Operation) -> ImageStatus | None:
        """The status line ``op`` acts for: the line of its regional image when it
        has its own (lifecycle, leftovers), else the line of its name."""
        if op.regional is not None:
            for item in self.statuses:
                if item.regional_id == op.regional.id and item.name == op.name:
                    return item
        return self.status_of(op.name)

    def removal_status(self, op: Operation) -> ImageStatus | None:
        """The ``pending_removal`` line of the removal step ``op``."""
        for item in self.statuses:
            if (op.regional is not None and item.regional_id == op.regional.id
                    and item.status is Status.PENDING_REMOVAL):
                return item
        return None

    @property
    def removals(self) -> list[Operation]:
        """The lifecycle's removal steps (hide, deactivate, delete) of the plan."""
        return [op for op in self.operations if op.kind.removes]

    @property
    def pending(self) -> list[ImageStatus]:
        """Images that sync would change."""
        return [s for s in self.statuses if s.status.is_pending]

    @property
    def needs_operator(self) -> list[ImageStatus]:
        """Images in an error status: only an operator can resolve them."""
        return [s for s in self.statuses if s.status.is_error]

    @property
    def in_sync(self) -> bool:
        """True when sync would do nothing at all."""
        return not self.operations
