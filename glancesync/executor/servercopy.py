"""The upload path, part two: a copy the region makes itself, and its fall-back.

An upload whose :class:`~glancesync.strategy.Transfer` is
``glance-download`` asks the region to copy the image from a source of the
run's :class:`~glancesync.serverside.CopySources` (the master, or a region
of the same target holding a verified copy), watches it, and sets again
what Glance did not copy. When the copy is refused, fails or stalls, the
image is streamed instead (:class:`~glancesync.executor.stream.Stream`):
into the same image if it is ``queued`` again, else into a new one after
deleting it. A failed copy is never retried server-side.
"""
from __future__ import annotations

from glancesync.errors import GlanceSyncError, ImageNotFoundError
from glancesync.executor.actions import LOG, describe
from glancesync.executor.results import MIB
from glancesync.executor.stream import NewImage, Stream
from glancesync.image import PROVENANCE_PREFIX, Image, Provenance, metadata_diff
from glancesync.plan.model import Operation
from glancesync.regions import RegionRef
from glancesync.serverside import CopySources, Outcome, Source, watch_import
from glancesync.strategy import Transfer


class ServerSideCopy:
    """Server-side copies into the region of ``stream``'s actions.

    ``sources``: the run's sources of copies; ``import_timeout``: the
    seconds a copy may take. The fall-back streams through ``stream``.
    """

    def __init__(self, stream: Stream, sources: CopySources, import_timeout: float) -> None:
        self.stream = stream
        self.actions = stream.actions
        self.sources = sources
        self.import_timeout = import_timeout

    @property
    def region(self) -> str:
        return self.actions.region

    def copy(self, op: Operation, target: NewImage, transfer: Transfer
             ) -> tuple[Image | None, Image, bool]:
        """Have the region copy the image itself; stream it when that fails.

        Returns the filled image (None in a dry run), the content it must
        have, and whether it was streamed after all.
        """
        master = op.master
        ref = RegionRef.parse(self.region)
        source = self.sources.choose(ref.target, ref.name, transfer.source_region or "",
                                     master.id)
        what = (f"image {op.name} ({op.size / MIB:.1f} MiB) from {source.region} "
                f"({transfer.strategy})")
        try:
            self.actions.act("import", what, self.actions.adapter.import_image,
                             target.image_id, source_region=source.region,
                             source_image_id=source.image_id)
        except GlanceSyncError as error:
            return self.fall_back(op, target, transfer, source, f"refused: {error}")
        if self.actions.dry_run:
            return None, master, False
        seen = watch_import(self.actions.adapter, target.image_id, self.import_timeout,
                            sleep=self.stream.pause)
        if seen.outcome is Outcome.ACTIVE and not master.same_content(seen.image):
            return self.fall_back(op, target, transfer, source, corrupt(seen.image, master))
        if seen.outcome is Outcome.ACTIVE:
            return self.complete(seen.image, target, op), master, False
        return self.fall_back(op, target, transfer, source, seen.message)

    def fall_back(self, op: Operation, target: NewImage, transfer: Transfer,
                  source: Source, why: str) -> tuple[Image | None, Image, bool]:
        """Clean up after a failed server-side copy, then stream the image.

        A ``queued`` image whose copy failed or never started is filled by
        an upload, keeping its id (even with Glance's stale lock of a failed
        copy, "Image has active task", an upload is accepted); an image still
        copying (``importing``, or ``queued`` with a task under way: a request
        whose answer was lost) is deleted, which cancels the copy, and a new
        one created; one that became ``active`` after all is kept if it holds
        the master's bytes, else deleted like one still copying. A relay
        whose copy failed is offered no more in this run; one whose copy
        did not hold the master's bytes is reported as an error naming it
        (its stored data may be corrupt although its hashes say otherwise).
        """
        what = (f"{source.region} (the copy {source.image_id} made there)" if source.relay
                else f"{source.region} (the master image)")
        LOG.warning("%s: server-side copy of %s from %s failed (%s); streaming it instead",
                    self.region, op.name, what, why)
        if source.relay:
            ref = RegionRef.parse(self.region)
            self.sources.discard(ref.target, source.region, op.master.id)
        adapter = self.actions.adapter
        try:
            image = adapter.get_image(target.image_id)
        except ImageNotFoundError:
            image = None
        if image is not None and image.status == "active":
            if op.master.same_content(image):
                LOG.info("%s: the server-side copy of %s ended after all", self.region, op.name)
                return self.complete(image, target, op), op.master, False
            self.report_corrupt_source(op, source, image)
        expected = self.stream.prepare(op.master, transfer)
        if image is None or image.status != "queued" or self.copy_running(image.id):
            if image is not None:
                self.actions.act("delete", f"unfinished server-side copy {op.name} "
                                 f"({image.id}, {image.status})", adapter.delete_image,
                                 image.id)
            self.actions.act("create", f"image {op.name} again", target.create, adapter)
        return self.stream.stream(op, target, transfer, expected.size), expected, True

    def report_corrupt_source(self, op: Operation, source: Source, image: Image) -> None:
        """The copy from ``source`` is active with bytes that are not the master's."""
        if source.relay:
            LOG.error("%s: the copy of %s made from %s's image %s does not hold the master's"
                      " bytes (%s): %s's stored data may be corrupt although its hashes"
                      " are the master's; it relays no more copies in this run: check it"
                      " (download it and compare) and delete it if it is corrupt",
                      self.region, op.name, source.region, source.image_id,
                      corrupt(image, op.master), source.region)
        else:
            LOG.error("%s: the copy of %s made from the master region %s does not hold"
                      " the master's bytes (%s)", self.region, op.name, source.region,
                      corrupt(image, op.master))

    def copy_running(self, image_id: str) -> bool:
        """True when the image's latest import task is (or may be) still going on."""
        try:
            task = self.actions.adapter.import_task(image_id)
        except GlanceSyncError:
            return True
        return task is not None and task.status in ("pending", "processing")

    def complete(self, image: Image, target: NewImage, op: Operation) -> Image:
        """Make the copy's metadata exactly the planned one: name, limits, properties.

        Glance copies an allow-list of the source's properties (``hw_*``,
        ``trait:*``, ``os_secure_boot``, ``os_distro``, ``os_type``, by its
        ``glance_download_properties``) over the image's own, and the
        source's formats: whatever differs from what the image was created
        with is set again, and every user property the plan did not ask for
        is removed (those set once the copy is verified, the signatures,
        excepted). Returns the image as it is after.
        """
        fields = {key: target.fields.get(key) for key in ("min_ram", "min_disk")}
        fields["name"] = target.name
        wanted = target.fields.get("properties") or {}
        late = op.changes.get("late_properties") or {}
        properties: dict[str, str | None] = {
            k: v for k, v in wanted.items() if not k.startswith(PROVENANCE_PREFIX)}
        properties.update((key, None) for key in image.properties
                          if key not in properties and key not in late)
        changes, remove = metadata_diff(image, fields, properties)
        record = {k: v for k, v in wanted.items() if k.startswith(PROVENANCE_PREFIX)}
        if record and Provenance.from_properties(record) != image.provenance:
            changes.update(record)
        if not changes and not remove:
            return image
        updated = self.actions.act("update", f"image {target.name} after its server-side copy "
                                   f"({describe(changes, remove)})",
                                   self.actions.adapter.update_image, target.image_id,
                                   changes, remove)
        return updated if updated is not None else image


def corrupt(image: Image, master: Image) -> str:
    """Why a server-side copy is not the master's content, in words."""
    return (f"new image {image.id} has checksum {image.checksum}, size {image.size};"
            f" expected {master.checksum or master.os_hash_value}, size {master.size}")
