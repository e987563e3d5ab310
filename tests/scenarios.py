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
import hashlib
from typing import Any, Callable, Iterable, Iterator, Mapping

from glancesync.backends.base import RegionAdapter
from glancesync.condition import Condition
from glancesync.config import TargetConfig
from glancesync.errors import GlanceSyncError, ImageNotFoundError
from glancesync.executor import RegionResult
from glancesync.image import Image, Provenance
from glancesync.plan import RegionPlan
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

    def list_images(self) -> list[Image]:
        return [i for i in self.inner.list_images() if (i.name or "").startswith(self.prefix)]

    def get_image(self, image_id: str) -> Image:
        return self.inner.get_image(image_id)

    def create_image(self, name: str, **kwargs: Any) -> Image:
        self.writes.append(("create", name))
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
        return self.inner.update_image(image_id, changes, remove)

    def delete_image(self, image_id: str) -> None:
        self.writes.append(("delete", image_id))
        self.inner.delete_image(image_id)


@dataclasses.dataclass
class Bed:
    """What a scenario works with (see the module docstring)."""

    prefix: str
    master: View
    regions: list[View]  #: destinations of the master target (RegionA, RegionB)
    other: View  #: the region of the second target (RegionC)
    foreign: Callable[[View], RegionAdapter]  #: same region, alice's project
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


def target(name: str = "master", **kw: Any) -> TargetConfig:
    kw = {k: frozenset(v) if isinstance(v, (set, list, tuple)) else v for k, v in kw.items()}
    return TargetConfig(name=name, **kw)


def plan(bed: Bed, region: View, tgt: TargetConfig, *,
         stalled_upload_age: float = 3600) -> RegionPlan:
    return plan_region(bed.master, region, tgt, stalled_upload_age=stalled_upload_age)


def sync(bed: Bed, region: View, tgt: TargetConfig, *, dry_run: bool = False,
         source: Any = None, stalled_upload_age: float = 3600) -> RegionResult:
    return sync_region(bed.master, region, tgt, source or DirectSource(bed.master),
                       dry_run=dry_run, stalled_upload_age=stalled_upload_age)


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
    for short in ("same", "missing", "meta", "conflict"):
        put(bed.master, bed.n(short), content(short), type="t1")
    put(region, bed.n("same"), content("same"), type="t1")
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


SCENARIOS: list[Callable[[Bed], None]] = [
    scenario_empty_regions_then_in_sync,
    scenario_mixed,
    scenario_metadata_updates,
    scenario_conflicts_explicit,
    scenario_conflicts_any,
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
