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
* Leftovers: only images GlanceSync created (they carry its provenance)
  are ever cleaned, once ``queued`` or ``saving`` and unchanged for
  ``stalled_upload_age``; each clean-up has a ``pending_cleanup`` line.
* A master name held by several candidates is ``error_duplicate`` in every
  region one of them should reach.
* Adoption: a regional image of the project without provenance, with the
  master's name and content, gets the provenance recorded (a copy made
  before GlanceSync recorded it); nothing else is ever taken for a copy.
* Lifecycle (``removal_policy``, ``keep_old_copies``): the copies of ours
  whose master image is gone or no longer selected, and the ``NAME.old``
  copies beyond the limit, get a removal step, always the last operations
  of a plan; see :meth:`_Planner.plan_lifecycle` for what is never touched.
* Every upload operation carries its :class:`~glancesync.strategy.Transfer`
  (stream or server-side copy, disk format), decided by the region's
  :class:`~glancesync.strategy.RegionTransfer`; with ``convert_to``, a copy
  is compared with the master on its provenance record and disk format.
"""
from __future__ import annotations

import datetime
import logging
from typing import Any, Iterable, Mapping

from glancesync.image import (AMI_PROPERTIES, MARK_ORPHANED, MARK_RENAMED, MARK_RETIRED,
                              PROVENANCE_PREFIX, SIGNATURE_PROPERTIES, UPLOAD_PROPERTIES,
                              Image, Provenance, content_hash, is_user_property,
                              metadata_diff, utc_stamp)
from glancesync.plan.model import (CONTENT_PENDING, CONTENT_SAME, DEACTIVATED_KEEP,
                                   DEACTIVATED_REACTIVATE, OLD_SUFFIX, REMOVAL_STEPS,
                                   SIGNATURES_AFTER_UPLOAD, SIGNATURES_DROP, ImageStatus,
                                   MemberTarget, Operation, OperationKind, RegionPlan, Status,
                                   TargetPolicy)
from glancesync.selection import (OBSOLETE_SUFFIX, MasterSelection, is_obsolete_name,
                                  is_synchronised)
from glancesync.strategy import RegionTransfer, Strategy

LOG = logging.getLogger(__name__)

ANY = "any"


def make_plan(region: str, master: MasterSelection, regional_images: Iterable[Image],
              regional_project_id: str | None, target: TargetPolicy, *,
              now: datetime.datetime | None = None,
              stalled_upload_age: float = 3600,
              members: Mapping[str, MemberTarget] | None = None,
              transfer: RegionTransfer | None = None) -> RegionPlan:
    """Compute statuses and operations of ``region`` for ``target``.

    ``members`` (with ``sync_members``) maps each master project an image
    is shared with to its :data:`MemberTarget` in the region; the images'
    :attr:`~glancesync.image.Image.members` must then have been read
    (:mod:`glancesync.sharing` does both). ``transfer`` says how copies may
    reach the region (default: streamed, in the master's disk format).
    """
    return _Planner(region, master, list(regional_images), regional_project_id, target,
                    now or datetime.datetime.now(datetime.timezone.utc),
                    stalled_upload_age, members, transfer or RegionTransfer()).run()


def hold_removals(plans: Iterable[RegionPlan], max_deletes: int) -> int:
    """Apply ``max_deletes`` to the plans of one run; the number of removal steps.

    When the plans together hold more removal steps (hide, deactivate,
    delete) than ``max_deletes``, none is taken: every one leaves its plan
    and its status becomes ``error_max_deletes``, saying why. Within the
    limit, the plans are left as they are.
    """
    plans = list(plans)
    steps = sum(len(plan.removals) for plan in plans)
    if steps <= max_deletes:
        return steps
    note = (f"not taken: this run would take {steps} removal steps, more than"
            f" max_deletes = {max_deletes} (check them, then allow it once with"
            f" --config max_deletes={steps})")
    for plan in plans:
        held = plan.removals
        for op in held:
            status = plan.removal_status(op)
            if status is not None:
                status.status = Status.ERROR_MAX_DELETES
                status.reason = f"{status.reason}; {note}"
        if held:
            plan.operations = [op for op in plan.operations if not op.kind.removes]
            plan.warnings.append(f"{len(held)} removal step(s) {note}")
    return steps


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


def _keys(keys: Iterable[str]) -> list[str]:
    """The keys a reason names as differing metadata: GlanceSync's records left out."""
    return sorted(k for k in keys if not k.startswith(PROVENANCE_PREFIX))


def _hashes(image: Image) -> set[str]:
    return {h for h in (image.checksum, image.os_hash_value) if h}


class _Planner:
    """One run of :func:`make_plan` (keeps the intermediate maps together)."""

    def __init__(self, region: str, master: MasterSelection, regional: list[Image],
                 project_id: str | None, target: TargetPolicy, now: datetime.datetime,
                 stalled_upload_age: float,
                 members: Mapping[str, MemberTarget] | None,
                 transfer: RegionTransfer) -> None:
        self.region = region
        self.master = master
        self.regional = regional
        self.project_id = project_id
        self.target = target
        self.now = now
        self.stalled_upload_age = stalled_upload_age
        self.members = members if target.sync_members else None
        self.transfer = transfer
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
        self.classify_duplicates()
        self.master_deactivated()
        self.resolve_ami()
        metadata_ops = [self.ops[n] for n in sorted(self.ops)
                        if not self.ops[n].uploads and not self.ops[n].ami_refs]
        first = {id(op) for op in metadata_ops}
        obsolete_ops = self.plan_obsolete() if self.target.support_obsolete_images else []
        upload_ops = self.order_uploads([op for op in self.ops.values()
                                         if id(op) not in first])
        cleanup_ops = self.plan_cleanup()
        # A leftover's line comes after the status of the image of its name.
        self.plan.statuses = sorted(self.statuses.values(), key=lambda s: s.name)
        for op in cleanup_ops:
            self.plan.statuses.append(self.cleanup_status(op))
        self.plan.statuses.sort(key=lambda s: (s.name,
                                               s.status is Status.PENDING_CLEANUP))
        self.plan.operations = metadata_ops + obsolete_ops + upload_ops + cleanup_ops
        self.plan_lifecycle()  # its statuses and operations come last
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
            if (image.status in ("active", "deactivated") and image.name in self.synced
                    and self.visible(image)):
                found.setdefault(image.name, []).append(image)
        for name, images in found.items():
            master = self.synced[name]
            images.sort(key=lambda i: (not self.same_content(master, i), not self.own(i),
                                       i.status != "active", i.created_at or "", i.id))
            self.match[name] = images[0]
            if len(images) > 1:
                self.warn(f"{len(images)} images named {name!r} "
                          f"({', '.join(i.id for i in images)}); using {images[0].id}")

    def same_content(self, master: Image, regional: Image) -> bool:
        """Same bytes by the hashes; for a master without any, our verified copy of it.

        A copy of a master image without checksum made with
        ``sync_without_checksum`` records in its provenance the hash
        computed while its data was sent, which the region's own hash of
        the copy must match (and the size the master's). A copy converted
        to the region's ``convert_to`` is judged on its provenance and
        format (:meth:`~glancesync.strategy.RegionTransfer.same_copy`).
        """
        if content_hash(master) is not None:
            return self.transfer.same_copy(master, regional)
        record = regional.provenance
        known = {content_hash(regional)}
        if regional.checksum:
            known.add(f"md5:{regional.checksum.lower()}")
        return (record is not None and record.master_image_id == master.id
                and record.master_hash is not None and record.master_hash in known
                and (master.size is None or regional.size == master.size))

    def classify_duplicates(self) -> None:
        """``error_duplicate`` for each master name held by several images that
        should reach this region: none of them does until an operator acts."""
        for name, found in sorted(self.master.duplicates.items()):
            if not any(is_synchronised(image, self.target) for image in found):
                continue
            regional = next((i for i in self.regional if i.name == name
                             and i.status == "active" and self.visible(i)), None)
            reason = (f"master image name {name!r} is used by {len(found)} images "
                      f"({', '.join(i.id for i in found)}): none is synchronised; "
                      "rename or delete the extra ones in the master region")
            self.set_status(Status.ERROR_DUPLICATE, name, None, regional, reason)
            self.needs_operator(f"image {name}: {reason}")

    def classify(self, name: str, master: Image) -> None:
        regional = self.match.get(name)
        hashless = content_hash(master) is None
        if hashless and not self.target.sync_without_checksum and not (
                regional is not None and self.same_content(master, regional)):
            reason = ("the master image has no checksum nor os_hash_value: a copy could"
                      " not be verified (sync_without_checksum = true copies it, verified"
                      " by size and by the hash computed while sending it)")
            if regional is not None:
                reason += f"; regional image {regional.id} left as it is"
            self.set_status(Status.ERROR_UNVERIFIABLE, name, master, regional, reason)
            self.needs_operator(f"image {name}: {reason}")
            return
        if regional is None:
            self.upload(OperationKind.UPLOAD, Status.PENDING_UPLOAD, name, master, None,
                        "missing in the region")
            return
        if not self.same_content(master, regional):
            self.conflict(name, master, regional)
            return
        if regional.status == "deactivated":
            self.deactivated_copy(name, master, regional)
            return
        if not self.own(regional):
            self.set_status(Status.OK, name, master, regional,
                            f"same content; owned by project {regional.owner}, "
                            "metadata not managed")
            return
        self.compare_metadata(name, master, regional, Status.OK)

    def compare_metadata(self, name: str, master: Image, regional: Image,
                         in_sync: Status, *, kind: OperationKind | None = None,
                         why: str = "") -> None:
        """Status and operation of a copy holding the master's content.

        ``in_sync`` is the status when nothing differs; ``kind`` forces an
        operation (a reactivation) with ``why`` as its reason.
        """
        changes, remove = self.metadata_diff(master, regional)
        add, drop = self.member_diff(master, regional)
        unmapped = self.report_unmapped(name, master)
        adopted = self.adoption(master, regional)
        back = self.back_marks(regional)
        changes.update(adopted)
        remove += back
        if changes or remove or add or drop or kind is not None:
            parts = [why] if why else []
            keys = _keys(set(changes) - {"tags"}) + _keys(remove)
            if keys:
                parts.append(f"metadata differs: {', '.join(keys)}")
            if adopted:
                parts.append("record provenance (a copy made before GlanceSync recorded"
                             " it: same name and content as the master image)")
            if back:
                parts.append("its master image is back: lifecycle marks removed")
            if "tags" in changes:
                wanted = set(changes["tags"])
                delta = ([f"+{t}" for t in sorted(wanted - set(regional.tags))]
                         + [f"-{t}" for t in sorted(set(regional.tags) - wanted)])
                parts.append(f"tags differ: {' '.join(delta)}")
            if add or drop:
                parts.append("members differ: " + " ".join(
                    [f"+{self.member_label(p)}" for p in add]
                    + [f"-{p}" for p in drop]))
            if unmapped:
                parts.append(unmapped)
            status = (Status.PENDING_REACTIVATE if kind is OperationKind.REACTIVATE
                      else Status.PENDING_METADATA)
            self.set_status(status, name, master, regional, "; ".join(parts))
            self.ops[name] = Operation(kind or OperationKind.UPDATE_METADATA, name,
                                       master=master, regional=regional, changes=changes,
                                       remove=tuple(remove), add_members=add,
                                       remove_members=drop)
        elif unmapped:
            self.set_status(Status.INFO_MEMBERS_UNMAPPED, name, master, regional, unmapped)
        else:
            self.set_status(in_sync, name, master, regional,
                            "deactivated copy kept" if in_sync is Status.OK_DEACTIVATED
                            else "")

    def deactivated_copy(self, name: str, master: Image, regional: Image) -> None:
        """A regional copy with the master's content that an operator deactivated.

        One that ``removal_policy = deactivate`` deactivated while its master
        image was gone is reactivated, whatever ``deactivated_copies`` says.
        """
        policy = self.target.deactivated_copies
        if self.own(regional) and regional.marks.get(MARK_RETIRED) == "deactivate":
            self.compare_metadata(name, master, regional, Status.PENDING_REACTIVATE,
                                  kind=OperationKind.REACTIVATE,
                                  why="deactivated by removal_policy while its master image"
                                      " was gone: reactivate it")
            return
        if policy == DEACTIVATED_KEEP:
            if self.own(regional):
                self.compare_metadata(name, master, regional, Status.OK_DEACTIVATED)
            else:
                self.set_status(Status.OK_DEACTIVATED, name, master, regional,
                                f"deactivated copy kept; owned by project {regional.owner},"
                                " metadata not managed")
            return
        if policy == DEACTIVATED_REACTIVATE and self.own(regional):
            self.compare_metadata(name, master, regional, Status.PENDING_REACTIVATE,
                                  kind=OperationKind.REACTIVATE,
                                  why=f"regional copy {regional.id} is deactivated:"
                                      " reactivate it")
            return
        reason = (f"regional copy {regional.id} is deactivated (an operator's decision):"
                  f" reactivate it (openstack image set --activate {regional.id}) or"
                  " delete it for a new copy; deactivated_copies = reactivate or keep"
                  " decides it for every copy")
        if not self.own(regional):
            reason += (f" (owned by project {regional.owner}: GlanceSync never changes"
                       " it)")
        self.set_status(Status.ERROR_DEACTIVATED, name, master, regional, reason)
        self.needs_operator(f"image {name}: {reason}")

    def master_deactivated(self) -> None:
        """Deactivated master images that would be synchronised: reported only."""
        for name, master in sorted(self.master.deactivated.items()):
            if name in self.synced or not is_synchronised(master, self.target):
                continue
            regional = next((i for i in self.regional if i.name == name and self.visible(i)
                             and i.status in ("active", "deactivated")), None)
            reason = "deactivated in the master region: not synchronised"
            if regional is not None:
                reason += f"; regional image {regional.id} ({regional.status}) left as it is"
            self.set_status(Status.INFO_MASTER_DEACTIVATED, name, master, regional, reason)

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
            if content_hash(master) is None:
                reason = (f"the master image has no checksum: regional image {regional.id}"
                          " cannot be compared with it (list 'any' in rename or replace"
                          " for a verified copy, or in dontupdate to keep it)")
            elif checksum is None:
                reason = (f"regional image {regional.id} has no checksum: its content"
                          " cannot be compared with the master's (list 'any' in rename or"
                          " replace for a verified copy, or in dontupdate to keep it)")
            else:
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
        self.upload(kind, status, name, master, regional,
                    f"regional checksum {checksum} in {kind} ({why})")

    def upload(self, kind: OperationKind, status: Status, name: str, master: Image,
               regional: Image | None, reason: str) -> None:
        """Plan a new copy of ``master``: its status, its operation and its transfer."""
        transfer = self.transfer.choose(master)
        if transfer.note and self.transfer.transfer == Strategy.GLANCE_DOWNLOAD.value:
            self.warn(f"image {name}: transfer = {Strategy.GLANCE_DOWNLOAD} is not possible, "
                      f"streamed instead: {transfer.note}")
        elif transfer.note:
            LOG.info("%s: image %s is streamed: %s", self.region, name, transfer.note)
        self.set_status(status, name, master, regional, f"{reason}; {transfer.describe()}")
        self.statuses[name].transfer = transfer.strategy.value
        self.ops[name] = Operation(kind, name, master=master, regional=regional,
                                   size=master.size or 0, changes=self.upload_fields(master),
                                   provenance=self.provenance(master),
                                   add_members=self.wanted_members(master)[0],
                                   transfer=transfer)
        self.report_unmapped(name, master)

    def provenance(self, master: Image) -> Provenance:
        """The record a new copy of ``master`` carries."""
        return Provenance.of(master, self.master.region)

    def adoption(self, master: Image, regional: Image) -> dict[str, str]:
        """The provenance to record on ``regional``, a copy made before GlanceSync
        recorded it (the caller checked it holds ``master``'s content).

        Only images of the project without any provenance, when the master has
        a hash; ``copied_at`` is the image's creation time. Empty otherwise.
        """
        if (regional.provenance is not None or not self.own(regional)
                or content_hash(master) is None):
            return {}
        created = _parse_time(regional.created_at)
        record = Provenance(master.id, self.master.region, content_hash(master),
                            utc_stamp(created) if created else None)
        return record.as_properties()

    @staticmethod
    def back_marks(regional: Image) -> list[str]:
        """The lifecycle marks to remove from a copy whose master image is synchronised."""
        return [key for key in (MARK_ORPHANED, MARK_RETIRED) if key in regional.marks]

    # -- metadata --------------------------------------------------------
    def managed_properties(self, master: Image, regional: Image | None) -> set[str]:
        """User properties compared for this pair (SPEC section 5)."""
        if self.target.metadata_set:
            keys = set(self.target.metadata_set)
        else:
            keys = set(master.properties)
            if regional is not None:
                keys |= set(regional.properties)
        excluded = set(AMI_PROPERTIES)
        if self.target.signature_properties == SIGNATURES_DROP:
            excluded |= set(SIGNATURE_PROPERTIES)
        return {k for k in keys if is_user_property(k) and k not in excluded}

    def metadata_diff(self, master: Image, regional: Image) -> tuple[dict[str, Any], list[str]]:
        properties = {key: master.properties.get(key)
                      for key in sorted(self.managed_properties(master, regional))}
        fields = {"visibility": master.visibility, "min_ram": master.min_ram or 0,
                  "min_disk": master.min_disk or 0, "os_hidden": bool(master.os_hidden),
                  "tags": list(master.tags) if self.target.sync_tags else None}
        return metadata_diff(regional, fields, properties)

    def upload_fields(self, master: Image) -> dict[str, Any]:
        """Everything a new regional copy of ``master`` carries (AMI ids apart).

        ``properties`` go with the creation; ``late_properties`` (signature
        properties under ``signature_properties = after-upload``), like
        ``visibility``, ``protected``, ``os_hidden`` and ``tags``, are set
        once the data is verified.
        """
        fields: dict[str, Any] = {
            "visibility": master.visibility,
            "disk_format": self.transfer.disk_format(master),
            "container_format": master.container_format,
            "min_ram": master.min_ram or 0,
            "min_disk": master.min_disk or 0,
            "protected": bool(master.protected),
            "os_hidden": bool(master.os_hidden),
            "tags": sorted(set(master.tags)) if self.target.sync_tags else [],
        }
        keys = self.managed_properties(master, None) | set(UPLOAD_PROPERTIES)
        props = {k: master.properties[k] for k in sorted(keys) if k in master.properties}
        late = {}
        if self.target.signature_properties == SIGNATURES_AFTER_UPLOAD:
            late = {k: props.pop(k) for k in SIGNATURE_PROPERTIES if k in props}
        fields["properties"] = props
        fields["late_properties"] = late
        return fields

    # -- members (sync_members) --------------------------------------------
    def wanted_members(self, master: Image) -> tuple[tuple[str, ...], list[str]]:
        """(regional project ids, master projects that do not exist in the region)."""
        if self.members is None or master.visibility != "shared" or not master.members:
            return (), []
        found, missing = [], []
        for project in master.members:
            label, regional_id = self.members.get(project, (project, None))
            if regional_id is None:
                missing.append(label)
            elif regional_id not in found:
                found.append(regional_id)
        return tuple(sorted(found)), sorted(missing)

    def member_diff(self, master: Image, regional: Image) -> tuple[tuple[str, ...],
                                                                   tuple[str, ...]]:
        """Projects to share ``regional`` with, and to stop sharing it with."""
        if self.members is None or master.visibility != "shared":
            return (), ()
        wanted = set(self.wanted_members(master)[0])
        current = set(regional.members or ())
        return tuple(sorted(wanted - current)), tuple(sorted(current - wanted))

    def member_label(self, regional_id: str) -> str:
        """How messages name a regional project (the master project's label)."""
        for label, found in (self.members or {}).values():
            if found == regional_id:
                return label
        return regional_id

    def report_unmapped(self, name: str, master: Image) -> str:
        """Warn about master members without a project in the region; the reason text."""
        missing = self.wanted_members(master)[1]
        if not missing:
            return ""
        text = (f"not shared with {', '.join(missing)}: no project of that name and domain"
                " in the region")
        self.warn(f"image {name}: {text}")
        return text

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
            if current.status in (Status.ERROR_CHECKSUM, Status.OK_STALLED_CHECKSUM,
                                  Status.ERROR_DEACTIVATED, Status.ERROR_UNVERIFIABLE):
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
            elif used_status.status in CONTENT_SAME:
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
                self.statuses[name].transfer = current.transfer
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
        elif current.status is not Status.PENDING_REACTIVATE:
            keys = _keys(op.changes) + _keys(op.remove)
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

        for op in sorted(ops, key=lambda o: (o.size if o.uploads else 0, o.name)):
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
                        if i.status == "active" and self.own(i) and self.same_content(master, i)]
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
        """Visibility and ``obsolete_syncprops`` from the master (and the provenance of
        a copy made before GlanceSync recorded it)."""
        changes: dict[str, Any] = {}
        if regional.visibility != master.visibility:
            changes["visibility"] = master.visibility
        for key in sorted(self.target.obsolete_syncprops):
            if key in master.properties and regional.properties.get(key) != master.properties[key]:
                changes[key] = master.properties[key]
        changes.update(self.adoption(master, regional))
        return changes

    # -- leftovers ---------------------------------------------------------
    def plan_cleanup(self) -> list[Operation]:
        """Leftovers of GlanceSync's own interrupted uploads, to delete.

        A leftover is a ``queued``, ``saving`` or ``importing`` (a server-side
        copy) image of the project that carries the provenance GlanceSync
        gives every image it creates
        (naming a master image of this master region), and that nothing
        touched for ``stalled_upload_age`` seconds. Any other image is never
        touched: an operator's upload in progress, another tool's image. A
        protected leftover is only warned about: it cannot be deleted.
        """
        ops = []
        for image in sorted(self.regional, key=lambda i: (i.name or "", i.id)):
            if image.status not in ("queued", "saving", "importing") or not self.own(image):
                continue
            if not self.made_by_us(image):
                LOG.debug("%s: %s image %s (%s) was not created by GlanceSync: left alone",
                          self.region, image.status, image.name, image.id)
                continue
            age = self.age(image)
            if age is None or age < self.stalled_upload_age:
                continue
            if image.protected:
                self.warn(f"leftover {image.status} image {image.name} ({image.id}) of an "
                          "interrupted upload is protected: left alone (unprotect it to "
                          "let the next sync delete it)")
                continue
            ops.append(Operation(OperationKind.CLEANUP, image.name or image.id, regional=image,
                                 provenance=image.provenance))
        return ops

    def made_by_us(self, image: Image) -> bool:
        """True when ``image`` records a GlanceSync copy of this master region."""
        record = image.provenance
        return (record is not None and bool(record.master_image_id)
                and (self.master.region is None
                     or record.master_region in (None, self.master.region)))

    def age(self, image: Image) -> float | None:
        """Seconds since ``image`` last changed (None: unknown)."""
        when = _parse_time(image.updated_at) or _parse_time(image.created_at)
        return None if when is None else (self.now - when).total_seconds()

    def cleanup_status(self, op: Operation) -> ImageStatus:
        """The status line of a planned clean-up."""
        image = op.regional
        assert image is not None and image.provenance is not None
        age = self.age(image) or 0.0
        return ImageStatus(Status.PENDING_CLEANUP, self.region, op.name,
                           image.provenance.master_image_id, image.id,
                           f"leftover {image.status} image {image.id} of an interrupted "
                           f"upload by GlanceSync, unchanged for {age:.0f} s: to delete")

    # -- lifecycle (removal_policy, keep_old_copies) -------------------------------
    def plan_lifecycle(self) -> None:
        """Statuses and steps of the image lifecycle, appended last to the plan.

        Candidates are the copies of this master region recognised by their
        provenance whose master image is gone or no longer selected
        (:meth:`orphaned`), after ``removal_grace_hours``; and the
        ``NAME.old`` copies marked by a rename beyond the newest
        ``keep_old_copies`` (no grace period). Never touched: other
        projects' images and protected ones (reported), images named like a
        synchronised master image (the sync's conflicts decide), images
        without provenance or whose master image is still listed in any
        state, and everything when the master offers no image at all.
        """
        self.lifecycle: list[tuple[ImageStatus, Operation | None]] = []
        policy = self.target.removal_policy
        if policy in REMOVAL_STEPS and not self.master.candidates:
            self.warn("the master region offers no image at all: no copy is removed"
                      " (check the master target's credentials and project)")
            return
        self.plan_old_copies()
        for image in sorted(self.regional, key=lambda i: (i.name or "", i.id)):
            why = self.orphaned(image)
            if why is not None and policy in REMOVAL_STEPS:
                self.retire(image, why, grace=True)
            elif why is None and MARK_ORPHANED in image.marks and self.own(image) \
                    and image.name not in self.synced:
                # Its master image came back (under another name): the clock stops.
                self.lifecycle_line(
                    Status.PENDING_METADATA, image, "its master image is back: lifecycle"
                    " mark removed", Operation(OperationKind.UPDATE_METADATA,
                                               image.name or image.id, regional=image,
                                               remove=(MARK_ORPHANED,)))
        for status, op in sorted(self.lifecycle, key=lambda p: (p[0].name, p[0].regional_id)):
            self.plan.statuses.append(status)
            if op is not None:
                self.plan.operations.append(op)
        # Removal steps after everything else, marks included.
        self.plan.operations.sort(key=lambda op: op.kind.removes)

    def orphaned(self, image: Image) -> str | None:
        """Why ``image`` is a copy of ours whose master image is gone or no longer
        selected for the target; None when it is not one.

        The master image of an ``X_obsolete`` name is handled by the obsolete
        convention (when ``support_obsolete_images``); one still listed by
        the master region in any other state (deactivated, name used twice,
        not active) is not gone.
        """
        record = image.provenance
        if (record is None or record.master_region != self.master.region
                or image.status not in ("active", "deactivated")
                or image.name in self.synced or self.renamed_old(image)
                or record.master_image_id in self.synced_by_id):
            return None
        master = self.master.by_id().get(record.master_image_id)
        if master is not None:
            if is_obsolete_name(master.name) and self.target.support_obsolete_images:
                return None
            return (f"master image {master.name} ({master.id}) is no longer selected for"
                    " this target")
        listed = self.master.listed_ids | {i.id for i in self.master.deactivated.values()}
        if record.master_image_id in listed:
            return None
        return f"master image {record.master_image_id} is gone from the master region"

    @staticmethod
    def renamed_old(image: Image) -> bool:
        """A ``NAME.old`` image a rename made: ``keep_old_copies`` decides on it."""
        return bool(image.name and image.name.endswith(OLD_SUFFIX)
                    and _parse_time(image.marks.get(MARK_RENAMED)))

    def plan_old_copies(self) -> None:
        """The ``NAME.old`` copies beyond the newest ``keep_old_copies`` of each name."""
        limit = self.target.keep_old_copies
        if limit is None or self.target.removal_policy not in REMOVAL_STEPS:
            return
        groups: dict[str, list[Image]] = {}
        for image in self.regional:
            if self.renamed_old(image) and image.status in ("active", "deactivated"):
                groups.setdefault(image.name, []).append(image)
        for name, found in sorted(groups.items()):
            found.sort(key=lambda i: (_parse_time(i.marks[MARK_RENAMED]), i.id), reverse=True)
            for image in found[limit:]:
                self.retire(image, f"{len(found)} {name} copies, keep_old_copies = {limit}:"
                                   f" renamed {image.marks[MARK_RENAMED]}, one of the oldest",
                            grace=False)

    def retire(self, image: Image, why: str, *, grace: bool) -> None:
        """The status (and step) of a copy that ``removal_policy`` applies to."""
        policy = self.target.removal_policy
        if not self.own(image):
            self.lifecycle_line(Status.INFO_REMOVAL_SKIPPED, image,
                                f"{why}; owned by project {image.owner}: never touched")
            return
        if image.protected:
            self.lifecycle_line(Status.INFO_REMOVAL_SKIPPED, image,
                                f"{why}; protected: never touched (unprotect it to let"
                                f" removal_policy = {policy} apply)")
            return
        if (policy == "hide" and image.os_hidden) or (
                policy == "deactivate" and image.status == "deactivated"):
            self.lifecycle_line(Status.OK_RETIRED, image, f"{why}; {policy} done")
            return
        hours = self.target.removal_grace_hours
        if grace and hours > 0:
            since = _parse_time(image.marks.get(MARK_ORPHANED))
            if since is None:
                self.lifecycle_line(
                    Status.INFO_REMOVAL_GRACE, image,
                    f"{why}: to {policy} in {hours:g} h (removal_grace_hours)",
                    Operation(OperationKind.UPDATE_METADATA, image.name or image.id,
                              regional=image, changes={MARK_ORPHANED: utc_stamp(self.now)},
                              reason="record since when its master image is gone"))
                return
            left = hours * 3600 - (self.now - since).total_seconds()
            if left > 0:
                self.lifecycle_line(Status.INFO_REMOVAL_GRACE, image,
                                    f"{why} (since {image.marks[MARK_ORPHANED]}): to"
                                    f" {policy} in {left / 3600:.1f} h (removal_grace_hours)")
                return
        kind = REMOVAL_STEPS[policy]
        changes = ({"os_hidden": True, MARK_RETIRED: policy} if kind is OperationKind.HIDE
                   else {MARK_RETIRED: policy} if kind is OperationKind.DEACTIVATE else {})
        reason = f"{why} (removal_policy = {policy})"
        self.lifecycle_line(Status.PENDING_REMOVAL, image, f"{why}: to {policy}",
                            Operation(kind, image.name or image.id, regional=image,
                                      changes=changes, reason=reason))

    def lifecycle_line(self, status: Status, image: Image, reason: str,
                       op: Operation | None = None) -> None:
        record = image.provenance
        self.lifecycle.append((ImageStatus(status, self.region, image.name or image.id,
                                           record.master_image_id if record else None,
                                           image.id, reason), op))

