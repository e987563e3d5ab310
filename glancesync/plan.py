"""What a region needs, as plain data (SPEC sections 5 and 6).

:func:`make_plan` is pure: master selection and regional images in, a
:class:`RegionPlan` out. Status reports, dry runs and syncs all use it, so
they can never disagree; only :mod:`glancesync.executor` acts on a plan.

Decisions the SPEC leaves open, taken here:

* Updates compare ``visibility`` (always), ``min_ram`` and ``min_disk`` (they
  decide where an image can boot) and the user properties of SPEC section 5.
  ``protected``, ``disk_format`` and ``container_format`` are set on upload
  only: protection is a regional operating choice, formats follow the data.
* ``kernel_id`` and ``ramdisk_id`` of a master image are always synchronised
  (translated), whatever ``metadata_set`` says: an AMI without them is
  broken. Uploads also always carry :data:`~glancesync.image.UPLOAD_PROPERTIES`.
* Conflicts: explicit checksums first (``dontupdate``, then ``rename``, then
  ``replace``), then ``any`` in the same order. A directive matches the
  regional md5 ``checksum`` or its ``os_hash_value``.
* Obsolete master images (``X_obsolete``) are handled whatever rules 2-6 of
  SPEC section 4 say: the regional ``X`` they act on is recognised by its
  content and owner, and a master image made obsolete is often also made
  private.
* Regional images of other projects (``only_tenant_images`` false) count as
  the regional copy; they are never updated, renamed or cleaned, and only
  an explicit checksum in ``replace`` lets sync replace them.
"""
from __future__ import annotations

import dataclasses
import datetime
import enum
import logging
from typing import Any, Iterable, Protocol

from glancesync.image import (AMI_PROPERTIES, UPLOAD_PROPERTIES, Image, Provenance,
                              is_user_property, metadata_diff)
from glancesync.selection import (OBSOLETE_SUFFIX, MasterSelection,
                                  SelectionPolicy, is_obsolete_name)

LOG = logging.getLogger(__name__)

#: Suffix given to the old image by a rename.
OLD_SUFFIX = ".old"

ANY = "any"


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

    The one table of statuses: each member carries its :class:`StatusCategory`
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
    ERROR_CHECKSUM = ("error_checksum", StatusCategory.NEEDS_OPERATOR, "C",
                      "different content and no directive for its checksum")
    ERROR_AMI = ("error_ami", StatusCategory.NEEDS_OPERATOR, "A",
                 "its kernel or ramdisk is not synchronised")

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
    CLEANUP = "cleanup"  #: delete a leftover queued/saving image of ours

    def __str__(self) -> str:
        return self.value

    @property
    def uploads(self) -> bool:
        """True for the kinds that upload a new regional image."""
        return self in (OperationKind.UPLOAD, OperationKind.REPLACE, OperationKind.RENAME)


#: Statuses whose regional image will get new content.
CONTENT_PENDING = frozenset({Status.PENDING_UPLOAD, Status.PENDING_REPLACE,
                             Status.PENDING_RENAME})


class TargetPolicy(SelectionPolicy, Protocol):
    """The part of a target's configuration that planning reads."""

    replace: frozenset[str]
    rename: frozenset[str]
    dontupdate: frozenset[str]
    only_tenant_images: bool
    support_obsolete_images: bool
    obsolete_syncprops: frozenset[str]


@dataclasses.dataclass
class ImageStatus:
    """The status of one master image in one region."""

    status: Status
    region: str
    name: str
    master_id: str | None
    regional_id: str | None
    reason: str = ""

    def csv(self) -> str:
        """The ``status,region,image`` line of ``--show-status``."""
        return f"{self.status.value},{self.region},{self.name}"

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
    executor stamps its time when it creates the copy.
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
            text = f"{self.kind} {self.name} ({mib:.1f} MiB)"
        elif self.kind is OperationKind.CLEANUP:
            text = f"cleanup {self.name} ({self.regional.status if self.regional else '?'})"
        else:
            keys = sorted(self.changes) + [f"-{k}" for k in self.remove]
            text = f"{self.kind} {self.name} [{', '.join(keys)}]"
        return text


@dataclasses.dataclass
class RegionPlan:
    """Statuses and ordered operations of one region."""

    region: str
    statuses: list[ImageStatus] = dataclasses.field(default_factory=list)
    operations: list[Operation] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

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


def make_plan(region: str, master: MasterSelection, regional_images: Iterable[Image],
              regional_project_id: str | None, target: TargetPolicy, *,
              now: datetime.datetime | None = None,
              stalled_upload_age: float = 3600) -> RegionPlan:
    """Compute statuses and operations of ``region`` for ``target``."""
    return _Planner(region, master, list(regional_images), regional_project_id, target,
                    now or datetime.datetime.now(datetime.timezone.utc),
                    stalled_upload_age).run()


def _parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def _hashes(image: Image) -> set[str]:
    return {h for h in (image.checksum, image.os_hash_value) if h}


class _Planner:
    """One run of :func:`make_plan` (keeps the intermediate maps together)."""

    def __init__(self, region: str, master: MasterSelection, regional: list[Image],
                 project_id: str | None, target: TargetPolicy, now: datetime.datetime,
                 stalled_upload_age: float) -> None:
        self.region = region
        self.master = master
        self.regional = regional
        self.project_id = project_id
        self.target = target
        self.now = now
        self.stalled_upload_age = stalled_upload_age
        self.plan = RegionPlan(region)
        self.synced = master.synchronised(target)
        self.synced_by_id = {image.id: image for image in self.synced.values()}
        # name -> chosen active regional image (after duplicate resolution)
        self.match: dict[str, Image] = {}
        self.statuses: dict[str, ImageStatus] = {}
        self.ops: dict[str, Operation] = {}

    # -- helpers ---------------------------------------------------------
    def warn(self, message: str, level: int = logging.WARNING) -> None:
        self.plan.warnings.append(message)
        LOG.log(level, "%s: %s", self.region, message)

    def needs_operator(self, message: str) -> None:
        """An error status: logged as an error, so that cron runs show it."""
        self.warn(message, logging.ERROR)

    def own(self, image: Image) -> bool:
        return image.owner == self.project_id

    def visible(self, image: Image) -> bool:
        """Regional images that take part in matching."""
        return self.own(image) or not self.target.only_tenant_images

    def set_status(self, status: Status, name: str, master: Image | None,
                   regional: Image | None, reason: str) -> None:
        self.statuses[name] = ImageStatus(status, self.region, name,
                                          master.id if master else None,
                                          regional.id if regional else None, reason)

    # -- steps -----------------------------------------------------------
    def run(self) -> RegionPlan:
        self.plan.warnings.extend(self.master.warnings)
        self.report_own_duplicates()
        self.match_regional()
        for name in sorted(self.synced):
            self.classify(name, self.synced[name])
        self.resolve_ami()
        metadata_ops = [self.ops[n] for n in sorted(self.ops)
                        if self.ops[n].kind is OperationKind.UPDATE_METADATA
                        and not self.ops[n].ami_refs]
        first = {id(op) for op in metadata_ops}
        obsolete_ops = self.plan_obsolete() if self.target.support_obsolete_images else []
        upload_ops = self.order_uploads([op for op in self.ops.values()
                                         if id(op) not in first])
        self.plan.statuses = [self.statuses[n] for n in sorted(self.statuses)]
        self.plan.operations = metadata_ops + obsolete_ops + upload_ops + self.plan_cleanup()
        return self.plan

    def report_own_duplicates(self) -> None:
        """Report two active copies GlanceSync made of one master image.

        Recognised by their provenance (same master region and image id):
        two runs that did not see each other's locks (different lock
        folders, see ``lock_dir``) both uploaded it. Logged as an error, so
        that cron runs show it; an operator deletes the extra copy.
        """
        copies: dict[tuple[str | None, str], list[Image]] = {}
        for image in self.regional:
            record = image.provenance
            if record is not None and image.status == "active" and self.own(image):
                copies.setdefault((record.master_region, record.master_image_id),
                                  []).append(image)
        for (region, master_id), images in sorted(copies.items(), key=lambda i: i[0][1]):
            if len(images) > 1:
                images.sort(key=lambda i: (i.created_at or "", i.id))
                self.needs_operator(
                    f"{len(images)} copies of master image {master_id} (from {region})"
                    f" made by GlanceSync: {', '.join(f'{i.id} {i.name!r}' for i in images)};"
                    " runs that did not share a lock folder uploaded it twice"
                    " (see lock_dir): delete the extra copies")

    def match_regional(self) -> None:
        """Pick, per synchronised name, the regional image to compare with."""
        found: dict[str, list[Image]] = {}
        for image in self.regional:
            if image.status == "active" and image.name in self.synced and self.visible(image):
                found.setdefault(image.name, []).append(image)
        for name, images in found.items():
            master = self.synced[name]
            images.sort(key=lambda i: (not master.same_content(i), not self.own(i),
                                       i.created_at or "", i.id))
            self.match[name] = images[0]
            if len(images) > 1:
                self.warn(f"{len(images)} images named {name!r} "
                          f"({', '.join(i.id for i in images)}); using {images[0].id}")

    def classify(self, name: str, master: Image) -> None:
        regional = self.match.get(name)
        if regional is None:
            self.set_status(Status.PENDING_UPLOAD, name, master, None, "missing in the region")
            self.ops[name] = Operation(OperationKind.UPLOAD, name, master=master,
                                       size=master.size or 0,
                                       changes=self.upload_fields(master),
                                       provenance=self.provenance(master))
            return
        if master.same_content(regional):
            if not self.own(regional):
                self.set_status(Status.OK, name, master, regional,
                                f"same content; owned by project {regional.owner}, "
                                "metadata not managed")
                return
            changes, remove = self.metadata_diff(master, regional)
            if changes or remove:
                keys = sorted(changes) + sorted(remove)
                self.set_status(Status.PENDING_METADATA, name, master, regional,
                                f"metadata differs: {', '.join(keys)}")
                self.ops[name] = Operation(OperationKind.UPDATE_METADATA, name, master=master,
                                           regional=regional, changes=changes,
                                           remove=tuple(remove))
            else:
                self.set_status(Status.OK, name, master, regional, "")
            return
        self.conflict(name, master, regional)

    def conflict(self, name: str, master: Image, regional: Image) -> None:
        """Different content: apply the directives and their precedence."""
        hashes = _hashes(regional)
        t = self.target
        own = self.own(regional)
        ordered: list[tuple[frozenset[str], bool, Status]] = [
            (t.dontupdate, True, Status.OK_STALLED_CHECKSUM),
            (t.rename, True, Status.PENDING_RENAME),
            (t.replace, True, Status.PENDING_REPLACE),
            (t.dontupdate, False, Status.OK_STALLED_CHECKSUM),
            (t.rename, False, Status.PENDING_RENAME),
            (t.replace, False, Status.PENDING_REPLACE),
        ]
        decision = None
        for directive, explicit, status in ordered:
            if (hashes & directive) if explicit else (ANY in directive):
                if not own and status is Status.PENDING_RENAME:
                    continue
                if not own and status is Status.PENDING_REPLACE and not explicit:
                    continue
                decision = (status, "checksum listed" if explicit else "'any'")
                break
        checksum = regional.checksum or regional.os_hash_value
        if decision is None:
            reason = (f"regional checksum {checksum} differs from master's and has no"
                      " directive (list it in rename, replace or dontupdate)")
            if not own:
                reason += (f" (owned by project {regional.owner}: only an explicit "
                           "checksum in replace allows changing it)")
            self.set_status(Status.ERROR_CHECKSUM, name, master, regional, reason)
            self.needs_operator(f"image {name}: {reason}")
            return
        status, why = decision
        if status is Status.OK_STALLED_CHECKSUM:
            self.set_status(status, name, master, regional,
                            f"regional checksum {checksum} in dontupdate ({why})")
            return
        kind = (OperationKind.RENAME if status is Status.PENDING_RENAME
                else OperationKind.REPLACE)
        self.set_status(status, name, master, regional,
                        f"regional checksum {checksum} in {kind} ({why})")
        self.ops[name] = Operation(kind, name, master=master, regional=regional,
                                   size=master.size or 0, changes=self.upload_fields(master),
                                   provenance=self.provenance(master))

    def provenance(self, master: Image) -> Provenance:
        """The record a new copy of ``master`` carries."""
        return Provenance.of(master, self.master.region)

    # -- metadata --------------------------------------------------------
    def managed_properties(self, master: Image, regional: Image | None) -> set[str]:
        """User properties compared for this pair (SPEC section 5)."""
        if self.target.metadata_set:
            keys = set(self.target.metadata_set)
        else:
            keys = set(master.properties)
            if regional is not None:
                keys |= set(regional.properties)
        return {k for k in keys if is_user_property(k) and k not in AMI_PROPERTIES}

    def metadata_diff(self, master: Image, regional: Image) -> tuple[dict[str, Any], list[str]]:
        properties = {key: master.properties.get(key)
                      for key in sorted(self.managed_properties(master, regional))}
        fields = {"visibility": master.visibility, "min_ram": master.min_ram or 0,
                  "min_disk": master.min_disk or 0}
        return metadata_diff(regional, fields, properties)

    def upload_fields(self, master: Image) -> dict[str, Any]:
        """Everything a new regional copy of ``master`` carries (AMI ids apart)."""
        fields: dict[str, Any] = {
            "visibility": master.visibility,
            "disk_format": master.disk_format,
            "container_format": master.container_format,
            "min_ram": master.min_ram or 0,
            "min_disk": master.min_disk or 0,
            "protected": bool(master.protected),
        }
        keys = self.managed_properties(master, None) | set(UPLOAD_PROPERTIES)
        props = {k: master.properties[k] for k in sorted(keys) if k in master.properties}
        fields["properties"] = props
        return fields

    # -- AMI -------------------------------------------------------------
    def resolve_ami(self) -> None:
        """Translate kernel/ramdisk ids; order AMIs after what they use."""
        for name in sorted(self.synced):
            master = self.synced[name]
            refs = {key: master.properties[key] for key in AMI_PROPERTIES
                    if master.properties.get(key)}
            if not refs:
                continue
            current = self.statuses[name]
            if current.status in (Status.ERROR_CHECKSUM, Status.OK_STALLED_CHECKSUM):
                continue
            if not self.match.get(name) or self.own(self.match[name]) or \
                    current.status in CONTENT_PENDING:
                self.translate(name, master, refs)

    def translate(self, name: str, master: Image, refs: dict[str, str]) -> None:
        current = self.statuses[name]
        op = self.ops.get(name)
        regional = self.match.get(name)
        known: dict[str, str] = {}
        waiting: dict[str, str] = {}
        for key, master_ref in refs.items():
            used = self.synced_by_id.get(master_ref)
            if used is None:
                self.error_ami(name, master, regional,
                               f"{key} {master_ref} is not a synchronised master image")
                return
            used_status = self.statuses[used.name]
            if used_status.status in CONTENT_PENDING or used_status.status is Status.PENDING_AMI:
                waiting[key] = used.name
            elif used_status.status in (Status.OK, Status.PENDING_METADATA,
                                        Status.OK_STALLED_CHECKSUM):
                known[key] = used_status.regional_id
            else:
                self.error_ami(name, master, regional,
                               f"{key} image {used.name} is {used_status.status.value}")
                return
        if op is not None and op.uploads:
            op.changes["properties"].update(known)
            op.ami_refs = waiting
            if waiting:
                self.set_status(Status.PENDING_AMI, name, master, regional,
                                f"{current.status.value} after "
                                f"{', '.join(sorted(set(waiting.values())))}")
            return
        # The regional image exists with the right content: compare the ids.
        assert regional is not None
        wrong = {k: v for k, v in known.items() if regional.properties.get(k) != v}
        if not wrong and not waiting:
            return
        if op is None:
            op = Operation(OperationKind.UPDATE_METADATA, name, master=master, regional=regional)
            self.ops[name] = op
        op.changes.update(wrong)
        op.ami_refs = waiting
        if waiting:
            self.set_status(Status.PENDING_AMI, name, master, regional,
                            f"update after {', '.join(sorted(set(waiting.values())))}")
        else:
            keys = sorted(op.changes) + sorted(op.remove)
            self.set_status(Status.PENDING_METADATA, name, master, regional,
                            f"metadata differs: {', '.join(keys)}")

    def error_ami(self, name: str, master: Image, regional: Image | None, reason: str) -> None:
        self.set_status(Status.ERROR_AMI, name, master, regional, reason)
        self.ops.pop(name, None)
        self.needs_operator(f"image {name}: {reason}")

    def order_uploads(self, ops: list[Operation]) -> list[Operation]:
        """Smallest first, but every kernel/ramdisk before the images using it."""
        by_name = {op.name: op for op in ops}
        ordered: list[Operation] = []
        done: set[str] = set()

        def emit(op: Operation, stack: tuple[str, ...]) -> None:
            if op.name in done or op.name in stack:
                return
            for dep in sorted(set(op.ami_refs.values()),
                              key=lambda n: (by_name[n].size if n in by_name else 0, n)):
                if dep in by_name:
                    emit(by_name[dep], stack + (op.name,))
            done.add(op.name)
            ordered.append(op)

        for op in sorted(ops, key=lambda o: (0 if o.kind is OperationKind.UPDATE_METADATA else o.size,
                                             o.name)):
            emit(op, ())
        return ordered

    # -- obsolete images (SPEC section 6) ----------------------------------
    def plan_obsolete(self) -> list[Operation]:
        ops: list[Operation] = []
        for obsolete_name in sorted(self.master.candidates):
            if not is_obsolete_name(obsolete_name):
                continue
            master = self.master.candidates[obsolete_name]
            base = obsolete_name[:-len(OBSOLETE_SUFFIX)]
            if base in self.synced:
                self.warn(f"master holds both {base!r} (synchronised) and {obsolete_name!r}: "
                          f"{obsolete_name!r} is not applied")
                continue
            own_same = [i for i in self.regional
                        if i.status == "active" and self.own(i) and master.same_content(i)]
            renamed = [i for i in own_same if i.name == obsolete_name]
            to_rename = [i for i in own_same if i.name == base]
            for image in renamed:
                changes = self.obsolete_changes(master, image)
                if changes:
                    ops.append(Operation(OperationKind.OBSOLETE_UPDATE, obsolete_name, master=master,
                                         regional=image, changes=changes))
            for image in to_rename:
                changes = self.obsolete_changes(master, image)
                changes["name"] = obsolete_name
                ops.append(Operation(OperationKind.OBSOLETE_RENAME, obsolete_name, master=master,
                                     regional=image, changes=changes))
            regional = (to_rename or renamed or [None])[0]
            if regional is not None:
                pending = bool(to_rename) or any(op.master is master for op in ops)
                self.set_status(Status.PENDING_METADATA if pending else Status.OK,
                                obsolete_name, master, regional,
                                f"obsolete: rename {base} to {obsolete_name}" if to_rename
                                else ("obsolete: correct visibility and properties"
                                      if pending else "obsolete"))
        return ops

    def obsolete_changes(self, master: Image, regional: Image) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if regional.visibility != master.visibility:
            changes["visibility"] = master.visibility
        for key in sorted(self.target.obsolete_syncprops):
            if key in master.properties and regional.properties.get(key) != master.properties[key]:
                changes[key] = master.properties[key]
        return changes

    # -- leftovers ---------------------------------------------------------
    def plan_cleanup(self) -> list[Operation]:
        """Queued images, and saving ones stuck too long, of our own uploads."""
        ops = []
        for image in sorted(self.regional, key=lambda i: (i.name or "", i.id)):
            if not (self.own(image) and image.name in self.synced):
                continue
            if image.status == "queued":
                stale = True
            elif image.status == "saving":
                when = _parse_time(image.updated_at) or _parse_time(image.created_at)
                stale = (when is not None and
                         (self.now - when).total_seconds() > self.stalled_upload_age)
            else:
                stale = False
            if stale:
                ops.append(Operation(OperationKind.CLEANUP, image.name, regional=image))
        return ops

