"""Planning concern: matching and content (SPEC sections 4 and 5).

Regional images are matched to the synchronised master images by name
(other projects' images only without ``only_tenant_images``; several
regional images of one name: a warning, the one with the master's content
preferred) and compared by content (:func:`same_content`). Each
synchronised name then gets its status: missing (a new copy,
:mod:`glancesync.plan.uploads`), different content (the directives,
:mod:`glancesync.plan.conflicts`), a deactivated copy or the same content
(:mod:`glancesync.plan.metadata`), or an error (a master without any hash,
unless ``sync_without_checksum``). Also reported here: two copies of one
master image made by GlanceSync, a master name held by several images
(``error_duplicate``), deactivated master images.
"""
from __future__ import annotations

from glancesync.image import MARK_RENAMED, Image, content_hash
from glancesync.plan import conflicts, metadata, uploads
from glancesync.plan.context import PlanContext
from glancesync.plan.model import ImageStatus, OperationKind, Status, StatusCategory
from glancesync.selection import is_synchronised


def report_own_duplicates(ctx: PlanContext) -> None:
    """Report two active copies GlanceSync made of one master image.

    Recognised by their provenance (same master region and image id)
    and their name: two runs that did not see each other's locks
    (different lock folders, see ``lock_dir``) both uploaded it. A copy
    under another name was renamed by hand (:func:`renamed_copies`). Logged as an error, so
    that cron runs show it; an operator deletes the extra copy.
    """
    copies: dict[tuple[str | None, str, str], list[Image]] = {}
    for image in ctx.regional:
        record = image.provenance
        if record is not None and image.status == "active" and ctx.own(image):
            # Copies under other names were renamed by hand (see renamed_copies).
            copies.setdefault((record.master_region, record.master_image_id,
                               image.name or ""), []).append(image)
    for (region, master_id, _), images in sorted(copies.items(), key=lambda i: i[0][1:]):
        if len(images) > 1:
            images.sort(key=lambda i: (i.created_at or "", i.id))
            ctx.needs_operator(
                f"{len(images)} copies of master image {master_id} (from {region})"
                f" made by GlanceSync: {', '.join(f'{i.id} {i.name!r}' for i in images)};"
                " runs that did not share a lock folder uploaded it twice"
                " (see lock_dir): delete the extra copies")


def match_regional(ctx: PlanContext) -> None:
    """Pick, per synchronised name, the regional image to compare with.

    Another project's image (``only_tenant_images = false``) takes part only
    where hashes can compare it: never for a master converted to the
    region's ``convert_to`` or a master without hash, whose copies are
    recognised by a provenance record any project can forge (a new copy of
    ours is made beside it).
    """
    found: dict[str, list[Image]] = {}
    for image in ctx.regional:
        if (image.status in ("active", "deactivated") and image.name in ctx.synced
                and ctx.visible(image)
                and (ctx.own(image) or comparable_by_hashes(ctx, ctx.synced[image.name]))):
            found.setdefault(image.name, []).append(image)
    for name, images in found.items():
        master = ctx.synced[name]
        images.sort(key=lambda i: (not same_content(ctx, master, i), not ctx.own(i),
                                   i.status != "active", i.created_at or "", i.id))
        ctx.match[name] = images[0]
        if len(images) > 1:
            ctx.duplicates[name] = images
            ctx.warn(f"{len(images)} images named {name!r} "
                     f"({', '.join(i.id for i in images)}); using {images[0].id}")


def report_regional_duplicates(ctx: PlanContext) -> None:
    """Never ``ok`` while the region shows several images of a synchronised name.

    A status that says nothing is to do (``ok``, ``ok_stalled_checksum``...)
    becomes ``error_regional_duplicate``: users of the region see two
    images of one name (a rename that failed half-way, an upload by hand)
    and only an operator knows which to keep. Pending work is left to the
    sync; it is reported again once done.
    """
    for name, images in sorted(ctx.duplicates.items()):
        status = ctx.statuses.get(name)
        if status is None or (status.status.category is not StatusCategory.OK
                              and status.status is not Status.INFO_MEMBERS_UNMAPPED):
            continue
        others = ", ".join(f"{i.id} ({i.visibility}, {i.status})" for i in images[1:])
        status.status = Status.ERROR_REGIONAL_DUPLICATE
        status.reason = (f"{status.reason}; but the region also shows {others} under"
                         f" this name: delete or rename the extra image(s)")
        ctx.needs_operator(f"image {name}: {len(images)} images of this name in the"
                           f" region ({images[0].id} compared; {others})")


def comparable_by_hashes(ctx: PlanContext, master: Image) -> bool:
    """True when a copy of ``master`` in this region has the master's hashes
    (not converted, and the master has a hash)."""
    return content_hash(master) is not None and not ctx.transfer.converts(master)


def same_content(ctx: PlanContext, master: Image, regional: Image) -> bool:
    """Same bytes by the hashes; for a master without any, our verified copy of it.

    A copy of a master image without checksum made with
    ``sync_without_checksum`` records in its provenance the hash
    computed while its data was sent, which the region's own hash of
    the copy must match (and the size the master's). A copy converted
    to the region's ``convert_to`` is judged on its provenance and
    format (:meth:`~glancesync.strategy.RegionTransfer.same_copy`).

    Those two rest on a provenance record, which anyone who may set an
    image's properties can forge: they count only for the project's own
    images (another project's image, seen with ``only_tenant_images =
    false``, is compared by its hashes alone, and a converted copy or a
    copy of a master without hash cannot be proven by them).
    """
    if content_hash(master) is not None:
        if ctx.transfer.converts(master) and not ctx.own(regional):
            return False
        return ctx.transfer.same_copy(master, regional)
    if not ctx.own(regional):
        return False
    record = regional.provenance
    known = {content_hash(regional)}
    if regional.checksum:
        known.add(f"md5:{regional.checksum.lower()}")
    return (record is not None and record.master_image_id == master.id
            and record.master_hash is not None and record.master_hash in known
            and (master.size is None or regional.size == master.size))


def classify_synchronised(ctx: PlanContext) -> None:
    """The status (and operation) of every synchronised master name, by name."""
    for name in sorted(ctx.synced):
        classify(ctx, name, ctx.synced[name])


def classify(ctx: PlanContext, name: str, master: Image) -> None:
    """The status of one synchronised master image against its regional match."""
    regional = ctx.match.get(name)
    hashless = content_hash(master) is None
    if hashless and not ctx.target.sync_without_checksum and not (
            regional is not None and same_content(ctx, master, regional)):
        reason = ("the master image has no checksum nor os_hash_value: a copy could"
                  " not be verified (sync_without_checksum = true copies it, verified"
                  " by size and by the hash computed while sending it)")
        if regional is not None:
            reason += f"; regional image {regional.id} left as it is"
        ctx.set_status(Status.ERROR_UNVERIFIABLE, name, master, regional, reason)
        ctx.needs_operator(f"image {name}: {reason}")
        return
    if report_renamed(ctx, name, master, regional):
        return
    if regional is None:
        uploads.upload(ctx, OperationKind.UPLOAD, Status.PENDING_UPLOAD, name, master, None,
                       "missing in the region")
        return
    if not same_content(ctx, master, regional):
        conflicts.conflict(ctx, name, master, regional)
        return
    if regional.status == "deactivated":
        metadata.deactivated_copy(ctx, name, master, regional)
        return
    if not ctx.own(regional):
        ctx.set_status(Status.OK, name, master, regional,
                       f"same content; owned by project {regional.owner}, "
                       "metadata not managed")
        return
    if fit_to_relay(ctx, master, regional):
        ctx.relays[master.id] = regional.id
    metadata.compare(ctx, name, master, regional, Status.OK)


def fit_to_relay(ctx: PlanContext, master: Image, regional: Image) -> bool:
    """True when ``regional`` may serve server-side copies of ``master``.

    Glance copies a source's ``hw_*``, ``trait:*``, ``os_secure_boot``...
    onto the image it imports: only a copy GlanceSync made may be a source.
    The project's own active image, with the master's hashes, whose
    provenance names this master content.
    """
    record = regional.provenance
    return (ctx.own(regional) and regional.status == "active"
            and comparable_by_hashes(ctx, master) and master.same_content(regional)
            and record is not None and record.is_copy_of(master)
            and record.master_region in (None, ctx.master.region))


def renamed_copies(ctx: PlanContext, master: Image) -> list[Image]:
    """The region's copies of ``master`` (by their provenance, with its content)
    under another name: renamed by hand (GlanceSync's own ``NAME.old`` renames
    carry their mark and are left out). Oldest first."""
    found = [image for image in ctx.regional
             if image.name != master.name and image.provenance is not None
             and image.provenance.master_image_id == master.id
             and image.provenance.master_region in (None, ctx.master.region)
             and image.status in ("active", "deactivated") and ctx.own(image)
             and MARK_RENAMED not in image.marks and same_content(ctx, master, image)]
    return sorted(found, key=lambda i: (i.created_at or "", i.id))


def report_renamed(ctx: PlanContext, name: str, master: Image, regional: Image | None) -> bool:
    """``info_renamed`` lines for our copies of ``master`` under other names; True
    when one of them stands for the name (nothing in the region has it: no
    new upload)."""
    renamed = renamed_copies(ctx, master)
    standing = regional is None and bool(renamed)
    if standing:
        ctx.set_status(Status.INFO_RENAMED, name, master, renamed[0], renamed_reason(
            master, renamed[0], f"not uploaded again; rename it {name!r} to have it"
                                " synchronised, or delete it to have a new copy made"))
        renamed = renamed[1:]
    for other in renamed:
        ctx.add_line(ImageStatus(Status.INFO_RENAMED, ctx.region, name, master.id, other.id,
                                 renamed_reason(master, other, "another copy, left as it"
                                                " is: delete it if nobody uses it")))
    return standing


def renamed_reason(master: Image, copy: Image, then: str) -> str:
    """The reason of an ``info_renamed`` line."""
    return (f"copy {copy.id} of master image {master.id} made by GlanceSync is named"
            f" {copy.name!r} in the region (renamed by hand, or the master image"
            f" renamed): {then}")


def classify_duplicates(ctx: PlanContext) -> None:
    """``error_duplicate`` for each master name held by several images that
    should reach this region: none of them does until an operator acts."""
    for name, found in sorted(ctx.master.duplicates.items()):
        if not any(is_synchronised(image, ctx.target) for image in found):
            continue
        regional = next((i for i in ctx.regional if i.name == name
                         and i.status == "active" and ctx.visible(i)), None)
        reason = (f"master image name {name!r} is used by {len(found)} images "
                  f"({', '.join(i.id for i in found)}): none is synchronised; "
                  "rename or delete the extra ones in the master region")
        ctx.set_status(Status.ERROR_DUPLICATE, name, None, regional, reason)
        ctx.needs_operator(f"image {name}: {reason}")


def master_deactivated(ctx: PlanContext) -> None:
    """Deactivated master images that would be synchronised: reported only."""
    for name, master in sorted(ctx.master.deactivated.items()):
        if name in ctx.synced or not is_synchronised(master, ctx.target):
            continue
        regional = next((i for i in ctx.regional if i.name == name and ctx.visible(i)
                         and i.status in ("active", "deactivated")), None)
        reason = "deactivated in the master region: not synchronised"
        if regional is not None:
            reason += f"; regional image {regional.id} ({regional.status}) left as it is"
        ctx.set_status(Status.INFO_MASTER_DEACTIVATED, name, master, regional, reason)
