"""Synchronisation scenarios, written once, run on any backend.

Each scenario is a function taking a :class:`Bed`: a master region, two
destination regions of the master target, one region of a second target
and, per region, an adapter of another project ("alice"). The unit suite
runs them on local folder regions, the integration suite on the real Glance
test bed. Every image name starts with the bed's unique prefix and every
adapter the engine gets is a :class:`View` that only lists those names, so
scenarios never see (nor touch) other tests' images on a shared bed.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import pytest

from glancesync.backends.base import RegionAdapter, Target
from glancesync.condition import Condition
from glancesync.config import TargetConfig
from glancesync.errors import ConflictError, GlanceSyncError, ImageNotFoundError
from glancesync.executor import Executor, RegionResult
from glancesync.facade import RunResult, StatusReport
from glancesync.listing import ListingLog, guard
from glancesync.image import (MARK_ORPHANED, MARK_RENAMED, MARK_RETIRED, Image, Provenance,
                              utc_stamp)
from glancesync.plan import RegionPlan, hold_removals
from tests.engine import DirectSource, plan_region, sync_region

KIB = 1024


class View(RegionAdapter):
    """A real adapter seen through a name prefix, recording every write call."""

    def __init__(self, inner: RegionAdapter, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix
        self.name = inner.name
        self.project_id = inner.project_id
        self.writes: list[tuple[str, str]] = []
        #: creations and updates with their properties and changes, in order
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def list_images(self) -> list[Image]:
        return [i for i in self.inner.list_images() if (i.name or "").startswith(self.prefix)]

    def get_image(self, image_id: str) -> Image:
        return self.inner.get_image(image_id)

    def create_image(self, name: str, **kwargs: Any) -> Image:
        self.writes.append(("create", name))
        self.calls.append(("create", name, dict(kwargs.get("properties") or {})))
        return self.inner.create_image(name, **kwargs)

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        self.writes.append(("upload", image_id))
        return self.inner.upload_data(image_id, chunks, size)

    def download_data(self, image_id: str) -> Iterator[bytes]:
        return self.inner.download_data(image_id)

    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        self.writes.append(("update", image_id))
        self.calls.append(("update", image_id, dict(changes)))
        return self.inner.update_image(image_id, changes, remove)

    def delete_image(self, image_id: str) -> None:
        self.writes.append(("delete", image_id))
        self.inner.delete_image(image_id)

    def deactivate_image(self, image_id: str) -> Image:
        self.writes.append(("deactivate", image_id))
        return self.inner.deactivate_image(image_id)

    def reactivate_image(self, image_id: str) -> Image:
        self.writes.append(("reactivate", image_id))
        return self.inner.reactivate_image(image_id)

    def list_members(self, image_id: str) -> list[str]:
        return self.inner.list_members(image_id)

    def add_member(self, image_id: str, project_id: str) -> None:
        self.writes.append(("add_member", image_id))
        self.inner.add_member(image_id, project_id)

    def remove_member(self, image_id: str, project_id: str) -> None:
        self.writes.append(("remove_member", image_id))
        self.inner.remove_member(image_id, project_id)


@dataclasses.dataclass
class Bed:
    """What a scenario works with (see the module docstring)."""

    prefix: str
    master: View
    regions: list[View]  #: destinations of the master target (RegionA, RegionB)
    other: View  #: the region of the second target (RegionC)
    foreign: Callable[[View], RegionAdapter]  #: same region, alice's project
    target_of: Callable[[View], Target]  #: the target (identity service) of a region
    strip_hashes: Callable[[View, str], None]  #: make an image hashless (old tools)
    project: Callable[[View, str], str]  #: id of a project, by name, in a region's target
    #: a project of the master's identity service that no other one has
    master_only_project: str = "gamma"
    seen: set[str] = dataclasses.field(default_factory=set)  #: statuses reported

    def n(self, short: str) -> str:
        return self.prefix + short

    def short(self, name: str) -> str:
        return name[len(self.prefix):]

    @property
    def every_region(self) -> list[View]:
        return [self.master, *self.regions, self.other]

    def cleanup(self) -> None:
        """Delete every image of this bed, in every region."""
        for view in self.every_region:
            for image in view.list_images():
                try:
                    if image.status == "deactivated":
                        view.inner.reactivate_image(image.id)
                    if image.protected:
                        view.inner.update_image(image.id, {"protected": False})
                    view.inner.delete_image(image.id)
                except ImageNotFoundError:
                    pass


class CorruptSource:
    """Master data, except for the images named in ``broken`` (a broken transfer)."""

    def __init__(self, master: RegionAdapter, broken: set[str]) -> None:
        self.direct = DirectSource(master)
        self.broken = broken

    def chunks(self, image: Image) -> Iterator[bytes]:
        if image.name in self.broken:
            yield b"corrupted" * 100
        else:
            yield from self.direct.chunks(image)


# -- helpers ------------------------------------------------------------------

def content(tag: str, size: int = 4 * KIB) -> bytes:
    """Deterministic bytes of ``size`` for ``tag``."""
    seed = hashlib.sha256(tag.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def put(adapter: RegionAdapter, name: str, data: bytes, *, visibility: str = "public",
        disk_format: str = "raw", container_format: str = "bare",
        **props: str) -> Image:
    """Create an active image (with data) through ``adapter``.

    Only admins may create public images: other projects use ``shared``.
    """
    image = adapter.create_image(name, visibility=visibility, disk_format=disk_format,
                                 container_format=container_format, properties=props)
    adapter.upload_data(image.id, [data], size=len(data))
    return adapter.get_image(image.id)


def put_copy(region: RegionAdapter, master: Image, data: bytes, **kw: Any) -> Image:
    """A regional copy of ``master`` as GlanceSync makes them: with its provenance."""
    record = Provenance.of(master, None).stamped()
    return put(region, master.name, data, **kw, **record.as_properties())


def target(name: str = "master", **kw: Any) -> TargetConfig:
    kw = {k: frozenset(v) if isinstance(v, (set, list, tuple)) else v for k, v in kw.items()}
    return TargetConfig(name=name, **kw)


def targets(bed: Bed, region: View) -> tuple[Target, Target]:
    return bed.target_of(bed.master), bed.target_of(region)


def plan(bed: Bed, region: View, tgt: TargetConfig, *,
         stalled_upload_age: float = 3600,
         now: datetime.datetime | None = None) -> RegionPlan:
    return plan_region(bed.master, region, tgt, stalled_upload_age=stalled_upload_age,
                       now=now, targets=targets(bed, region))


def sync(bed: Bed, region: View, tgt: TargetConfig, *, dry_run: bool = False,
         source: Any = None, stalled_upload_age: float = 3600,
         now: datetime.datetime | None = None) -> RegionResult:
    return sync_region(bed.master, region, tgt, source or DirectSource(bed.master),
                       dry_run=dry_run, stalled_upload_age=stalled_upload_age, now=now,
                       targets=targets(bed, region))


def status_exit(p: RegionPlan) -> int:
    """The exit status of ``--show-status`` for this one region."""
    return int(StatusReport(plans={p.region: p}).exit_status)


def sync_exit(result: RegionResult) -> int:
    """The exit status of a sync (or dry run) of this one region."""
    return int(RunResult(results={result.region: result},
                         plans={result.region: result.plan},
                         dry_run=result.dry_run).exit_status)


def no_op(bed: Bed, region: View, tgt: TargetConfig, *,
          now: datetime.datetime | None = None) -> RegionResult:
    """A second sync: it must write nothing; returns its result."""
    region.writes.clear()
    result = sync(bed, region, tgt, now=now)
    assert region.writes == [], region.writes
    assert result.errors == 0 and not result.plan.operations
    return result


def statuses(bed: Bed, p: RegionPlan) -> dict[str, str]:
    """Short name -> status value of each image; records every status line seen.

    A leftover's ``pending_cleanup`` line (after the status of the image of
    its name) is recorded, not returned: see :func:`cleanups`.
    """
    found: dict[str, str] = {}
    for item in p.statuses:
        found.setdefault(bed.short(item.name), item.status.value)
        bed.seen.add(item.status.value)
    return found


def cleanups(bed: Bed, p: RegionPlan) -> list[tuple[str, str]]:
    """(short name, leftover id) of each ``pending_cleanup`` line."""
    return [(bed.short(s.name), s.regional_id) for s in p.statuses
            if s.status.value == "pending_cleanup"]


def leftover(region: RegionAdapter, name: str, master: Image) -> Image:
    """A queued image as an interrupted upload of GlanceSync leaves it."""
    record = Provenance.of(master, "Master").stamped()
    return region.create_image(name, visibility="private", disk_format="raw",
                               container_format="bare", properties=record.as_properties())


def images(bed: Bed, region: RegionAdapter) -> dict[str, list[Image]]:
    """Prefixed images of ``region`` by short name (all statuses)."""
    result: dict[str, list[Image]] = {}
    for image in region.list_images():
        if (image.name or "").startswith(bed.prefix):
            result.setdefault(bed.short(image.name), []).append(image)
    return result


def one(bed: Bed, region: RegionAdapter, short: str) -> Image:
    found = images(bed, region).get(short, [])
    assert len(found) == 1, f"{short}: {found}"
    return found[0]


def snapshot(bed: Bed, region: View) -> dict[str, Any]:
    """Everything about the region's images: every field, property and byte."""
    state = {}
    for image in region.list_images():
        data = image.to_dict()
        if image.status == "active":
            digest = hashlib.sha256()
            for chunk in region.download_data(image.id):
                digest.update(chunk)
            data["data_sha256"] = digest.hexdigest()
        state[image.id] = data
    return state


# -- scenarios --------------------------------------------------------------------

def scenario_empty_regions_then_in_sync(bed: Bed) -> None:
    """Empty regions get every public image; a second run writes nothing."""
    a = put(bed.master, bed.n("a"), content("a"), type="base", sla="gold")
    put(bed.master, bed.n("b"), content("b", 9 * KIB))
    tgt = target()
    for region in bed.regions:
        assert statuses(bed, plan(bed, region, tgt)) == {"a": "pending_upload",
                                                         "b": "pending_upload"}
        result = sync(bed, region, tgt)
        assert (result.uploaded, result.errors) == (2, 0)
        assert result.bytes_uploaded == 13 * KIB
        copy = one(bed, region, "a")
        assert copy.checksum == a.checksum == md5(content("a"))
        assert copy.visibility == "public"
        assert copy.properties["type"] == "base" and copy.properties["sla"] == "gold"
        assert copy.owner == region.project_id and copy.id != a.id
        assert statuses(bed, plan(bed, region, tgt)) == {"a": "ok", "b": "ok"}
        region.writes.clear()
        again = sync(bed, region, tgt)
        assert region.writes == []
        assert (again.ok, again.uploaded, again.updated) == (2, 0, 0)


def scenario_mixed(bed: Bed) -> None:
    """ok, missing, metadata and checksum conflict side by side."""
    region = bed.regions[0]
    masters = {short: put(bed.master, bed.n(short), content(short), type="t1")
               for short in ("same", "missing", "meta", "conflict")}
    put_copy(region, masters["same"], content("same"), type="t1")
    put(region, bed.n("meta"), content("meta"), type="t0")
    before_conflict = put(region, bed.n("conflict"), content("other"), type="t1")
    tgt = target()
    assert statuses(bed, plan(bed, region, tgt)) == {
        "same": "ok", "missing": "pending_upload", "meta": "pending_metadata",
        "conflict": "error_checksum"}
    result = sync(bed, region, tgt)
    assert (result.uploaded, result.updated, result.ok, result.needs_operator) == (1, 1, 1, 1)
    assert one(bed, region, "meta").properties["type"] == "t1"
    after = one(bed, region, "conflict")
    assert (after.id, after.checksum) == (before_conflict.id, before_conflict.checksum)
    assert statuses(bed, plan(bed, region, tgt)) == {
        "same": "ok", "missing": "ok", "meta": "ok", "conflict": "error_checksum"}


def scenario_metadata_updates(bed: Bed) -> None:
    """metadata_set: listed properties set/removed, others untouched, visibility always."""
    region = bed.regions[0]
    put(bed.master, bed.n("img"), content("img"), type="new", nid="7")
    put(region, bed.n("img"), content("img"), visibility="private", type="old",
        sla="gold", foreign="keep")
    tgt = target(metadata_set={"type", "sla", "nid"})
    p = plan(bed, region, tgt)
    assert statuses(bed, p) == {"img": "pending_metadata"}
    sync(bed, region, tgt)
    image = one(bed, region, "img")
    assert image.visibility == "public"
    assert image.properties.get("type") == "new" and image.properties.get("nid") == "7"
    assert "sla" not in image.properties
    assert image.properties.get("foreign") == "keep"
    assert statuses(bed, plan(bed, region, tgt)) == {"img": "ok"}
    # An empty metadata_set manages every user property: the extra one goes.
    full = target()
    assert statuses(bed, plan(bed, region, full)) == {"img": "pending_metadata"}
    sync(bed, region, full)
    image = one(bed, region, "img")
    assert "foreign" not in image.properties
    assert image.properties.get("type") == "new"
    assert statuses(bed, plan(bed, region, full)) == {"img": "ok"}


def scenario_conflicts_explicit(bed: Bed) -> None:
    """replace, rename, dontupdate by checksum; rename wins over replace."""
    region = bed.regions[0]
    old = {}
    for short in ("rep", "ren", "dont", "both", "none"):
        put(bed.master, bed.n(short), content(short))
        old[short] = put(region, bed.n(short), content(short + "-old"))
    tgt = target(replace={old["rep"].checksum, old["both"].checksum},
                 rename={old["ren"].checksum, old["both"].checksum},
                 dontupdate={old["dont"].checksum})
    assert statuses(bed, plan(bed, region, tgt)) == {
        "rep": "pending_replace", "ren": "pending_rename", "dont": "ok_stalled_checksum",
        "both": "pending_rename", "none": "error_checksum"}
    result = sync(bed, region, tgt)
    assert (result.replaced, result.renamed, result.errors) == (1, 2, 0)
    found = images(bed, region)
    assert [i.checksum for i in found["rep"]] == [md5(content("rep"))]
    assert old["rep"].id not in {i.id for i in region.list_images()}
    for short in ("ren", "both"):
        assert [i.checksum for i in found[short]] == [md5(content(short))]
        (kept,) = found[short + ".old"]
        assert (kept.id, kept.checksum) == (old[short].id, old[short].checksum)
        assert kept.visibility == "private"
    for short in ("dont", "none"):
        assert [i.id for i in found[short]] == [old[short].id]
    assert statuses(bed, plan(bed, region, tgt)) == {
        "rep": "ok", "ren": "ok", "dont": "ok_stalled_checksum", "both": "ok",
        "none": "error_checksum"}


def scenario_conflicts_any(bed: Bed) -> None:
    """'any' directives; an explicit checksum beats 'any'."""
    region = bed.regions[1]
    old = {}
    for short in ("x", "y"):
        put(bed.master, bed.n(short), content(short))
        old[short] = put(region, bed.n(short), content(short + "-old"))
    tgt = target(rename={"any"}, replace={old["x"].checksum})
    assert statuses(bed, plan(bed, region, tgt)) == {"x": "pending_replace",
                                                     "y": "pending_rename"}
    stalled = target(dontupdate={"any"}, rename={"any"}, replace={"any"})
    assert statuses(bed, plan(bed, region, stalled)) == {"x": "ok_stalled_checksum",
                                                         "y": "ok_stalled_checksum"}
    sync(bed, region, tgt)
    found = images(bed, region)
    assert sorted(found) == ["x", "y", "y.old"]
    assert found["x"][0].checksum == md5(content("x"))


def scenario_protected_long_names_and_regional_duplicates(bed: Bed) -> None:
    """Issue 23 cases 2 and 3: a protected image is never replaced; NAME.old too long
    for Glance is refused before any change; two images of one name are never ok."""
    region = bed.regions[1]
    put(bed.master, bed.n("p"), content("p"))
    guarded = put(region, bed.n("p"), content("p-old"))
    region.update_image(guarded.id, {"protected": True})
    long_short = "l" * (252 - len(bed.n("")))
    long_name = bed.n(long_short)
    put(bed.master, long_name, content("l"))
    put(region, long_name, content("l-old"))
    twice = put(bed.master, bed.n("t"), content("t"))
    tgt = target(rename={"any"}, replace={"any", guarded.checksum})
    sync(bed, region, tgt)
    put_copy(region, twice, content("t-extra"))
    try:
        p = plan(bed, region, tgt)
        assert statuses(bed, p) == {"p": "error_protected", long_short: "error_name",
                                    "t": "error_regional_duplicate"}, statuses(bed, p)
        found = images(bed, region)
        assert [i.id for i in found["p"]] == [guarded.id] and len(found[long_short]) == 1
        assert region.get_image(guarded.id).protected
        assert status_exit(p) == 4
    finally:
        region.update_image(guarded.id, {"protected": False})


def scenario_forcesyncs_private(bed: Bed) -> None:
    """A private master image is synchronised only when forced, and stays private."""
    region = bed.regions[0]
    forced = put(bed.master, bed.n("forced"), content("forced"), visibility="private")
    put(bed.master, bed.n("private"), content("private"), visibility="private")
    tgt = target(forcesyncs={forced.id})
    assert statuses(bed, plan(bed, region, tgt)) == {"forced": "pending_upload"}
    sync(bed, region, tgt)
    found = images(bed, region)
    assert sorted(found) == ["forced"]
    assert found["forced"][0].visibility == "private"


def scenario_condition_admits_private(bed: Bed) -> None:
    """metadata_condition decides, private images included."""
    region = bed.regions[0]
    put(bed.master, bed.n("priv"), content("priv"), visibility="private", sync="yes")
    put(bed.master, bed.n("pub"), content("pub"))
    cond = Condition("image.user_properties.get('sync') == 'yes'")
    tgt = target(metadata_condition=cond)
    assert statuses(bed, plan(bed, region, tgt)) == {"priv": "pending_upload"}
    sync(bed, region, tgt)
    assert sorted(images(bed, region)) == ["priv"]
    assert one(bed, region, "priv").visibility == "private"


def _ami(bed: Bed, *, kernel_visibility: str = "public") -> dict[str, Image]:
    kernel = put(bed.master, bed.n("kernel"), content("kernel", 300 * KIB),
                 visibility=kernel_visibility, disk_format="aki", container_format="aki")
    ramdisk = put(bed.master, bed.n("ramdisk"), content("ramdisk", 100 * KIB),
                  disk_format="ari", container_format="ari")
    ami = put(bed.master, bed.n("ami"), content("ami", 8 * KIB), disk_format="ami",
              container_format="ami", kernel_id=kernel.id, ramdisk_id=ramdisk.id)
    return {"kernel": kernel, "ramdisk": ramdisk, "ami": ami}


def scenario_ami_translation_and_order(bed: Bed) -> None:
    """An AMI smaller than its kernel is uploaded after it, ids translated, in one run."""
    region = bed.regions[0]
    master = _ami(bed)
    tgt = target()
    p = plan(bed, region, tgt)
    assert statuses(bed, p) == {"kernel": "pending_upload", "ramdisk": "pending_upload",
                                "ami": "pending_ami"}
    order = [bed.short(op.name) for op in p.operations]
    assert order.index("ami") > order.index("kernel")
    assert order.index("ami") > order.index("ramdisk")
    result = sync(bed, region, tgt)
    assert (result.uploaded, result.errors) == (3, 0)
    kernel, ramdisk, ami = (one(bed, region, s) for s in ("kernel", "ramdisk", "ami"))
    assert ami.properties["kernel_id"] == kernel.id != master["kernel"].id
    assert ami.properties["ramdisk_id"] == ramdisk.id
    assert ami.disk_format == "ami" and kernel.disk_format == "aki"
    assert statuses(bed, plan(bed, region, tgt)) == {"kernel": "ok", "ramdisk": "ok",
                                                     "ami": "ok"}


def scenario_ami_kernel_not_synchronised(bed: Bed) -> None:
    """error_ami when the kernel is not synchronised: the AMI is not touched."""
    region = bed.regions[1]
    _ami(bed, kernel_visibility="private")
    tgt = target()
    assert statuses(bed, plan(bed, region, tgt)) == {"ramdisk": "pending_upload",
                                                     "ami": "error_ami"}
    result = sync(bed, region, tgt)
    assert result.needs_operator == 1
    assert sorted(images(bed, region)) == ["ramdisk"]


def scenario_obsolete(bed: Bed) -> None:
    """X_obsolete renames the regional X; each exception leaves images alone."""
    region = bed.regions[0]
    put(bed.master, bed.n("old_obsolete"), content("old"), visibility="private", eol="2030")
    put(region, bed.n("old"), content("old"), eol="none", keep="1")
    # Already renamed, wrong visibility: corrected.
    put(bed.master, bed.n("done_obsolete"), content("done"), visibility="private")
    put(region, bed.n("done_obsolete"), content("done"))
    # A synchronisable master "both" exists too: not applied (warning).
    put(bed.master, bed.n("both"), content("both-new"))
    put(bed.master, bed.n("both_obsolete"), content("both"))
    put(region, bed.n("both"), content("both"))
    # Different content in the region: not the obsolete image.
    put(bed.master, bed.n("diff_obsolete"), content("diff"))
    put(region, bed.n("diff"), content("diff-other"))
    tgt = target(obsolete_syncprops={"eol"}, replace={md5(content("both"))})
    p = plan(bed, region, tgt)
    assert statuses(bed, p)["old_obsolete"] == "pending_metadata"
    assert statuses(bed, p)["done_obsolete"] == "pending_metadata"
    assert any(bed.n("both_obsolete") in w for w in p.warnings)
    disabled = target(support_obsolete_images=False, obsolete_syncprops={"eol"})
    assert not [op for op in plan(bed, region, disabled).operations
                if op.kind.startswith("obsolete")]
    result = sync(bed, region, tgt)
    assert result.obsoleted == 2 and result.errors == 0
    found = images(bed, region)
    assert "old" not in found
    renamed = one(bed, region, "old_obsolete")
    assert renamed.visibility == "private"
    assert renamed.properties["eol"] == "2030" and renamed.properties["keep"] == "1"
    assert one(bed, region, "done_obsolete").visibility == "private"
    assert "both_obsolete" not in found
    assert one(bed, region, "both").checksum == md5(content("both-new"))
    assert one(bed, region, "diff").checksum == md5(content("diff-other"))
    assert "diff_obsolete" not in found


def scenario_obsolete_other_project(bed: Bed) -> None:
    """Another project's X is never renamed, even with only_tenant_images off."""
    region = bed.regions[1]
    put(bed.master, bed.n("theirs_obsolete"), content("theirs"))
    alice = bed.foreign(region)
    theirs = put(alice, bed.n("theirs"), content("theirs"), visibility="shared")
    p = plan(bed, region, target(only_tenant_images=False))
    assert p.operations == []
    sync(bed, region, target(only_tenant_images=False))
    assert one(bed, region, "theirs").id == theirs.id


def scenario_master_duplicates_and_inactive(bed: Bed) -> None:
    """Master duplicates are not synchronised and need an operator; non-active
    master images are not synchronised."""
    region = bed.regions[0]
    put(bed.master, bed.n("dup"), content("dup1"))
    put(bed.master, bed.n("dup"), content("dup2"))
    bed.master.create_image(bed.n("queued"), visibility="public", disk_format="raw",
                            container_format="bare")
    put(bed.master, bed.n("fine"), content("fine"))
    tgt = target()
    p = plan(bed, region, tgt)
    assert statuses(bed, p) == {"fine": "pending_upload", "dup": "error_duplicate"}
    assert [s.name for s in p.needs_operator] == [bed.n("dup")]
    result = sync(bed, region, tgt)
    assert result.needs_operator == 1 and result.uploaded == 1
    assert sorted(images(bed, region)) == ["fine"]


def scenario_other_projects_images(bed: Bed) -> None:
    """only_tenant_images on: ignored; off: counted, changed only by explicit replace."""
    region = bed.regions[1]
    alice = bed.foreign(region)
    for short in ("same", "diff", "repl"):
        put(bed.master, bed.n(short), content(short))
    same = put(alice, bed.n("same"), content("same"), visibility="private")
    diff = put(alice, bed.n("diff"), content("diff-alice"), visibility="shared")
    repl = put(alice, bed.n("repl"), content("repl-alice"), visibility="shared")
    off = target(only_tenant_images=False, replace={repl.checksum}, rename={"any"})
    assert statuses(bed, plan(bed, region, off)) == {
        "same": "ok", "diff": "error_checksum", "repl": "pending_replace"}
    on = target()
    assert statuses(bed, plan(bed, region, on)) == {
        "same": "pending_upload", "diff": "pending_upload", "repl": "pending_upload"}
    sync(bed, region, off)
    ids = {i.id for i in region.list_images()}
    assert same.id in ids and diff.id in ids and repl.id not in ids
    assert region.get_image(same.id).visibility == "private"
    ours = one(bed, region, "repl")
    assert ours.owner == region.project_id and ours.checksum == md5(content("repl"))
    sync(bed, region, on)
    found = images(bed, region)
    assert sorted(i.owner == region.project_id for i in found["same"]) == [False, True]
    assert region.get_image(diff.id).checksum == diff.checksum


def scenario_failed_upload_leaves_nothing(bed: Bed) -> None:
    """A corrupt transfer: no leftover image, the old image of a replace is kept,
    the other images are still synchronised."""
    region = bed.regions[0]
    put(bed.master, bed.n("new"), content("new"))
    put(bed.master, bed.n("rep"), content("rep"))
    put(bed.master, bed.n("good"), content("good", 64 * KIB))
    old = put(region, bed.n("rep"), content("rep-old"))
    tgt = target(replace={old.checksum})
    source = CorruptSource(bed.master, {bed.n("new"), bed.n("rep")})
    result = sync(bed, region, tgt, source=source)
    assert result.errors == 2 and sorted(result.failed) == [bed.n("new"), bed.n("rep")]
    assert result.uploaded == 1
    found = images(bed, region)
    assert sorted(found) == ["good", "rep"]
    assert found["good"][0].checksum == md5(content("good", 64 * KIB))
    assert [i.id for i in found["rep"]] == [old.id]
    assert statuses(bed, plan(bed, region, tgt)) == {"new": "pending_upload",
                                                     "rep": "pending_replace", "good": "ok"}


def scenario_leftover_queued_image(bed: Bed) -> None:
    """A queued image left by an interrupted upload of GlanceSync is deleted once
    abandoned, with a status line; an operator's queued image is never touched."""
    region = bed.regions[0]
    master = put(bed.master, bed.n("img"), content("img"))
    ours = leftover(region, bed.n("img"), master)
    operator = region.create_image(bed.n("img"), visibility="private", disk_format="raw",
                                   container_format="bare")
    tgt = target()
    young = plan(bed, region, tgt)
    assert statuses(bed, young) == {"img": "pending_upload"}
    assert [op.kind for op in young.operations] == ["upload"]
    p = plan(bed, region, tgt, stalled_upload_age=0)
    assert statuses(bed, p) == {"img": "pending_upload"}
    assert cleanups(bed, p) == [("img", ours.id)]
    assert [op.kind for op in p.operations] == ["upload", "cleanup"]
    result = sync(bed, region, tgt, stalled_upload_age=0)
    assert result.cleaned == 1 and result.success
    found = {i.id: i.status for i in images(bed, region)["img"]}
    assert found.pop(operator.id) == "queued" and ours.id not in found
    assert list(found.values()) == ["active"]
    assert cleanups(bed, plan(bed, region, tgt, stalled_upload_age=0)) == []


def scenario_second_target_with_condition(bed: Bed) -> None:
    """A target on the second Keystone with its own condition."""
    put(bed.master, bed.n("for-other"), content("o"), visibility="private", site="other")
    put(bed.master, bed.n("public"), content("p"))
    tgt = target("other", metadata_condition=Condition(
        "image.user_properties.get('site') == 'other' or image.is_public"))
    assert statuses(bed, plan(bed, bed.other, tgt)) == {"for-other": "pending_upload",
                                                        "public": "pending_upload"}
    sync(bed, bed.other, tgt)
    assert one(bed, bed.other, "for-other").owner == bed.other.project_id
    assert statuses(bed, plan(bed, bed.other, tgt)) == {"for-other": "ok", "public": "ok"}
    assert statuses(bed, plan(bed, bed.regions[0], target())) == {"public": "pending_upload"}


def scenario_dry_run_changes_nothing(bed: Bed) -> None:
    """A dry run with every kind of pending work changes no byte nor property."""
    a_region, b_region = bed.regions
    _ami(bed)
    put(bed.master, bed.n("meta"), content("meta"), type="new")
    put(a_region, bed.n("meta"), content("meta"), type="old", visibility="private")
    put(bed.master, bed.n("rep"), content("rep"))
    put(a_region, bed.n("rep"), content("rep-old"))
    put(bed.master, bed.n("ren"), content("ren"))
    put(a_region, bed.n("ren"), content("ren-old"))
    put(bed.master, bed.n("gone_obsolete"), content("gone"))
    put(a_region, bed.n("gone"), content("gone"))
    leftover(a_region, bed.n("meta"), one(bed, bed.master, "meta"))
    tgt = target(replace={md5(content("rep-old"))}, rename={md5(content("ren-old"))})
    before = {r.name: snapshot(bed, r) for r in bed.every_region}
    p = plan(bed, a_region, tgt, stalled_upload_age=0)
    kinds = {op.kind for op in p.operations}
    assert kinds == {"upload", "update_metadata", "replace", "rename", "obsolete_rename",
                     "cleanup"}
    for view in bed.every_region:
        view.writes.clear()
    for region in (a_region, b_region, bed.other):
        result = sync(bed, region, tgt, dry_run=True, stalled_upload_age=0)
        assert result.dry_run and result.errors == 0
    assert {r.name: snapshot(bed, r) for r in bed.every_region} == before
    assert all(view.writes == [] for view in bed.every_region)
    again = plan(bed, a_region, tgt, stalled_upload_age=0)
    assert statuses(bed, again) == statuses(bed, p)
    assert cleanups(bed, again) == cleanups(bed, p) != []


# -- the whole image (issue 9) -------------------------------------------------------

def scenario_hidden_images(bed: Bed) -> None:
    """Hidden images are listed, synchronised hidden, and never uploaded twice."""
    region = bed.regions[0]
    hid = put(bed.master, bed.n("hid"), content("hid"))
    bed.master.update_image(hid.id, {"os_hidden": True})
    put(bed.master, bed.n("vis"), content("vis"))
    # An operator hid the regional copy of "vis": it is still the copy.
    copy = put(region, bed.n("vis"), content("vis"))
    region.update_image(copy.id, {"os_hidden": True})
    assert one(bed, region, "vis").os_hidden  # listings see hidden images
    tgt = target()
    before = plan(bed, region, tgt)
    assert statuses(bed, before) == {"hid": "pending_upload", "vis": "pending_metadata"}
    assert "os_hidden" in before.status_of(bed.n("vis")).reason
    assert status_exit(before) == 3
    result = sync(bed, region, tgt)
    assert (result.uploaded, result.updated, result.errors, sync_exit(result)) == (1, 1, 0, 0)
    shown = one(bed, region, "vis")
    assert (shown.id, shown.os_hidden) == (copy.id, False)
    hidden = one(bed, region, "hid")
    assert hidden.os_hidden and hidden.visibility == "public"
    assert hidden.checksum == md5(content("hid"))
    after = plan(bed, region, tgt)
    assert statuses(bed, after) == {"hid": "ok", "vis": "ok"} and status_exit(after) == 0
    no_op(bed, region, tgt)


def scenario_deactivated_copies(bed: Bed) -> None:
    """A deactivated copy is the copy: reported, reactivated or kept, never duplicated."""
    region = bed.regions[0]
    put(bed.master, bed.n("img"), content("img"), type="t1")
    copy = put(region, bed.n("img"), content("img"), type="t0")
    region.deactivate_image(copy.id)
    assert one(bed, region, "img").status == "deactivated"  # listed
    report = target()
    before = plan(bed, region, report)
    assert statuses(bed, before) == {"img": "error_deactivated"}
    assert f"--activate {copy.id}" in before.status_of(bed.n("img")).reason
    assert status_exit(before) == 4 and before.operations == []
    region.writes.clear()
    result = sync(bed, region, report)
    assert region.writes == [] and sync_exit(result) == 4
    keep = target(deactivated_copies="keep")
    assert statuses(bed, plan(bed, region, keep)) == {"img": "pending_metadata"}
    result = sync(bed, region, keep)
    assert result.updated == 1 and sync_exit(result) == 0
    kept = one(bed, region, "img")
    assert (kept.id, kept.status, kept.properties["type"]) == (copy.id, "deactivated", "t1")
    assert statuses(bed, plan(bed, region, keep)) == {"img": "ok_deactivated"}
    no_op(bed, region, keep)
    reactivate = target(deactivated_copies="reactivate")
    before = plan(bed, region, reactivate)
    assert statuses(bed, before) == {"img": "pending_reactivate"}
    assert status_exit(before) == 3
    result = sync(bed, region, reactivate)
    assert sync_exit(result) == 0 and result.uploaded == 0
    again = one(bed, region, "img")
    assert (again.id, again.status) == (copy.id, "active")
    after = plan(bed, region, reactivate)
    assert statuses(bed, after) == {"img": "ok"} and status_exit(after) == 0
    no_op(bed, region, reactivate)


def scenario_deactivated_master(bed: Bed) -> None:
    """A deactivated master image is reported, never synchronised; copies left alone."""
    region = bed.regions[1]
    master = put(bed.master, bed.n("old"), content("old"))
    put(bed.master, bed.n("gone"), content("gone"))
    copy = put(region, bed.n("old"), content("old"))
    bed.master.deactivate_image(master.id)
    bed.master.deactivate_image(one(bed, bed.master, "gone").id)
    tgt = target()
    before = plan(bed, region, tgt)
    assert statuses(bed, before) == {"old": "info_master_deactivated",
                                     "gone": "info_master_deactivated"}
    assert before.status_of(bed.n("old")).regional_id == copy.id
    assert before.operations == [] and status_exit(before) == 0
    region.writes.clear()
    result = sync(bed, region, tgt)
    assert region.writes == [] and sync_exit(result) == 0
    assert sorted(images(bed, region)) == ["old"]
    assert one(bed, region, "old").status == "active"


def scenario_tags(bed: Bed) -> None:
    """Tags compared and copied (added and removed) on upload and update; sync_tags off."""
    region = bed.regions[0]
    tagged = put(bed.master, bed.n("tagged"), content("tagged"))
    bed.master.update_image(tagged.id, {"tags": ["gpu", "lts"]})
    new = put(bed.master, bed.n("new"), content("new"))
    bed.master.update_image(new.id, {"tags": ["edge"]})
    copy = put_copy(region, tagged, content("tagged"))
    region.update_image(copy.id, {"tags": ["lts", "old"]})
    off = target(sync_tags=False)
    assert statuses(bed, plan(bed, region, off)) == {"tagged": "ok", "new": "pending_upload"}
    tgt = target()
    before = plan(bed, region, tgt)
    assert statuses(bed, before) == {"tagged": "pending_metadata", "new": "pending_upload"}
    assert "tags differ: +gpu -old" in before.status_of(bed.n("tagged")).reason
    result = sync(bed, region, tgt)
    assert (result.updated, result.uploaded, sync_exit(result)) == (1, 1, 0)
    assert sorted(one(bed, region, "tagged").tags) == ["gpu", "lts"]
    assert one(bed, region, "tagged").id == copy.id
    assert one(bed, region, "new").tags == ["edge"]
    after = plan(bed, region, tgt)
    assert statuses(bed, after) == {"tagged": "ok", "new": "ok"} and status_exit(after) == 0
    no_op(bed, region, tgt)


SIGNATURE = {"img_signature": "c2lnbmF0dXJl", "img_signature_hash_method": "SHA-256",
             "img_signature_key_type": "RSA-PSS",
             "img_signature_certificate_uuid": "7d3b6e4a-0000-4000-8000-000000000000"}


def scenario_signed_images(bed: Bed) -> None:
    """Signature properties are set after the verified upload; at upload the region
    refuses the data (error_refused, exit 4, nothing left); drop never copies them."""
    a_region, b_region = bed.regions
    master = put(bed.master, bed.n("signed"), content("signed"), os_distro="cirros")
    bed.master.update_image(master.id, dict(SIGNATURE))
    tgt = target()
    assert statuses(bed, plan(bed, a_region, tgt)) == {"signed": "pending_upload"}
    a_region.calls.clear()
    result = sync(bed, a_region, tgt)
    assert (result.uploaded, result.errors, sync_exit(result)) == (1, 0, 0)
    copy = one(bed, a_region, "signed")
    assert {k: copy.properties.get(k) for k in SIGNATURE} == SIGNATURE
    created = [props for call, _, props in a_region.calls if call == "create"]
    assert created and not set(SIGNATURE) & set(created[0])  # not at creation
    assert statuses(bed, plan(bed, a_region, tgt)) == {"signed": "ok"}
    no_op(bed, a_region, tgt)
    at_upload = target(signature_properties="at-upload")
    before = plan(bed, b_region, at_upload)
    assert statuses(bed, before) == {"signed": "pending_upload"}
    result = sync(bed, b_region, at_upload)
    (refused,) = result.plan.statuses
    assert refused.status.value == "error_refused"
    assert "certificate" in refused.reason.lower()
    bed.seen.add(refused.status.value)
    assert (result.errors, result.needs_operator, sync_exit(result)) == (0, 1, 4)
    assert images(bed, b_region) == {}  # the refused image was deleted
    drop = target(signature_properties="drop")
    sync(bed, b_region, drop)
    dropped = one(bed, b_region, "signed")
    assert not set(SIGNATURE) & set(dropped.properties)
    assert dropped.properties["os_distro"] == "cirros"
    assert statuses(bed, plan(bed, b_region, drop)) == {"signed": "ok"}
    no_op(bed, b_region, drop)


def scenario_images_without_checksum(bed: Bed) -> None:
    """A master image without any hash: error_unverifiable, or copied verified by size
    and by the hash of the bytes sent; a hashless regional image is not said to differ."""
    a_region, b_region = bed.regions
    data = content("nohash", 6 * KIB)
    master = put(bed.master, bed.n("nohash"), data)
    bed.strip_hashes(bed.master, master.id)
    assert one(bed, bed.master, "nohash").checksum is None
    same = put(a_region, bed.n("nohash"), data)  # the region holds the same bytes
    tgt = target()
    before = plan(bed, a_region, tgt)
    assert statuses(bed, before) == {"nohash": "error_unverifiable"}
    reason = before.status_of(bed.n("nohash")).reason
    assert "no checksum" in reason and "differs" not in reason
    assert status_exit(before) == 4
    a_region.writes.clear()
    result = sync(bed, a_region, tgt)
    assert a_region.writes == [] and sync_exit(result) == 4
    assert statuses(bed, plan(bed, b_region, tgt)) == {"nohash": "error_unverifiable"}
    allowed = target(sync_without_checksum=True)
    before = plan(bed, b_region, allowed)
    assert statuses(bed, before) == {"nohash": "pending_upload"} and status_exit(before) == 3
    result = sync(bed, b_region, allowed)
    assert (result.uploaded, result.errors, sync_exit(result)) == (1, 0, 0)
    copy = one(bed, b_region, "nohash")
    assert copy.checksum == md5(data) and copy.size == len(data)
    assert copy.provenance.master_hash == "sha512:" + hashlib.sha512(data).hexdigest()
    after = plan(bed, b_region, allowed)
    assert statuses(bed, after) == {"nohash": "ok"} and status_exit(after) == 0
    no_op(bed, b_region, allowed)
    # Not our verified copy: the content cannot be compared, and no reason says
    # a checksum differs.
    conflict = plan(bed, a_region, allowed)
    assert statuses(bed, conflict) == {"nohash": "error_checksum"}
    assert "cannot be compared" in conflict.status_of(bed.n("nohash")).reason
    assert one(bed, a_region, "nohash").id == same.id
    # A regional image without checksum facing a master image with one.
    put(bed.master, bed.n("hashed"), content("hashed"))
    bare = put(a_region, bed.n("hashed"), content("hashed"))
    bed.strip_hashes(a_region, bare.id)
    p = plan(bed, a_region, tgt)
    assert statuses(bed, p)["hashed"] == "error_checksum"
    reason = p.status_of(bed.n("hashed")).reason
    assert "has no checksum" in reason and "None" not in reason


def scenario_members(bed: Bed) -> None:
    """sync_members: sharing follows the master's, mapped by project name and domain;
    a project that the region lacks is reported, never guessed."""
    region = bed.other  # a second identity service: other project ids
    master = put(bed.master, bed.n("shared"), content("shared"), visibility="shared")
    bed.master.add_member(master.id, bed.project(bed.master, "alpha"))
    bed.master.add_member(master.id, bed.project(bed.master, bed.master_only_project))
    put(bed.master, bed.n("public"), content("public"))
    tgt = target("other", sync_members=True, metadata_condition=Condition(
        "image.visibility in ('shared', 'public')"))
    before = plan(bed, region, tgt)
    assert statuses(bed, before) == {"shared": "pending_upload", "public": "pending_upload"}
    assert status_exit(before) == 3
    result = sync(bed, region, tgt)
    assert (result.uploaded, result.errors, sync_exit(result)) == (2, 0, 0)
    copy = one(bed, region, "shared")
    alpha, beta = bed.project(region, "alpha"), bed.project(region, "beta")
    assert copy.visibility == "shared"
    assert region.list_members(copy.id) == [alpha]
    assert region.list_members(one(bed, region, "public").id) == []
    after = plan(bed, region, tgt)
    assert statuses(bed, after) == {"shared": "info_members_unmapped", "public": "ok"}
    assert bed.master_only_project in after.status_of(bed.n("shared")).reason
    assert status_exit(after) == 0
    no_op(bed, region, tgt)
    # An operator shares the copy with beta: the master's sharing wins.
    region.add_member(copy.id, beta)
    p = plan(bed, region, tgt)
    assert statuses(bed, p)["shared"] == "pending_metadata"
    assert f"-{beta}" in p.status_of(bed.n("shared")).reason
    sync(bed, region, tgt)
    assert region.list_members(copy.id) == [alpha]
    # Without sync_members, members are not compared.
    region.add_member(copy.id, beta)
    plain = target("other", metadata_condition=tgt.metadata_condition)
    assert statuses(bed, plan(bed, region, plain)) == {"shared": "ok", "public": "ok"}


def scenario_adapter_contract_of_the_whole_image(bed: Bed) -> None:
    """Every region backend answers the same: hidden, tags, deactivation, members."""
    region = bed.regions[1]
    image = put(region, bed.n("img"), content("img"))
    assert region.update_image(image.id, {"os_hidden": True}).os_hidden
    assert one(bed, region, "img").os_hidden  # listed while hidden
    assert sorted(region.update_image(image.id, {"tags": ["a", "b"]}).tags) == ["a", "b"]
    assert region.update_image(image.id, {"tags": ["b"], "nid": "1"}).tags == ["b"]
    emptied = region.update_image(image.id, {"tags": []})
    assert emptied.tags == [] and emptied.properties["nid"] == "1"
    assert region.deactivate_image(image.id).status == "deactivated"
    assert one(bed, region, "img").status == "deactivated"  # listed while deactivated
    assert region.deactivate_image(image.id).status == "deactivated"  # again: no change
    assert region.reactivate_image(image.id).status == "active"
    assert region.reactivate_image(image.id).status == "active"
    assert region.list_members(image.id) == []  # public: no members
    region.update_image(image.id, {"visibility": "shared"})
    alpha = bed.project(region, "alpha")
    region.add_member(image.id, alpha)
    assert region.list_members(image.id) == [alpha]
    with pytest.raises(ConflictError):
        region.add_member(image.id, alpha)
    region.remove_member(image.id, alpha)
    assert region.list_members(image.id) == []
    with pytest.raises(ImageNotFoundError):
        region.remove_member(image.id, alpha)


# -- the image lifecycle (issue 13) ---------------------------------------------------

HOUR = datetime.timedelta(hours=1)


def created(image: Image) -> datetime.datetime:
    """An image's creation time, as Glance and the local store write it."""
    when = datetime.datetime.fromisoformat(image.created_at.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


def unchanged_by_dry_run(bed: Bed, region: View, tgt: TargetConfig, **kw: Any) -> RegionResult:
    """A dry run of ``region``: it changes no byte nor property anywhere."""
    before = {view.name: snapshot(bed, view) for view in bed.every_region}
    for view in bed.every_region:
        view.writes.clear()
    result = sync(bed, region, tgt, dry_run=True, **kw)
    assert all(view.writes == [] for view in bed.every_region)
    assert {view.name: snapshot(bed, view) for view in bed.every_region} == before
    return result


def _removal_scenario(policy: str) -> Callable[[Bed], None]:
    """The scenario of one removal_policy word, after a deletion and an unselection."""

    def scenario(bed: Bed) -> None:
        region = bed.regions[0]
        masters = {short: put(bed.master, bed.n(short), content(short))
                   for short in ("gone", "unselected", "stays")}
        tgt = target(removal_policy=policy, removal_grace_hours=0)
        assert sync(bed, region, tgt).uploaded == 3
        copies = {short: one(bed, region, short) for short in masters}
        bed.master.delete_image(masters["gone"].id)
        bed.master.update_image(masters["unselected"].id, {"visibility": "private"})
        before = plan(bed, region, tgt)
        if policy == "keep":  # today's behaviour: nothing reported, nothing touched
            assert statuses(bed, before) == {"stays": "ok"} and before.operations == []
            no_op(bed, region, tgt)
            assert {s: (i.id, i.status, i.os_hidden) for s in copies
                    for i in [one(bed, region, s)]} == {
                s: (c.id, "active", False) for s, c in copies.items()}
            return
        assert statuses(bed, before) == {"gone": "pending_removal",
                                         "unselected": "pending_removal", "stays": "ok"}
        assert "gone from the master region" in before.status_of(bed.n("gone")).reason
        assert "no longer selected" in before.status_of(bed.n("unselected")).reason
        assert [op.kind.value for op in before.operations] == [policy, policy]
        assert status_exit(before) == 3
        assert sync_exit(unchanged_by_dry_run(bed, region, tgt)) == 3
        result = sync(bed, region, tgt)
        assert (result.errors, sync_exit(result)) == (0, 0)
        if policy == "delete":
            assert (result.deleted, result.retired) == (2, 0)
            assert sorted(images(bed, region)) == ["stays"]
        else:
            assert (result.deleted, result.retired) == (0, 2)
            for short in ("gone", "unselected"):
                image = one(bed, region, short)
                assert image.id == copies[short].id
                assert (image.status, image.os_hidden) == (
                    ("active", True) if policy == "hide" else ("deactivated", False))
                assert image.marks[MARK_RETIRED] == policy
        after = plan(bed, region, tgt)
        expected = {"stays": "ok"}
        if policy != "delete":
            expected.update(gone="ok_retired", unselected="ok_retired")
        assert statuses(bed, after) == expected and status_exit(after) == 0
        no_op(bed, region, tgt)
        if policy == "delete":
            return
        # Selected again: the copy the policy retired is the copy, as it was.
        bed.master.update_image(masters["unselected"].id, {"visibility": "public"})
        back = plan(bed, region, tgt)
        assert statuses(bed, back)["unselected"] == (
            "pending_metadata" if policy == "hide" else "pending_reactivate")
        assert sync(bed, region, tgt).uploaded == 0
        image = one(bed, region, "unselected")
        assert (image.id, image.status, image.os_hidden, image.marks) == (
            copies["unselected"].id, "active", False, {})
        assert statuses(bed, plan(bed, region, tgt)) == {
            "gone": "ok_retired", "unselected": "ok", "stays": "ok"}
        no_op(bed, region, tgt)

    scenario.__name__ = f"scenario_removal_policy_{policy}"
    scenario.__doc__ = (f"removal_policy = {policy}: copies of a deleted and of an unselected"
                        " master image; a dry run first, a second run that does nothing")
    return scenario


def scenario_removal_grace_period(bed: Bed) -> None:
    """The grace period counts from the sync that first noticed (recorded on the copy);
    a master image back within it clears the mark."""
    region = bed.regions[1]
    masters = {short: put(bed.master, bed.n(short), content(short))
               for short in ("gone", "back", "stays")}
    tgt = target(removal_policy="hide")  # removal_grace_hours = 24
    sync(bed, region, tgt)
    bed.master.delete_image(masters["gone"].id)
    bed.master.update_image(masters["back"].id, {"visibility": "private"})
    t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    first = plan(bed, region, tgt, now=t0)
    assert statuses(bed, first) == {"gone": "info_removal_grace",
                                    "back": "info_removal_grace", "stays": "ok"}
    assert "to hide in 24 h" in first.status_of(bed.n("gone")).reason
    assert [op.kind.value for op in first.operations] == ["update_metadata"] * 2
    assert status_exit(first) == 3  # the sync records since when
    unchanged_by_dry_run(bed, region, tgt, now=t0)
    sync(bed, region, tgt, now=t0)
    noticed = one(bed, region, "gone")
    assert noticed.marks == {MARK_ORPHANED: utc_stamp(t0)} and not noticed.os_hidden
    waiting = plan(bed, region, tgt, now=t0 + HOUR)
    assert statuses(bed, waiting)["gone"] == "info_removal_grace"
    assert "to hide in 23.0 h" in waiting.status_of(bed.n("gone")).reason
    assert waiting.operations == [] and status_exit(waiting) == 0
    no_op(bed, region, tgt, now=t0 + HOUR)
    # Selected again within the grace period: the mark goes, the clock stops.
    bed.master.update_image(masters["back"].id, {"visibility": "public"})
    returned = plan(bed, region, tgt, now=t0 + HOUR)
    assert statuses(bed, returned)["back"] == "pending_metadata"
    assert "its master image is back" in returned.status_of(bed.n("back")).reason
    sync(bed, region, tgt, now=t0 + HOUR)
    assert one(bed, region, "back").marks == {}
    due = t0 + 24 * HOUR + datetime.timedelta(seconds=1)
    assert statuses(bed, plan(bed, region, tgt, now=t0 + 23 * HOUR))["gone"] == (
        "info_removal_grace")
    assert statuses(bed, plan(bed, region, tgt, now=due)) == {
        "gone": "pending_removal", "back": "ok", "stays": "ok"}
    assert sync(bed, region, tgt, now=due).retired == 1
    assert one(bed, region, "gone").os_hidden
    assert not one(bed, region, "back").os_hidden
    no_op(bed, region, tgt, now=due)


def scenario_retention_of_old_copies(bed: Bed) -> None:
    """keep_old_copies bounds the NAME.old copies renames leave (the oldest go); an
    .old image no rename marked is never touched."""
    region = bed.regions[0]
    first = put(bed.master, bed.n("img"), content("v1"))
    put(bed.master, bed.n("stays"), content("stays"))
    local_build = put(region, bed.n("img"), content("v0"))
    by_hand = put(region, bed.n("img.old"), content("hand"), visibility="private")
    tgt = target(rename={"any"}, removal_policy="delete", removal_grace_hours=0,
                 keep_old_copies=1)
    assert statuses(bed, plan(bed, region, tgt)) == {"img": "pending_rename",
                                                     "stays": "pending_upload"}
    assert sync(bed, region, tgt).renamed == 1
    renamed = region.get_image(local_build.id)
    assert renamed.name == bed.n("img.old") and MARK_RENAMED in renamed.marks
    assert statuses(bed, plan(bed, region, tgt)) == {"img": "ok", "stays": "ok"}
    # A new version of the master image: the previous copy is renamed too.
    copy_v1 = one(bed, region, "img")
    bed.master.delete_image(first.id)
    put(bed.master, bed.n("img"), content("v2"))
    assert statuses(bed, plan(bed, region, tgt)) == {"img": "pending_rename", "stays": "ok"}
    assert sync(bed, region, tgt).renamed == 1
    # (The first rename happened a day earlier.)
    region.update_image(local_build.id, {MARK_RENAMED: "2020-01-01T00:00:00Z"})
    unlimited = target(rename={"any"}, removal_policy="delete", removal_grace_hours=0)
    assert statuses(bed, plan(bed, region, unlimited)) == {"img": "ok", "stays": "ok"}
    p = plan(bed, region, tgt)
    assert statuses(bed, p) == {"img": "ok", "img.old": "pending_removal", "stays": "ok"}
    line = p.statuses[[s.name for s in p.statuses].index(bed.n("img.old"))]
    assert line.regional_id == local_build.id and "keep_old_copies = 1" in line.reason
    assert status_exit(p) == 3
    unchanged_by_dry_run(bed, region, tgt)
    result = sync(bed, region, tgt)
    assert (result.deleted, result.errors, sync_exit(result)) == (1, 0, 0)
    assert sorted(i.id for i in images(bed, region)["img.old"]) == sorted(
        [copy_v1.id, by_hand.id])
    no_op(bed, region, tgt)
    # keep_old_copies = 0 with hide: the marked copy is hidden, the other left alone.
    none_kept = target(rename={"any"}, removal_policy="hide", removal_grace_hours=0,
                       keep_old_copies=0)
    assert sync(bed, region, none_kept).retired == 1
    assert region.get_image(copy_v1.id).os_hidden
    assert not region.get_image(by_hand.id).os_hidden
    no_op(bed, region, none_kept)


def scenario_removal_guards(bed: Bed) -> None:
    """Never touched: a protected copy, another project's copy, an image without
    provenance with a synchronised name; nothing removed in a run with an error."""
    region = bed.regions[0]
    masters = {short: put(bed.master, bed.n(short), content(short))
               for short in ("prot", "gone", "stays")}
    sync(bed, region, target())
    protected = one(bed, region, "prot")
    region.update_image(protected.id, {"protected": True})
    # An image named like a master image, made without GlanceSync, never adopted:
    # its master image is deleted before any sync saw them together.
    plain_master = put(bed.master, bed.n("plain"), content("plain"))
    plain = put(region, bed.n("plain"), content("plain"))
    # Another project's image carrying GlanceSync's record of a copy of "gone".
    theirs = put(bed.foreign(region), bed.n("theirs"), content("gone"), visibility="shared",
                 **Provenance.of(masters["gone"], None).stamped().as_properties())
    for image in (masters["prot"], masters["gone"], plain_master):
        bed.master.delete_image(image.id)
    tgt = target(removal_policy="delete", removal_grace_hours=0)
    p = plan(bed, region, tgt)
    assert statuses(bed, p) == {"prot": "info_removal_skipped", "gone": "pending_removal",
                                "theirs": "info_removal_skipped", "stays": "ok"}
    assert "protected" in p.status_of(bed.n("prot")).reason
    assert "owned by project" in p.status_of(bed.n("theirs")).reason
    assert [op.regional.id for op in p.operations] == [one(bed, region, "gone").id]
    # An error earlier in the region's run: no removal step is taken.
    put(bed.master, bed.n("new"), content("new"))
    failed = sync(bed, region, tgt, source=CorruptSource(bed.master, {bed.n("new")}))
    assert (failed.errors, failed.deleted, failed.postponed) == (1, 0, 1)
    assert "postponed" in failed.plan.status_of(bed.n("gone")).reason
    # Each operation's outcome says so (the run report's and the metrics' source).
    assert [(o.kind.value, o.name, o.result) for o in failed.outcomes] == [
        ("upload", bed.n("new"), "failed"), ("delete", bed.n("gone"), "postponed")]
    assert "postponed" in failed.outcomes[1].error
    assert sorted(images(bed, region)) == ["gone", "plain", "prot", "stays", "theirs"]
    result = sync(bed, region, tgt)
    assert (result.uploaded, result.deleted, result.errors) == (1, 1, 0)
    found = images(bed, region)
    assert sorted(found) == ["new", "plain", "prot", "stays", "theirs"]
    assert [i.id for i in found["plain"]] == [plain.id]
    assert [i.id for i in found["theirs"]] == [theirs.id]
    assert found["prot"][0].protected
    no_op(bed, region, tgt)
    region.update_image(protected.id, {"protected": False})


def scenario_removal_max_deletes(bed: Bed) -> None:
    """max_deletes bounds the removal steps of a run, all regions together: a run that
    would take more takes none of them (error_max_deletes, exit status 4), and does the
    rest of its work; within the limit, every step is taken."""
    pair = bed.regions
    masters = {short: put(bed.master, bed.n(short), content(short))
               for short in ("gone1", "gone2", "stays")}
    tgt = target(removal_policy="delete", removal_grace_hours=0)
    for region in pair:
        assert sync(bed, region, tgt).uploaded == 3
    for short in ("gone1", "gone2"):
        bed.master.delete_image(masters[short].id)
    put(bed.master, bed.n("new"), content("new"))

    def run(max_deletes: int, *, dry_run: bool = False) -> RunResult:
        """Plan both regions, apply max_deletes to them together, execute."""
        plans = [plan(bed, region, tgt) for region in pair]
        assert hold_removals(plans, max_deletes) == 4
        results = [Executor(region, DirectSource(bed.master), dry_run=dry_run).execute(p)
                   for region, p in zip(pair, plans)]
        return RunResult(results={r.region: r for r in results},
                         plans={p.region: p for p in plans}, dry_run=dry_run)

    before = {view.name: snapshot(bed, view) for view in bed.every_region}
    dry = run(3, dry_run=True)
    assert {view.name: snapshot(bed, view) for view in bed.every_region} == before
    assert int(dry.exit_status) == 4
    held = run(3)
    assert int(held.exit_status) == 4
    for region in pair:
        p, result = held.plans[region.name], held.results[region.name]
        assert statuses(bed, p) == {"gone1": "error_max_deletes", "gone2": "error_max_deletes",
                                    "stays": "ok", "new": "pending_upload"}
        assert "4 removal steps, more than max_deletes = 3" in p.status_of(
            bed.n("gone1")).reason
        assert (result.uploaded, result.deleted, result.errors) == (1, 0, 0)
        assert sorted(images(bed, region)) == ["gone1", "gone2", "new", "stays"]
    allowed = run(4)
    assert int(allowed.exit_status) == 0
    for region in pair:
        assert allowed.results[region.name].deleted == 2
        assert sorted(images(bed, region)) == ["new", "stays"]
        no_op(bed, region, tgt)


def scenario_removal_master_shrank(bed: Bed) -> None:
    """A master listing that shows far fewer images than on the last sync takes no
    removal step (error_master_shrank, exit status 4), run after run, until
    confirmed (max_master_shrink 100); the rest of the work is done."""
    pair = bed.regions
    masters = {short: put(bed.master, bed.n(short), content(short))
               for short in ("gone1", "gone2", "gone3", "stays")}
    tgt = target(removal_policy="delete", removal_grace_hours=0)
    with tempfile.TemporaryDirectory() as folder:
        log = ListingLog(Path(folder) / "master-listing.json")
        for region in pair:
            assert sync(bed, region, tgt).uploaded == 4
        assert guard(log, "master", len(bed.master.list_images()), 50, [],
                     record=True) == 0
        for short in ("gone1", "gone2", "gone3"):
            bed.master.delete_image(masters[short].id)

        def run(max_shrink: int) -> RunResult:
            plans = [plan(bed, region, tgt) for region in pair]
            guard(ListingLog(log.path), "master", len(bed.master.list_images()), max_shrink,
                  plans, record=True)
            results = [Executor(region, DirectSource(bed.master)).execute(p)
                       for region, p in zip(pair, plans)]
            return RunResult(results={r.region: r for r in results},
                             plans={p.region: p for p in plans})

        for _ in range(2):  # the short listing is no new reference
            held = run(50)
            assert int(held.exit_status) == 4
            for region in pair:
                p = held.plans[region.name]
                assert statuses(bed, p) == {"gone1": "error_master_shrank",
                                            "gone2": "error_master_shrank",
                                            "gone3": "error_master_shrank", "stays": "ok"}
                assert "shows 1 images, 4 on the last run" in p.status_of(
                    bed.n("gone1")).reason
                assert held.results[region.name].deleted == 0
                assert sorted(images(bed, region)) == ["gone1", "gone2", "gone3", "stays"]
        confirmed = run(100)
        assert int(confirmed.exit_status) == 0
        for region in pair:
            assert confirmed.results[region.name].deleted == 3
            assert sorted(images(bed, region)) == ["stays"]
            no_op(bed, region, tgt)


def scenario_adoption_of_copies_made_before_provenance(bed: Bed) -> None:
    """A copy without provenance with the master's name and content is adopted once;
    other names, other content, other projects never are."""
    region = bed.regions[1]
    masters = {short: put(bed.master, bed.n(short), content(short))
               for short in ("same", "differs", "theirs", "stays")}
    same = put(region, bed.n("same"), content("same"))
    elsewhere = put(region, bed.n("same-by-another-name"), content("same"))
    differs = put(region, bed.n("differs"), content("differs-here"))
    theirs = put(bed.foreign(region), bed.n("theirs"), content("theirs"), visibility="shared")
    put_copy(region, masters["stays"], content("stays"))
    tgt = target(only_tenant_images=False)
    p = plan(bed, region, tgt)
    assert statuses(bed, p) == {"same": "pending_metadata", "differs": "error_checksum",
                                "theirs": "ok", "stays": "ok"}
    assert "record provenance" in p.status_of(bed.n("same")).reason
    result = sync(bed, region, tgt)
    assert (result.updated, result.uploaded, result.errors) == (1, 0, 0)
    adopted = region.get_image(same.id)
    assert adopted.provenance.is_copy_of(masters["same"])
    assert adopted.provenance.copied_at == utc_stamp(created(adopted))
    assert adopted.properties == same.properties  # no user property added
    for image in (elsewhere, differs, theirs):
        assert region.get_image(image.id).provenance is None
    assert statuses(bed, plan(bed, region, tgt))["same"] == "ok"
    no_op(bed, region, tgt)
    # Adopted, it follows the lifecycle; the others never do.
    for short in ("same", "differs", "theirs"):
        bed.master.delete_image(masters[short].id)
    removal = target(only_tenant_images=False, removal_policy="delete",
                     removal_grace_hours=0)
    assert statuses(bed, plan(bed, region, removal)) == {"same": "pending_removal",
                                                         "stays": "ok"}
    assert sync(bed, region, removal).deleted == 1
    assert sorted(images(bed, region)) == ["differs", "same-by-another-name", "stays",
                                           "theirs"]
    no_op(bed, region, removal)


def scenario_copy_renamed_by_hand(bed: Bed) -> None:
    """A copy renamed by hand is recognised by its provenance (issue 23, case 8):
    ``info_renamed``, nothing uploaded, no diagnosis of lock trouble; renamed
    back, it is synchronised again."""
    region = bed.regions[0]
    put(bed.master, bed.n("r"), content("r"))
    tgt = target()
    assert sync(bed, region, tgt).uploaded == 1
    copy = one(bed, region, "r")
    region.update_image(copy.id, {"name": bed.n("r-prod")})
    p = plan(bed, region, tgt)
    assert statuses(bed, p) == {"r": "info_renamed"}
    assert p.status_of(bed.n("r")).regional_id == copy.id
    assert not [w for w in p.warnings if "lock" in w]
    assert not p.operations
    no_op(bed, region, tgt)
    assert sorted(images(bed, region)) == ["r-prod"]
    region.update_image(copy.id, {"name": bed.n("r")})
    assert statuses(bed, plan(bed, region, tgt)) == {"r": "ok"}


SCENARIOS: list[Callable[[Bed], None]] = [
    scenario_empty_regions_then_in_sync,
    scenario_mixed,
    scenario_metadata_updates,
    scenario_conflicts_explicit,
    scenario_conflicts_any,
    scenario_protected_long_names_and_regional_duplicates,
    scenario_forcesyncs_private,
    scenario_condition_admits_private,
    scenario_ami_translation_and_order,
    scenario_ami_kernel_not_synchronised,
    scenario_obsolete,
    scenario_obsolete_other_project,
    scenario_master_duplicates_and_inactive,
    scenario_other_projects_images,
    scenario_failed_upload_leaves_nothing,
    scenario_leftover_queued_image,
    scenario_second_target_with_condition,
    scenario_dry_run_changes_nothing,
    scenario_hidden_images,
    scenario_deactivated_copies,
    scenario_deactivated_master,
    scenario_tags,
    scenario_signed_images,
    scenario_images_without_checksum,
    scenario_members,
    scenario_adapter_contract_of_the_whole_image,
    *(_removal_scenario(policy) for policy in ("keep", "hide", "deactivate", "delete")),
    scenario_removal_grace_period,
    scenario_retention_of_old_copies,
    scenario_removal_guards,
    scenario_removal_max_deletes,
    scenario_removal_master_shrank,
    scenario_adoption_of_copies_made_before_provenance,
    scenario_copy_renamed_by_hand,
]

def run(bed: Bed, scenario: Callable[[Bed], None]) -> None:
    """Run one scenario and always clean the bed's images afterwards."""
    try:
        scenario(bed)
    finally:
        try:
            bed.cleanup()
        except GlanceSyncError:
            # Cleaning is best effort on a shared bed; the scenario's own
            # outcome is what the test reports.
            pass

# The release scenarios (issue 26) live in their own module, which uses the
# helpers above: imported last.
from tests import rollout_scenarios  # noqa: E402

SCENARIOS += rollout_scenarios.SCENARIOS
