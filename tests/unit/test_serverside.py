"""Server-side copies (glance-download) in the executor, on in-memory regions.

The memory backend of the tests copies images between regions of a space
as Glance does (data, formats, a few properties). Fault adapters are
subclasses that make the copy fail, stall or be refused the way a Glance
region does (measured on the test bed); the test bed's own tests prove the
same on real Glance. Nothing of ours is patched.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import textwrap
from pathlib import Path

import pytest

from glancesync import backends
from glancesync.errors import ConflictError, ConnectionFailure, ServiceError
from glancesync.executor import Executor
from glancesync.facade import GlanceSync
from glancesync.plan import Status, make_plan
from glancesync.retry import RetryPolicy
from glancesync.selection import select_master
from glancesync.serverside import CopySources, Outcome, watch_import
from glancesync.strategy import RegionTransfer, Strategy
from glancesync.transfer import ImageCache, MasterImageSource
from tests import memory_backend, scenarios
from tests.memory_backend import SPACES, MemoryRegionAdapter

PROJECT = "p-sync"
SIZE = 3 * 1024 * 1024 + 17
IMPORTS = frozenset({"glance-download"})


@pytest.fixture(autouse=True)
def clean_spaces():
    SPACES.clear()
    yield
    SPACES.clear()


def region(name: str, adapter_class: type = MemoryRegionAdapter, **kw) -> MemoryRegionAdapter:
    images = SPACES.setdefault("s", {}).setdefault(name, {})
    return adapter_class(f"master:{name}", images, PROJECT, space="s", imports=True, **kw)


class Run:
    """A master region with one image, a cache, and the run's copy sources."""

    def __init__(self, tmp_path: Path) -> None:
        self.master = region("Master")
        self.data = scenarios.content("server side", SIZE)
        self.image = scenarios.put(self.master, "img", self.data, os_distro="debian",
                                   gs_custom="kept", min_note="x")
        self.source = MasterImageSource(self.master, ImageCache(tmp_path / "cache"))
        self.sources = CopySources()
        self.sleeps: list[float] = []

    def transfer(self, name: str, **kw) -> RegionTransfer:
        values = dict(transfer="auto", region=name, master_region="Master",
                      same_keystone=True, same_credential=True, import_methods=IMPORTS)
        values.update(kw)
        return RegionTransfer(**values)

    def sync(self, adapter: MemoryRegionAdapter, *, dry_run: bool = False,
             import_timeout: float = 60.0, **transfer):
        name = adapter.name.split(":")[1]
        plan = make_plan(adapter.name, select_master(self.master.list_images(), PROJECT),
                         adapter.list_images(), PROJECT, scenarios.target(),
                         transfer=self.transfer(name, **transfer))
        executor = Executor(adapter, self.source, dry_run=dry_run, progress=False,
                            sources=self.sources, import_timeout=import_timeout,
                            retry=RetryPolicy(retries=2, sleep=self.sleeps.append))
        return executor.execute(plan)


@pytest.fixture
def run(tmp_path) -> Run:
    return Run(tmp_path)


def copies(adapter: MemoryRegionAdapter):
    return [image for image in adapter.list_images() if image.name == "img"]


def test_the_region_copies_the_image_itself_and_it_is_completed_and_verified(run):
    region_a = region("RegionA")
    result = run.sync(region_a)
    assert result.success and result.uploaded == 1
    assert (result.copied_server_side, result.bytes_server_side) == (1, SIZE)
    assert result.bytes_uploaded == 0
    assert run.source.bytes_downloaded == 0 and run.source.downloads == 0
    (copy,) = copies(region_a)
    assert copy.status == "active" and run.image.same_content(copy)
    assert copy.visibility == "public"  # published after the verification
    # The memory region, as Glance, copied only os_distro: the rest was set again.
    assert copy.properties == {"os_distro": "debian", "gs_custom": "kept", "min_note": "x"}
    assert copy.provenance.is_copy_of(run.image)
    assert run.sources.holders("master", run.image.id) == {"RegionA": copy.id}


def test_later_copies_take_the_data_from_a_region_holding_one(run, caplog):
    region_a, region_b, region_d = region("RegionA"), region("RegionB"), region("RegionD")
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        for adapter in (region_a, region_b, region_d):
            assert run.sync(adapter).copied_server_side == 1
    sources = [r.getMessage().rsplit(" from ", 1)[1] for r in caplog.records
               if "importing image img" in r.getMessage()]
    assert sources == ["Master (glance-download)", "RegionA (glance-download)",
                       "RegionB (glance-download)"]
    assert all(run.image.same_content(copies(a)[0]) for a in (region_a, region_b, region_d))


def test_choose_spreads_the_copies_over_the_sources():
    sources = CopySources()
    picks = []
    for name in ("A", "B", "C", "D", "E"):
        picks.append(sources.choose("t", name, "Master", "m-1").region)
        sources.add("t", name, "m-1", f"copy-{name}")
    assert picks == ["Master", "A", "B", "C", "D"]  # each source serves one copy
    assert sources.choose("other", "X", "Master", "m-1").region == "Master"  # another target
    sources.add("t", "Z", "m-1", "z")
    sources.discard("t", "Z", "m-1")
    assert "Z" not in sources.holders("t", "m-1")


def test_dry_run_says_where_from_and_calls_nothing(run, caplog):
    region_a = region("RegionA")
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result = run.sync(region_a, dry_run=True)
    assert result.uploaded == 1 and copies(region_a) == []
    assert "would import image img (3.0 MiB) from Master (glance-download)" in caplog.text


class WrongSource(MemoryRegionAdapter):
    """A region asked to copy an image that is not there: the task fails, image queued."""

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        super().import_image(image_id, source_region=source_region,
                             source_image_id="00000000-0000-0000-0000-000000000000")


class Stalling(MemoryRegionAdapter):
    """A region whose copy never ends (its source froze): the image stays importing."""

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        with memory_backend._LOCK:
            stored = self._images[image_id]
            stored.image = dataclasses.replace(stored.image, status="importing")
            stored.tasks.append(memory_backend.ImportTask("t-1", "processing"))


class Refusing(MemoryRegionAdapter):
    """A region that refuses the copy at once (an old Glance, the method disabled)."""

    def import_image(self, image_id: str, **kw) -> None:
        raise ServiceError("import failed (HTTP 400): Unknown import method name "
                           "'glance-download'.", status_code=400, region=self.name)


class LockedByAFailedCopy(MemoryRegionAdapter):
    """Glance's stale lock after a copy failed mid-data: 409 "Image has active task"."""

    def import_image(self, image_id: str, **kw) -> None:
        with memory_backend._LOCK:
            self._images[image_id].tasks.append(memory_backend.ImportTask(
                "t-0", "failure", "Task failed due to Internal Error"))
        raise ConflictError("Image has active task", status_code=409, region=self.name)


class AnswerLost(MemoryRegionAdapter):
    """The region accepted the copy, the answer was lost: a task is under way, image queued."""

    def import_image(self, image_id: str, **kw) -> None:
        with memory_backend._LOCK:
            self._images[image_id].tasks.append(memory_backend.ImportTask("t-1", "pending"))
        raise ConnectionFailure("connection reset by peer", region=self.name)


def created_ids(adapter: MemoryRegionAdapter) -> list[str]:
    return [image.id for image in adapter.list_images()]


@pytest.mark.parametrize("adapter_class, why", [
    (WrongSource, "import task task-1 failed: Task failed due to Internal Error"),
    (Refusing, "refused: "),
    (LockedByAFailedCopy, "refused: "),
])
def test_a_failed_or_refused_copy_is_streamed_into_the_same_image(run, caplog,
                                                                   adapter_class, why):
    failing = region("RegionA", adapter_class)
    with caplog.at_level(logging.INFO):
        result = run.sync(failing)
    assert result.success and result.uploaded == 1
    assert (result.copied_server_side, result.bytes_uploaded) == (0, SIZE)
    assert run.source.bytes_downloaded == SIZE
    (copy,) = copies(failing)
    assert copy.status == "active" and run.image.same_content(copy)
    assert "streaming it instead" in caplog.text and why in caplog.text
    assert "deleting unfinished" not in caplog.text  # same image, same id


@pytest.mark.parametrize("adapter_class", [Stalling, AnswerLost])
def test_a_copy_still_going_on_is_deleted_and_the_image_streamed_anew(run, caplog,
                                                                      adapter_class):
    stuck = region("RegionA", adapter_class)
    with caplog.at_level(logging.INFO):
        result = run.sync(stuck, import_timeout=3)
    assert result.success and result.uploaded == 1 and result.bytes_uploaded == SIZE
    (copy,) = copies(stuck)  # the stuck image is gone: one image left
    assert copy.status == "active" and run.image.same_content(copy)
    assert "deleting unfinished server-side copy img" in caplog.text
    if adapter_class is Stalling:
        assert "still importing after 3 s" in caplog.text
        assert sum(run.sleeps) == pytest.approx(3)  # the deadline, in paced polls
        assert max(run.sleeps) <= 5


def test_a_failed_relay_is_not_offered_again(run):
    region_a, region_b = region("RegionA"), region("RegionB")
    assert run.sync(region_a).copied_server_side == 1
    (copy_a,) = copies(region_a)
    # Master served RegionA, and one more: RegionA's copy is the next source.
    assert run.sources.choose("another", "RegionX", "Master", run.image.id).region == "Master"
    region_a.delete_image(copy_a.id)  # the relay copy disappears
    result = run.sync(region_b)
    assert result.success and result.bytes_uploaded == SIZE  # streamed after all
    assert "RegionA" not in run.sources.holders("master", run.image.id)
    assert run.sources.holders("master", run.image.id)["RegionB"] == copies(region_b)[0].id


def test_watch_import_reports_each_outcome():
    adapter = region("RegionA")
    image = adapter.create_image("w", disk_format="raw", container_format="bare")
    sleeps: list[float] = []
    seen = watch_import(adapter, image.id, 2.0, sleep=sleeps.append)
    assert seen.outcome is Outcome.STALLED and sum(sleeps) == pytest.approx(2.0)
    adapter.import_image(image.id, source_region="Master", source_image_id="nothing")
    assert watch_import(adapter, image.id, 2.0, sleep=sleeps.append).outcome is Outcome.FAILED
    adapter.delete_image(image.id)
    assert watch_import(adapter, image.id, 2.0, sleep=sleeps.append).outcome is Outcome.GONE


# --- through the facade: the strategy of each region -----------------------------

@pytest.fixture
def memory():
    backends.register(memory_backend.BACKEND)
    yield
    backends.unregister("memory")


def facade(tmp_path, monkeypatch, extra: str = "") -> GlanceSync:
    """Master, RegionA, RegionB copy server-side; RegionC is in another space."""
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    text = memory_backend.config_text(tmp_path, textwrap.dedent(f"""
        space_project = {PROJECT}
        space_import = true
        transfer = auto
        [other]
        type = memory
        space = elsewhere
        space_regions = RegionC
        space_project = {PROJECT}
        transfer = auto
    """) + textwrap.dedent(extra))
    return GlanceSync(io.StringIO(text), progress=False)


def test_each_region_gets_the_strategy_it_can_use(memory, tmp_path, monkeypatch):
    gs = facade(tmp_path, monkeypatch, "[master:RegionB]\ntransfer = stream\n")
    scenarios.put(gs.adapter("Master"), "img", scenarios.content("x", SIZE))
    report = gs.status(["RegionA", "RegionB", "other:RegionC"])
    by_region = {s.region: s for s in report.statuses}
    assert by_region["master:RegionA"].transfer == "glance-download"
    assert by_region["master:RegionB"].reason == "missing in the region; stream"
    assert by_region["other:RegionC"].reason.endswith(
        "stream (RegionC is not in the master's Keystone)")
    result = gs.sync(["RegionA", "RegionB", "other:RegionC"])
    assert result.exit_status == 0
    assert [result.results[r].copied_server_side for r in sorted(result.results)] == [1, 0, 0]
    assert result.bytes_downloaded == SIZE  # once, for RegionB and RegionC
    assert {s.status for s in gs.status(["RegionA", "RegionB", "other:RegionC"]).statuses} \
        == {Status.OK}


def test_copies_found_ok_serve_the_next_regions(memory, tmp_path, monkeypatch, caplog):
    gs = facade(tmp_path, monkeypatch)
    scenarios.put(gs.adapter("Master"), "img", scenarios.content("x", SIZE))
    assert gs.sync(["RegionA"]).exit_status == 0
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        result = gs.sync(["RegionA", "RegionB"])  # RegionA ok: a source for RegionB
    assert result.results["master:RegionB"].copied_server_side == 1
    assert "importing image img (3.0 MiB) from RegionA" in caplog.text
    assert result.bytes_downloaded == 0


def test_plan_records_stream_when_the_region_offers_no_copy(memory, tmp_path, monkeypatch):
    gs = facade(tmp_path, monkeypatch, "[master:RegionA]\ntransfer = glance-download\n")
    scenarios.put(gs.adapter("Master"), "img", scenarios.content("x", SIZE))
    gs.adapter("RegionA").inner.imports = False  # an older Glance
    plan = gs.plan_region("RegionA")
    (op,) = plan.operations
    assert op.transfer.strategy is Strategy.STREAM
    assert op.transfer.note == "RegionA does not offer glance-download"
    assert any("not possible, streamed instead" in w for w in plan.warnings)


def test_a_server_side_copy_keeps_only_the_planned_properties(run):
    """Issue 21, case 5: the region copies the source's hw_*, trait:*... on import;
    what the plan did not ask for (outside metadata_set) is removed again."""
    master = region("Master")
    image = scenarios.put(master, "hw", b"hw" * 5000, os_distro="debian", gs_custom="kept",
                          hw_firmware_type="bios", os_secure_boot="disabled",
                          **{"trait:CUSTOM_X": "required"})
    region_a = region("RegionA")
    plan = make_plan(region_a.name, select_master(master.list_images(), PROJECT),
                     region_a.list_images(), PROJECT,
                     scenarios.target(metadata_set={"gs_custom"}),
                     transfer=run.transfer("RegionA"))
    result = Executor(region_a, run.source, progress=False, sources=run.sources,
                      retry=RetryPolicy(retries=2, sleep=run.sleeps.append)).execute(plan)
    assert result.success and result.copied_server_side == 2  # img and hw
    (copy,) = [i for i in region_a.list_images() if i.name == "hw"]
    assert image.same_content(copy)
    assert copy.properties == {"os_distro": "debian", "gs_custom": "kept"}
