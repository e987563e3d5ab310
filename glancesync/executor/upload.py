"""The upload path: a new regional copy, from creation to what it replaces.

One upload operation runs these stages, in order (:class:`Upload`):

1. the data made ready (:meth:`~glancesync.executor.stream.Stream.prepare`:
   downloaded and converted before anything is opened in the region, so
   a failed download creates nothing), unless the region copies it;
2. the image created, private and unprotected, under an id chosen here;
3. filled: streamed from this host, or copied by the region itself with
   its fall-back to streaming (:mod:`glancesync.executor.servercopy`);
4. verified: ``active`` with the hashes of the bytes sent (:func:`verify`);
   then, with ``validate_command``, checked by the operator's command
   (:mod:`glancesync.executor.validation`): refused, it stays private;
5. published: its visibility, protection, ``os_hidden``, tags and late
   properties (signatures), then shared with its members;
6. recorded: its id for the images that refer to it (kernels, ramdisks),
   offered as a source of server-side copies, counted;
7. what it replaces retired: the old image deleted (``replace``) or
   renamed ``NAME.old`` and made private (``rename``).

A failure in stages 2 to 5 deletes the new image (:func:`discard`) and
leaves the old one as it was; so does a stop request, which aborts the
data under way (stages 1 and 3) and lets no new image be created. But an
image whose every byte was sent and that the store is still ``saving`` is
never deleted, whatever ends the wait for it (``saving_timeout``:
:class:`~glancesync.errors.StillSavingError`, a stop request). Every change
goes through the region's
:class:`~glancesync.executor.actions.RegionActions`.
"""
from __future__ import annotations

from typing import Any, Protocol

from glancesync.errors import (ChecksumMismatchError, ConflictError, GlanceSyncError,
                               ImageNotFoundError, ProtectedImageError, ServiceError,
                               TransferError, UsageError)
from glancesync.executor.actions import LOG, RegionActions, describe
from glancesync.executor.results import RegionResult
from glancesync.executor.servercopy import ServerSideCopy
from glancesync.executor.steps import resolve_refs, share
from glancesync.executor.stream import NewImage, Stream
from glancesync.executor.validation import Validation, ValidationError, mark_output
from glancesync.image import (MARK_RENAMED, PROVENANCE_COPY_HASH, PROVENANCE_HASH, Image,
                              content_hash, utc_stamp)
from glancesync.plan.model import OLD_SUFFIX, Operation, OperationKind
from glancesync.plan.validation import (FAILED, MARK_VALIDATED, MARK_VALIDATION,
                                        MARK_VALIDATION_OUTPUT, PASSED, PENDING)
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
    validation: Validation | None


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
        #: Why the master's id was not kept (``keep_image_id``), once the region refused it.
        self.id_refused = ""

    def apply(self, result: RegionResult) -> None:
        """Make the new copy, record it, then retire what it replaces.

        :raises ProtectedImageError: the image to replace is protected
            (read again first: it may have been protected since the plan).
        """
        self.check_old()
        try:
            expected, streamed = self.make()
        finally:
            self.note_id(result)
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

    def note_id(self, result: RegionResult) -> None:
        """The image's status says whether the master's id was kept."""
        status = result.plan.status_of(self.op.name) if result.plan else None
        if status is None or self.op.image_id is None:
            return
        asked = f"keep_image_id: to be created with id {self.op.image_id}"
        if self.id_refused:
            told = f"{self.id_refused} ({self.target.image_id})"
        elif self.actions.dry_run:
            return
        else:
            told = f"keep_image_id: created with id {self.op.image_id}"
        status.reason = (status.reason.replace(asked, told) if asked in status.reason
                         else f"{status.reason}; {told}")

    def creation_fields(self) -> dict[str, Any]:
        """What the image is created with: private, unprotected, the master's formats,
        limits and properties, kernel and ramdisk ids resolved, the provenance
        stamped now."""
        fields = self.op.changes
        properties = dict(fields.get("properties") or {})
        properties.update(resolve_refs(self.run, self.op))
        if self.op.provenance is not None:
            properties.update(self.op.provenance.stamped().as_properties())
        if self.run.validation is not None:
            properties[MARK_VALIDATION] = PENDING
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
        self.run.stream.stop.check(self.actions.region, op.name)  # nothing new once stopped
        self.create()
        try:
            if transfer.server_side:
                filled, expected, streamed = self.run.server_copy.copy(op, target, transfer)
            else:
                filled = self.run.stream.stream(op, target, transfer, expected.size)
                streamed = True
            sent = copy_hash = None
            if not self.actions.dry_run:
                sent = verify(self.run.stream, filled, expected, op.name, transfer)
                if transfer.convert_from and filled is not None:
                    copy_hash = content_hash(filled)
            self.validate()
            self.publish(sent, copy_hash)
            share(self.actions, op.name, target.image_id, op.add_members, ())
        except ValidationError:
            raise  # the copy is kept, private, for an operator to look at
        except GlanceSyncError:
            if target.image_id in self.run.stream.saving:
                LOG.warning("%s: image %s (%s) is left to the store, which may still be"
                            " writing it: not deleted", self.actions.region, op.name,
                            target.image_id)
            else:
                discard(self.actions, target.image_id, op.name)
            raise
        return expected, streamed

    def create(self) -> None:
        """Stage 2: create the image; with ``keep_image_id``, under the master's id if
        the region accepts it, else under a new one (the image's status says why)."""
        op, adapter = self.op, self.actions.adapter
        if op.image_id is None:
            self.actions.act("create", f"image {op.name}", self.target.create, adapter)
            return
        try:
            self.actions.act("create", f"image {op.name} with id {op.image_id}"
                             " (keep_image_id)", self.target.create, adapter, op.image_id)
            return
        except ConflictError as error:
            self.id_refused = (f"keep_image_id: the region refused id {op.image_id} (taken"
                               " by an image this project cannot see, or used before and"
                               f" deleted: Glance never reuses an id; {error.message});"
                               " the copy gets a new id")
        LOG.warning("%s: image %s: %s", self.actions.region, op.name, self.id_refused)
        self.actions.act("create", f"image {op.name} with a new id", self.target.create,
                         adapter)

    def validate(self) -> None:
        """Stage 4b: the region's ``validate_command`` checks the verified copy.

        :raises ValidationError: it refused the copy, which stays private,
            marked ``failed`` with the command's last lines.
        """
        validation, op, image_id = self.run.validation, self.op, self.target.image_id
        if validation is None:
            return
        ref = RegionRef.parse(self.actions.region)
        env = validation.environment(ref.name, image_id, op.name, op.master.id)
        env["GLANCESYNC_TARGET"] = ref.target
        ended = self.actions.act("validate", f"image {op.name} ({image_id}) with"
                                 " validate_command", validation.run, env, self.actions.region)
        if ended is None or ended.passed:  # None: a dry run
            return
        why = ("stopped at validate_timeout" if ended.returncode is None
               else f"exit status {ended.returncode}")
        try:
            self.actions.act("mark", f"image {op.name} ({image_id}): validation failed",
                             self.actions.adapter.update_image, image_id,
                             {MARK_VALIDATION: FAILED,
                              MARK_VALIDATION_OUTPUT: mark_output(ended.tail)})
        except GlanceSyncError as error:  # still marked pending: reported all the same
            LOG.error("%s: could not mark %s (%s) as failed: %s", self.actions.region,
                      op.name, image_id, error)
        raise ValidationError(
            f"validate_command refused new copy {image_id} ({why}); it stays private, any"
            f" previous copy in service; last lines: {' | '.join(ended.tail[-5:])}",
            list(ended.tail), region=self.actions.region, image=op.name)

    def publish(self, sent: str | None, copy_hash: str | None = None) -> None:
        """Give the verified copy what it was created without (``sent``: the hash of
        the bytes sent of a master without checksum, for its provenance;
        ``copy_hash``: the region's hash of a verified converted copy)."""
        fields = self.op.changes
        final: dict[str, Any] = {}
        if sent is not None:
            final[PROVENANCE_HASH] = sent
        if copy_hash is not None:
            final[PROVENANCE_COPY_HASH] = copy_hash
        if fields.get("visibility", "private") != "private":
            final["visibility"] = fields["visibility"]
        if fields.get("protected"):
            final["protected"] = True
        if fields.get("os_hidden"):
            final["os_hidden"] = True
        if fields.get("tags"):
            final["tags"] = list(fields["tags"])
        final.update(fields.get("late_properties") or {})
        if self.run.validation is not None:
            final.update({MARK_VALIDATION: PASSED, MARK_VALIDATED: utc_stamp()})
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
