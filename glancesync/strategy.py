"""How the data of a new copy reaches a region, decided per image (pure).

Two strategies: ``stream`` (the master data goes through this host: one
download into the cache, one upload per region) and ``glance-download``
(the region's Glance pulls the image itself from a region of the same
Keystone, the master or a region that already holds a verified copy; this
host carries no bytes). The ``transfer`` option asks for ``stream``,
``glance-download`` or ``auto``; :meth:`RegionTransfer.choose` decides
what is possible for one master image and says why, and the plan records
the decision (:class:`Transfer`) on each upload operation.

A region may also store another disk format than the master's
(``convert_to``): the master data is converted on this host with
``qemu-img`` and streamed (a server-side copy keeps the source's format).
A converted copy has other hashes than the master by nature: it is the same
content when its provenance record names the master's current content and
its disk format is the wanted one (:meth:`RegionTransfer.same_copy`).
"""
from __future__ import annotations

import dataclasses
import enum

from glancesync.image import Image, content_hash
from glancesync.options import CONVERT_FORMATS

__all__ = ["GLANCE_DOWNLOAD", "RegionTransfer", "Strategy", "Transfer"]

#: The import method of a server-side copy between regions of one Keystone.
GLANCE_DOWNLOAD = "glance-download"

#: Visibilities that let any credential of the Keystone read an image.
_READABLE_BY_ALL = ("public", "community")


class Strategy(str, enum.Enum):
    """How a new copy gets its data."""

    STREAM = "stream"  #: through this host: from the cache, uploaded
    GLANCE_DOWNLOAD = GLANCE_DOWNLOAD  #: the region copies it from a region of its Keystone

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class Transfer:
    """The strategy of one upload operation and what it sends.

    ``disk_format`` is the format of the new copy; ``convert_from`` the
    master's format when the data is converted on this host (else None).
    ``source_region`` is the region a ``glance-download`` copies from first
    (the master; a region holding a verified copy may be used instead when
    the copy starts). ``note`` says why the strategy is not the one asked
    for (empty when it is).
    """

    strategy: Strategy
    disk_format: str | None = None
    convert_from: str | None = None
    source_region: str | None = None
    note: str = ""

    @property
    def server_side(self) -> bool:
        """True when the region copies the data itself."""
        return self.strategy is Strategy.GLANCE_DOWNLOAD

    def describe(self) -> str:
        """``glance-download from Master``, ``stream``, ``stream, qcow2 to raw``, and why."""
        text = str(self.strategy)
        if self.server_side and self.source_region:
            text += f" from {self.source_region}"
        if self.convert_from:
            text += f", {self.convert_from} to {self.disk_format}"
        if self.note:
            text += f" ({self.note})"
        return text


@dataclasses.dataclass(frozen=True)
class RegionTransfer:
    """What decides how copies reach one region: its options and what it offers.

    ``transfer`` and ``convert_to`` are the region's options (see
    :meth:`glancesync.config.TargetConfig.for_region`). ``region`` is the
    region's name in its catalog and ``master_region`` the master's.
    ``same_keystone``: the region is registered in the master's Keystone
    (same target location); ``same_credential``: it is reached with the
    master's credential (the ``master`` target), so every master image
    GlanceSync sees is visible to it; ``project_id`` is its credential's
    project; ``import_methods`` what ``GET /v2/info/import`` advertised
    (only asked when a server-side copy may be used).
    """

    transfer: str = "stream"
    convert_to: str | None = None
    region: str = ""
    master_region: str | None = None
    same_keystone: bool = False
    same_credential: bool = False
    project_id: str | None = None
    import_methods: frozenset[str] = frozenset()

    def disk_format(self, master: Image) -> str | None:
        """The disk format of the copy of ``master`` in this region.

        ``convert_to`` when set and the master's format can be converted
        (raw, qcow2, vmdk, vdi, vhd, vhdx); else the master's (kernels,
        ramdisks, ISO images are never converted, nor images without a
        checksum: their data cannot be verified before converting).
        """
        if (self.convert_to and master.disk_format in CONVERT_FORMATS
                and content_hash(master) is not None):
            return self.convert_to
        return master.disk_format

    def converts(self, master: Image) -> bool:
        """True when the copy of ``master`` is converted to another disk format."""
        return self.disk_format(master) != master.disk_format

    def same_copy(self, master: Image, regional: Image) -> bool:
        """True when ``regional`` holds ``master``'s content in the wanted format.

        Without conversion: the same hashes (:meth:`Image.same_content`).
        With: the copy's provenance names ``master`` and its current
        content, the copy has the wanted disk format, and its hash is the
        one recorded when it was verified against the converted file
        (``copy_hash``; a copy made before GlanceSync recorded it has none).
        The record proves nothing about who wrote it: the caller also
        checks that the copy is the project's own
        (:func:`glancesync.plan.matching.same_content`).
        """
        if not self.converts(master):
            return master.same_content(regional)
        record = regional.provenance
        return (regional.disk_format == self.disk_format(master)
                and record is not None and record.is_copy_of(master)
                and (record.copy_hash is None
                     or record.copy_hash == content_hash(regional)))

    def can_read(self, master: Image) -> bool:
        """True when the region's credential can read ``master`` in the master region."""
        return (self.same_credential or master.visibility in _READABLE_BY_ALL
                or (master.owner is not None and master.owner == self.project_id))

    def choose(self, master: Image) -> Transfer:
        """The strategy of a new copy of ``master``, and why when not the one asked."""
        fmt = self.disk_format(master)
        convert_from = master.disk_format if fmt != master.disk_format else None
        if self.transfer == Strategy.STREAM.value:
            return Transfer(Strategy.STREAM, fmt, convert_from)
        note = ""
        if convert_from:
            note = "a server-side copy keeps the source's disk format"
        elif content_hash(master) is None:
            note = "the master image has no checksum: only the bytes sent can be verified"
        elif not self.same_keystone:
            note = f"{self.region or 'the region'} is not in the master's Keystone"
        elif GLANCE_DOWNLOAD not in self.import_methods:
            note = f"{self.region or 'the region'} does not offer {GLANCE_DOWNLOAD}"
        elif not self.can_read(master):
            note = "the region's credential cannot read the master image"
        if note:
            return Transfer(Strategy.STREAM, fmt, convert_from, note=note)
        return Transfer(Strategy.GLANCE_DOWNLOAD, fmt, source_region=self.master_region)
