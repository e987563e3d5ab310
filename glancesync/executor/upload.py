"""The upload path: a new regional copy, from creation to what it replaces.

One upload operation runs these stages, in order (:class:`Upload`):

1. the data made ready (:meth:`~glancesync.executor.stream.Stream.prepare`:
   downloaded and converted before anything is opened in the region, so
   a failed download creates nothing), unless the region copies it;
2. the image created, private and unprotected, under an id chosen here;
3. filled: streamed from this host, or copied by the region itself with
   its fall-back to streaming (:mod:`glancesync.executor.servercopy`);
4. verified: ``active`` with the hashes of the bytes sent (:func:`verify`);
5. published: its visibility, protection, ``os_hidden``, tags and late
   properties (signatures), then shared with its members;
6. recorded: its id for the images that refer to it (kernels, ramdisks),
   offered as a source of server-side copies, counted;
7. what it replaces retired: the old image deleted (``replace``) or
   renamed ``NAME.old`` and made private (``rename``).

A failure in stages 2 to 5 deletes the new image (:func:`discard`) and
leaves the old one as it was; but an image whose every byte was sent and
that the store is still saving after ``saving_timeout`` is never deleted
(:class:`~glancesync.errors.StillSavingError`). Every change goes through the region's
:class:`~glancesync.executor.actions.RegionActions`.
"""
from __future__ import annotations

from typing import Any, Protocol

from glancesync.errors import (ChecksumMismatchError, GlanceSyncError, ImageNotFoundError,
                               ProtectedImageError, ServiceError, StillSavingError,
                               TransferError, UsageError)
from glancesync.executor.actions import LOG, RegionActions, describe
from glancesync.executor.results import RegionResult
from glancesync.executor.servercopy import ServerSideCopy
from glancesync.executor.steps import resolve_refs, share
from glancesync.executor.stream import NewImage, Stream
from glancesync.image import MARK_RENAMED, PROVENANCE_HASH, Image, content_hash, utc_stamp
from glancesync.plan.model import OLD_SUFFIX, Operation, OperationKind
from glancesync.regions import RegionRef
from glancesync.serverside import CopySources
from glancesync.strategy import Strategy, Transfer


class UploadRun(Protocol):
    """What an upload needs of the region's run."""

    actions: RegionActions
    new_ids: dict[str, str]
    stream: Stream
    server_copy: ServerSideCopy
    sources: CopySources


def upload(run: UploadRun, op: Operation, result: RegionResult) -> None:
    """The handler of ``upload``, ``replace`` and ``rename`` operations."""
    Upload(run, op).apply(result)


class Upload:
    """One upload operation of ``run``'s region (see the stages of this module)."""

    def __init__(self, run: UploadRun, op: Operation) -> None:
        self.run = run
        self.actions = run.actions
        self.op = op
        self.transfer = op.transfer or Transfer(Strategy.STREAM, op.master.disk_format)
        self.target = NewImage(op.name, f"<new {op.name}>", self.creation_fields())

    def apply(self, result: RegionResult) -> None:
        """Make the new copy, record it, then retire what it replaces.

        :raises ProtectedImageError: the image to replace is protected
            (read again first: it may have been protected since the plan).
        """
        self.check_old()
        expected, streamed = self.make()
        self.record(result, expected, streamed)
        try:
            self.retire_old(result)
        except GlanceSyncError as error:
            # Not the upload's failure: the new copy is in place, the old one
            # is still there under the same name (the next plan says so).
            verb = "deleting" if self.op.kind is OperationKind.REPLACE else "renaming"
            kind = UsageError if isinstance(error, UsageError) else ServiceError
            raise kind(
                f"the new copy {self.target.image_id} is uploaded and verified, but"
                f" {verb} the old image {self.op.regional.id} failed: {error.message}",
                region=error.region, image=error.image, status_code=error.status_code,
                transient=error.transient) from error

    def check_old(self) -> None:
        """A ``replace`` never starts on an old image protected now (nothing is made)."""
        op = self.op
        if op.kind is not OperationKind.REPLACE or op.regional is None:
            return
        try:
            current = self.actions.adapter.get_image(op.regional.id)
        except ImageNotFoundError:
            return
        if current.protected:
            raise ProtectedImageError(
                f"regional image {current.id} is protected: GlanceSync never unprotects"
                " nor deletes it; nothing uploaded (unprotect or delete it, or list its"
                " checksum in rename or dontupdate)", region=self.actions.region,
                image=op.name)

    def creation_fields(self) -> dict[str, Any]:
        """What the image is created with: private, unprotected, the master's formats,
        limits and properties, kernel and ramdisk ids resolved, the provenance
        stamped now."""
        fields = self.op.changes
        properties = dict(fields.get("properties") or {})
        properties.update(resolve_refs(self.run, self.op))
        if self.op.provenance is not None:
            properties.update(self.op.provenance.stamped().as_properties())
        return dict(visibility="private", disk_format=fields.get("disk_format"),
                    container_format=fields.get("container_format"),
                    min_ram=fields.get("min_ram", 0), min_disk=fields.get("min_disk", 0),
                    protected=False, properties=properties)

    def make(self) -> tuple[Image, bool]:
        """Stages 1 to 5; returns the content the copy has and whether it was streamed.

        :raises GlanceSyncError: a stage failed (the new image is deleted).
        """
        op, target, transfer = self.op, self.target, self.transfer
        expected = op.master
        if not transfer.server_side:
            expected = self.run.stream.prepare(op.master, transfer)
        self.actions.act("create", f"image {op.name}", target.create, self.actions.adapter)
        try:
            if transfer.server_side:
                filled, expected, streamed = self.run.server_copy.copy(op, target, transfer)
            else:
                filled = self.run.stream.stream(op, target, transfer, expected.size)
                streamed = True
            sent = None
            if not self.actions.dry_run:
                sent = verify(self.run.stream, filled, expected, op.name, transfer)
            self.publish(sent)
            share(self.actions, op.name, target.image_id, op.add_members, ())
        except StillSavingError:
            raise  # the store may still be writing it: never deleted
        except GlanceSyncError:
            discard(self.actions, target.image_id, op.name)
            raise
        return expected, streamed

    def publish(self, sent: str | None) -> None:
        """Give the verified copy what it was created without (``sent``: the hash of
        the bytes sent of a master without checksum, for its provenance)."""
        fields = self.op.changes
        final: dict[str, Any] = {}
        if sent is not None:
            final[PROVENANCE_HASH] = sent
        if fields.get("visibility", "private") != "private":
            final["visibility"] = fields["visibility"]
        if fields.get("protected"):
            final["protected"] = True
        if fields.get("os_hidden"):
            final["os_hidden"] = True
        if fields.get("tags"):
            final["tags"] = list(fields["tags"])
        final.update(fields.get("late_properties") or {})
        if final:
            self.actions.act("publish", f"image {self.op.name} ({describe(final, ())})",
                             self.actions.adapter.update_image, self.target.image_id, final)

    def record(self, result: RegionResult, expected: Image, streamed: bool) -> None:
        """Stage 6: the new id for later operations, a source of copies, the counts."""
        op, master = self.op, self.op.master
        self.run.new_ids[op.name] = self.target.image_id
        if (not self.actions.dry_run and self.transfer.convert_from is None
                and content_hash(master)):
            # A verified copy of the master's bytes: later server-side copies
            # of the same target may take them from here.
            ref = RegionRef.parse(self.actions.region)
            self.run.sources.add(ref.target, ref.name, master.id, self.target.image_id)
        result.uploaded += 1
        if streamed:
            result.bytes_uploaded += expected.size if expected.size is not None else op.size
        else:
            result.copied_server_side += 1
            result.bytes_server_side += op.size

    def retire_old(self, result: RegionResult) -> None:
        """Stage 7: delete (``replace``) or rename (``rename``) the image replaced."""
        op, old, new_id = self.op, self.op.regional, self.target.image_id
        adapter = self.actions.adapter
        if op.kind is OperationKind.REPLACE:
            self.actions.act("delete", f"old image {op.name} ({old.id}), replaced by {new_id}",
                             adapter.delete_image, old.id)
            result.replaced += 1
        elif op.kind is OperationKind.RENAME:
            old_name = op.name + OLD_SUFFIX
            self.actions.act("rename", f"{op.name} ({old.id}) to {old_name}, made private",
                             adapter.update_image, old.id,
                             {"name": old_name, "visibility": "private",
                              MARK_RENAMED: utc_stamp()})
            result.renamed += 1


def verify(stream: Stream, image: Image, expected: Image, name: str,
           transfer: Transfer) -> str | None:
    """The new image must be ``active`` with the hashes of the bytes sent.

    ``expected`` is the master, or the converted file's description. On
    a mismatch the source is asked (if it can) to check its copy again
    before it serves it next: the bad bytes may come from it. A master
    without checksum (``sync_without_checksum``): the region's hash of
    the copy must be that of the bytes sent, and its size the master's;
    returns that hash (``"sha512:<hex>"``), for the copy's provenance.
    Otherwise returns None.

    :raises TransferError: the image is not active, or not what was sent.
    """
    region = stream.region
    if image.status != "active":
        raise TransferError(f"new image {image.id} is {image.status}, not active",
                            region=region, image=name)
    if content_hash(expected) is None:
        return verify_sent(stream, image, expected, name)
    if not expected.same_content(image):
        recheck = getattr(stream.source, "recheck", None)
        if recheck is not None and not transfer.server_side:
            recheck(expected)
        raise TransferError(
            f"new image {image.id} has checksum {image.checksum}, size {image.size}; "
            f"expected {expected.checksum or expected.os_hash_value}, size "
            f"{expected.size}", region=region, image=name)
    return None


def verify_sent(stream: Stream, image: Image, master: Image, name: str) -> str:
    """Check a copy of a master without checksum against the bytes sent."""
    sent = stream.sent.pop(master.id)
    if master.size is not None and sent.size != master.size:
        raise ChecksumMismatchError(f"sent {sent.size} bytes, the master image has"
                                    f" {master.size}", region=stream.region, image=name)
    if image.os_hash_algo == "sha512" and image.os_hash_value:
        algorithm, value, computed = "sha512", image.os_hash_value, sent.os_hash
    elif image.checksum:  # a region hashing with another algorithm: md5
        algorithm, value, computed = "md5", image.checksum, sent.md5
    else:
        algorithm, value, computed = "none", None, sent.os_hash
    if value is None or value.lower() != computed:
        raise ChecksumMismatchError(
            f"uploaded image {image.id} has {algorithm} hash {value}, the bytes sent"
            f" have {computed}", region=stream.region, image=name)
    return f"{algorithm}:{computed}"


def discard(actions: RegionActions, image_id: str, name: str) -> None:
    """Delete a half-made image; a failure here is logged, not raised."""
    try:
        actions.act("delete", f"failed upload {name} ({image_id})",
                    actions.adapter.delete_image, image_id)
    except GlanceSyncError as error:
        LOG.error("%s: could not delete failed upload %s (%s): %s",
                  actions.region, name, image_id, error)
