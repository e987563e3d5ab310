"""Real clouds, round three (issue 23, cases 1 to 6), on the loopback test bed.

Each test reproduces a field report on real Keystone and Glance (a region
reconfigured through :class:`~glancesync.testbed.RegionSettings` where the
report needs it, or a :class:`~tests.faultproxy.FaultProxy` in front of a
region), then checks what GlanceSync does now. The bed is shared: names
carry a unique prefix and synchronisation is limited to them.
"""
from __future__ import annotations

import datetime
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.backends.openstack.glance import GlanceRegionAdapter
from glancesync.backends.openstack.origins import guarded_session
from glancesync.errors import ImageNotFoundError
from glancesync.executor import Executor
from glancesync.facade import GlanceSync
from glancesync.image import MARK_ORPHANED, Image
from glancesync.pacing import RatePacer
from glancesync.plan import Status, make_plan
from glancesync.plan.context import parse_time
from glancesync.retry import RetryingAdapter, RetryPolicy
from glancesync.selection import select_master
from glancesync.testbed import RegionSettings
from tests.faultproxy import FaultProxy
from tests.testbed_config import write_config

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
REGION = "RegionA"


class Bed:
    """Admin adapters of Keystone #1's regions and this test's images."""

    def __init__(self, testbed, session: ksa_session.Session) -> None:
        self.testbed = testbed
        self.info = testbed.info
        self.session = session
        self.project_id = self.info.project_id("master-admin")
        self.prefix = f"gs-rc3-{uuid.uuid4().hex[:8]}-"

    def adapter(self, region: str, endpoint: str | None = None) -> GlanceRegionAdapter:
        return GlanceRegionAdapter(f"master:{region}", self.session, region, self.project_id,
                                   endpoint_override=endpoint)

    def add_image(self, region: str, name: str, data: bytes, **fields) -> Image:
        """A raw image of ``data`` in ``region`` (public unless told), named with the prefix."""
        adapter = self.adapter(region)
        fields = {"visibility": "public", "disk_format": "raw", "container_format": "bare",
                  **fields}
        image = adapter.create_image(name if name.startswith(self.prefix)
                                     else self.prefix + name, **fields)
        return adapter.upload_data(image.id, [data], len(data))

    def mine(self, region: str) -> list[Image]:
        return [i for i in self.adapter(region).list_images()
                if (i.name or "").startswith(self.prefix)]

    def clean(self) -> None:
        for region in ("Master", REGION, "RegionB"):
            for image in self.mine(region):
                adapter = self.adapter(region)
                try:
                    if image.protected:
                        adapter.update_image(image.id, {"protected": False})
                    adapter.delete_image(image.id)
                except ImageNotFoundError:
                    pass


@pytest.fixture(scope="module")
def session(testbed) -> ksa_session.Session:
    cloud = testbed.info.clouds["master-admin"]
    return ksa_session.Session(auth=v3.Password(
        **{k: v for k, v in cloud.items() if k != "project_id"}))


@pytest.fixture
def bed(testbed, session, monkeypatch, tmp_path) -> Iterator[Bed]:
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    made = Bed(testbed, session)
    yield made
    made.clean()


def facade(bed: Bed, folder: Path, main: dict | None = None, **master: object) -> GlanceSync:
    """A facade limited to the test's images, fast retries unless told otherwise."""
    options = {"retries": 3, "retry_wait": 0.2, **(main or {})}
    condition = f"image.name.startswith('{bed.prefix}')"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_config(bed.info, folder / "glancesync.conf", main=options,
                        master={"metadata_condition": condition, **master},
                        other={"metadata_condition": condition})
    with open(path) as stream:
        return GlanceSync(stream, progress=False)


def statuses(gs: GlanceSync, region: str = REGION) -> dict[str, tuple[Status, str]]:
    return {s.name: (s.status, s.reason) for s in gs.get_status(region)}


# -- case 2: a protected regional image is never unprotected nor removed ------

def test_replace_any_never_unprotects_nor_deletes_a_protected_image(bed, tmp_path):
    """Issue 23 case 2: ``replace = any`` used to unprotect and delete it."""
    master = bed.add_image("Master", "prot", os.urandom(4096))
    old = bed.add_image(REGION, master.name, os.urandom(4096), protected=True)
    gs = facade(bed, tmp_path, replace="any")
    before = statuses(gs)[master.name]
    assert before[0] is Status.ERROR_PROTECTED and "protected" in before[1], before
    dry = gs.sync([REGION], dry_run=True)
    assert dry.exit_status == 4
    result = gs.sync([REGION])
    assert result.exit_status == 4, result.totals()
    kept = bed.adapter(REGION).get_image(old.id)
    assert kept.protected and kept.status == "active"
    assert [i.id for i in bed.mine(REGION)] == [old.id]  # nothing uploaded beside it


def test_replace_explicit_checksum_of_a_protected_image_is_refused_too(bed, tmp_path):
    """A variant: an explicit checksum in ``replace`` does not unprotect either."""
    master = bed.add_image("Master", "prot2", os.urandom(4096))
    old = bed.add_image(REGION, master.name, os.urandom(4096), protected=True)
    gs = facade(bed, tmp_path, replace=old.checksum)
    assert statuses(gs)[master.name][0] is Status.ERROR_PROTECTED
    gs.sync([REGION])
    assert bed.adapter(REGION).get_image(old.id).protected


def test_replace_of_an_image_protected_after_the_plan_uploads_nothing(bed, tmp_path):
    """A variant: protected between the plan and the upload (read again first)."""
    master = bed.add_image("Master", "prot3", os.urandom(4096))
    old = bed.add_image(REGION, master.name, os.urandom(4096))
    gs = facade(bed, tmp_path, replace="any")
    plan = gs.plan_region(REGION)
    assert plan.status_of(master.name).status is Status.PENDING_REPLACE
    bed.adapter(REGION).update_image(old.id, {"protected": True})
    result = Executor(gs.adapter(REGION), gs.source(), progress=False).execute(plan)
    assert plan.status_of(master.name).status is Status.ERROR_PROTECTED
    assert result.needs_operator == 1 and result.errors == 0
    assert [i.id for i in bed.mine(REGION)] == [old.id]
    assert bed.adapter(REGION).get_image(old.id).protected


# -- case 5: a permanent refusal of a metadata change is one image's status --------

QUOTA_SETTINGS = RegionSettings(
    glance_conf={"DEFAULT": {"image_property_quota": "5"}},
    schema_image={"os_distro": {"type": "string", "enum": ["ubuntu"]}})


def test_refused_metadata_changes_are_per_image_and_the_region_goes_on(bed, testbed,
                                                                       tmp_path):
    """Issue 23 case 5: a refused update (property quota, schema, GlanceSync's own
    mark over the quota) failed the whole region at every run and held back
    its removal steps."""
    data = {n: os.urandom(2048) for n in "abcde"}
    masters = {n: bed.add_image("Master", n, data[n], properties={"p1": "x"} if n in "ad" else {})
               for n in "abcde"}
    with testbed.region_configured(REGION, QUOTA_SETTINGS):
        gs = facade(bed, tmp_path / "one", removal_policy="delete",
                    removal_grace_hours=24)
        first = gs.sync([REGION])
        assert first.exit_status == 0, first.totals()
        master = bed.adapter("Master")
        master.update_image(masters["a"].id, {"p2": "crosses the quota"})
        master.update_image(masters["b"].id, {"p3": "fits"})
        master.update_image(masters["e"].id, {"os_distro": "debian"})
        master.delete_image(masters["d"].id)  # its copy's mark crosses the quota
        master.delete_image(masters["c"].id)  # its copy is to delete (grace 0 below)
        second = gs.sync([REGION])
        assert second.exit_status == 4, second.totals()
        lines = {s.name: s for s in second.results[f"master:{REGION}"].plan.statuses}
        refused_a = lines[masters["a"].name]
        assert refused_a.status is Status.ERROR_REFUSED, refused_a
        assert "GlanceSync's own" in refused_a.reason and "image_property_quota" in \
            refused_a.reason
        assert lines[masters["e"].name].status is Status.ERROR_REFUSED
        mark_line = [s for s in second.results[f"master:{REGION}"].plan.statuses
                     if s.master_id == masters["d"].id]
        assert mark_line and mark_line[0].status is Status.ERROR_REFUSED
        assert MARK_ORPHANED in mark_line[0].reason
        copies = {i.name: i for i in bed.mine(REGION)}
        assert copies[masters["b"].name].properties.get("p3") == "fits"
        # The lifecycle is not held back by the refusals.
        gs0 = facade(bed, tmp_path / "two", removal_policy="delete", removal_grace_hours=0)
        third = gs0.sync([REGION])
        assert third.exit_status == 4, third.totals()
        left = {i.name for i in bed.mine(REGION)}
        assert masters["c"].name not in left and masters["d"].name not in left
        assert masters["a"].name in left


# -- case 3: names near Glance's 255-character limit; two images of one name ----

def long_name(bed: Bed, length: int) -> str:
    return bed.prefix + "n" * (length - len(bed.prefix))


def test_rename_of_a_name_too_long_for_old_changes_nothing(bed, tmp_path):
    """Issue 23 case 3: the upload went through, ``NAME.old`` was refused, two
    public images of one name stayed and the next run said ``ok``."""
    name = long_name(bed, 253)  # NAME.old: 257 characters
    bed.add_image("Master", name, os.urandom(4096))
    old = bed.add_image(REGION, name, os.urandom(4096))
    gs = facade(bed, tmp_path, rename="any")
    line = statuses(gs)[name]
    assert line[0] is Status.ERROR_NAME and "255" in line[1], line
    result = gs.sync([REGION])
    assert result.exit_status == 4, result.totals()
    assert [i.id for i in bed.mine(REGION)] == [old.id]
    assert statuses(gs)[name][0] is Status.ERROR_NAME


def test_a_name_that_just_fits_is_renamed(bed, tmp_path):
    """The limit is exact: ``NAME.old`` of 255 characters is renamed."""
    name = long_name(bed, 251)
    bed.add_image("Master", name, os.urandom(4096))
    old = bed.add_image(REGION, name, os.urandom(4096))
    gs = facade(bed, tmp_path, rename="any")
    assert statuses(gs)[name][0] is Status.PENDING_RENAME
    assert gs.sync([REGION]).exit_status == 0
    assert bed.adapter(REGION).get_image(old.id).name == name + ".old"
    assert statuses(gs)[name][0] is Status.OK


def test_two_visible_images_of_a_synchronised_name_are_never_ok(bed, tmp_path):
    """A variant: the leftover of a rename that failed half-way (or a copy by hand)."""
    data = os.urandom(4096)
    master = bed.add_image("Master", "twice", data)
    gs = facade(bed, tmp_path)
    assert gs.sync([REGION]).exit_status == 0
    extra = bed.add_image(REGION, master.name, os.urandom(4096))
    line = statuses(gs)[master.name]
    assert line[0] is Status.ERROR_REGIONAL_DUPLICATE and extra.id in line[1], line
    assert gs.status([REGION]).exit_status == 4


# -- case 4: HTTP 429 with Retry-After; a pace of requests per second ------------

def proxied_sync(bed: Bed, gs: GlanceSync, proxy: FaultProxy, session=None,
                 saving_timeout: float = 900.0):
    """What ``gs`` does for REGION, through ``proxy`` (fast retries)."""
    adapter = GlanceRegionAdapter(f"master:{REGION}", session or bed.session, REGION,
                                  bed.project_id, endpoint_override=proxy.url)
    retry = RetryPolicy(retries=3, initial_wait=0.2)
    adapter = RetryingAdapter(adapter, retry)
    master = gs.adapter("Master")
    selection = select_master(master.list_images(), master.project_id)
    plan = make_plan(adapter.name, selection, adapter.list_images(), adapter.project_id,
                     gs.config.target("master"), stalled_upload_age=3600)
    return Executor(adapter, gs.source(), retry=retry, progress=False,
                    saving_timeout=saving_timeout).execute(plan)


def is_listing(method: bytes, path: bytes) -> bool:
    return method == b"GET" and path.split(b"?", 1)[0].rstrip(b"/").endswith(b"/v2/images")


def is_upload(method: bytes, path: bytes) -> bool:
    return method == b"PUT" and path.split(b"?", 1)[0].endswith(b"/file")


@pytest.mark.parametrize("match", [is_listing, is_upload], ids=["listing", "upload"])
def test_429_with_retry_after_is_retried(bed, tmp_path, match):
    """Issue 23 case 4: a rate-limiting front answering 429 failed the region."""
    master = bed.add_image("Master", "limited", os.urandom(MIB))
    gs = facade(bed, tmp_path)
    with FaultProxy(_port(bed, REGION), too_many=2, too_many_match=match,
                    retry_after="1", lifetime=240) as proxy:
        result = proxied_sync(bed, gs, proxy)
    assert proxy.too_many_done == 2
    assert result.errors == 0 and result.uploaded == 1, result.summary()
    copies = bed.mine(REGION)
    assert [(c.name, c.status, c.checksum) for c in copies] == [
        (master.name, "active", master.checksum)]


def test_a_retry_after_beyond_the_budget_fails_at_once(bed, tmp_path):
    """A variant: a Retry-After longer than the retry layer waits is not slept."""
    bed.add_image("Master", "toolong", os.urandom(4096))
    gs = facade(bed, tmp_path)
    with FaultProxy(_port(bed, REGION), too_many=1, too_many_match=is_upload,
                    retry_after="3600", lifetime=240) as proxy:
        result = proxied_sync(bed, gs, proxy)
    assert result.errors == 1 and "429" in next(iter(result.failed.values()))
    assert bed.mine(REGION) == []  # the half-made image deleted


def test_requests_per_second_stays_under_the_provider_limit(bed, tmp_path):
    """``requests_per_second``: every request of the target's session paced, uploads
    sent with sendfile too; a front allowing one request per 0.3 s never says 429."""
    for n in range(2):
        bed.add_image("Master", f"paced{n}", os.urandom(4096))
    gs = facade(bed, tmp_path)
    cloud = bed.info.clouds["master-admin"]
    with FaultProxy(_port(bed, REGION), min_interval=0.3, lifetime=240) as proxy:
        pacer = RatePacer(1.0)
        session = ksa_session.Session(
            auth=v3.Password(**{k: v for k, v in cloud.items() if k != "project_id"}),
            session=guarded_session(lambda: [proxy.url, cloud["auth_url"]], pacer))
        result = proxied_sync(bed, gs, proxy, session)
    assert result.errors == 0 and result.uploaded == 2, result.summary()
    assert proxy.too_many_done == 0 and proxy.requests > 6


def _port(bed: Bed, region: str) -> int:
    return int(bed.info.glance_urls[region].rsplit(":", 1)[1].split("/")[0])


# -- case 1: clock skew and glancesync.orphaned_at -----------------------------

def orphan(bed: Bed, gs: GlanceSync, name: str) -> Image:
    """A copy in REGION whose master image is gone (synchronised, then deleted); the
    master keeps an image (a master offering none removes nothing)."""
    if not any(i.name.endswith("keeper") for i in bed.mine("Master")):
        bed.add_image("Master", "keeper", os.urandom(1024))
    master = bed.add_image("Master", name, os.urandom(4096))
    assert gs.sync([REGION]).exit_status == 0
    bed.adapter("Master").delete_image(master.id)
    (copy,) = [i for i in bed.mine(REGION) if i.name == master.name]
    return copy


def line_of(gs: GlanceSync, image_id: str) -> tuple[Status, str]:
    plan = gs.plan_region(REGION)
    found = [s for s in plan.statuses if s.regional_id == image_id]
    assert len(found) == 1, (plan.statuses, plan.warnings)
    found = found[0]
    return found.status, found.reason


def stamp(when: datetime.datetime) -> str:
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_mark_written_by_a_late_clock_does_not_shorten_the_grace(bed, tmp_path):
    """Issue 23 case 1: a host 3 days late wrote the mark; a host with the right
    clock deleted the copy minutes later (grace 24 h), exit 0, no warning."""
    gs = facade(bed, tmp_path, removal_policy="delete", removal_grace_hours=24)
    copy = orphan(bed, gs, "late")
    late = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    bed.adapter(REGION).update_image(copy.id, {MARK_ORPHANED: stamp(late)})
    result = gs.sync([REGION])
    assert bed.adapter(REGION).get_image(copy.id).status == "active", result.totals()
    line = line_of(gs, copy.id)
    assert line[0] is Status.INFO_REMOVAL_GRACE and "its last change" in line[1], line
    assert "to delete in 2" in line[1]  # about 24 h left, not 0


def test_a_mark_from_the_future_is_refused_and_recorded_again(bed, tmp_path):
    """Issue 23 case 1: a clock one year ahead announced "to delete in 8784.0 h"."""
    gs = facade(bed, tmp_path, removal_policy="delete", removal_grace_hours=24)
    copy = orphan(bed, gs, "ahead")
    ahead = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=366)
    bed.adapter(REGION).update_image(copy.id, {MARK_ORPHANED: stamp(ahead)})
    line = line_of(gs, copy.id)
    assert line[0] is Status.INFO_REMOVAL_GRACE and "ahead of the target's clock" in line[1]
    assert "to delete in 24 h" in line[1] and "to delete in 87" not in line[1], line
    assert gs.sync([REGION]).exit_status == 0
    marked = parse_time(bed.adapter(REGION).get_image(copy.id).marks[MARK_ORPHANED])
    assert abs((marked - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 600
    after = line_of(gs, copy.id)
    assert after[0] is Status.INFO_REMOVAL_GRACE and "to delete in 2" in after[1], after


SHIFTED_SYNC = r"""
import datetime, logging, sys, time
logging.basicConfig(level=logging.WARNING)
shift = datetime.timedelta(days=float(sys.argv[2]))
real = datetime.datetime
class Shifted(real):
    @classmethod
    def now(cls, tz=None):
        return real.now(tz) + shift
    @classmethod
    def utcnow(cls):
        return real.utcnow() + shift
datetime.datetime = Shifted
_time = time.time
time.time = lambda: _time() + shift.total_seconds()
from glancesync.facade import GlanceSync
with open(sys.argv[1]) as stream:
    gs = GlanceSync(stream, progress=False)
result = gs.sync(["RegionA"])
print(result.totals())
sys.exit(int(result.exit_status))
"""


def test_a_host_whose_clock_is_ahead_measures_on_the_target_s_clock(bed, tmp_path):
    """A variant: the reading host's wall clock is 3 days ahead (its process sees a
    shifted time); the grace period is measured on Keystone's clock, so the
    copy is kept and the mark it writes is the target's time."""
    import subprocess
    import sys
    gs = facade(bed, tmp_path, removal_policy="delete", removal_grace_hours=24)
    marked = orphan(bed, gs, "hostahead")
    fresh = orphan(bed, gs, "hostahead2")
    assert gs.sync([REGION]).exit_status == 0  # records both marks, right clock
    bed.adapter(REGION).update_image(fresh.id, {}, remove=[MARK_ORPHANED])
    script = tmp_path / "shifted.py"
    script.write_text(SHIFTED_SYNC)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "glancesync.conf"),
                           "3"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ahead of the clock of target master" in done.stderr, done.stderr
    adapter = bed.adapter(REGION)
    assert adapter.get_image(marked.id).status == "active"
    written = parse_time(adapter.get_image(fresh.id).marks[MARK_ORPHANED])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((written - now).total_seconds()) < 3600, written


# -- case 6: a store slow to finalise ------------------------------------------

def test_a_store_slow_to_finalise_is_waited_for_not_uploaded_again(bed, tmp_path):
    """Issue 23 case 6: the gateway timed out while the store finalised; the
    ``saving`` image was deleted 5 s later and uploaded again."""
    master = bed.add_image("Master", "slowstore", os.urandom(MIB))
    gs = facade(bed, tmp_path)
    with FaultProxy(_port(bed, REGION), slow_finalise=1, gateway_timeout=1,
                    finalise_seconds=9, lifetime=240) as proxy:
        result = proxied_sync(bed, gs, proxy, saving_timeout=120)
    assert result.errors == 0 and result.uploaded == 1, result.summary()
    assert proxy.uploads == 1 and proxy.finalised == 1
    copies = bed.mine(REGION)
    assert [(c.status, c.checksum) for c in copies] == [("active", master.checksum)]


def test_an_image_still_saving_after_the_bound_is_left_to_the_store(bed, tmp_path):
    """A variant: ``saving_timeout`` shorter than the store's finalisation: the image
    fails for this run, is never deleted nor uploaded again, and ends active."""
    master = bed.add_image("Master", "slowerstore", os.urandom(MIB))
    gs = facade(bed, tmp_path)
    with FaultProxy(_port(bed, REGION), slow_finalise=1, gateway_timeout=1,
                    finalise_seconds=15, lifetime=240) as proxy:
        result = proxied_sync(bed, gs, proxy, saving_timeout=2)
        assert result.errors == 1 and "saving_timeout" in next(iter(result.failed.values()))
        assert proxy.uploads == 1
        (left,) = bed.mine(REGION)
        deadline = time.monotonic() + 120
        while proxy.finalised == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
    while bed.adapter(REGION).get_image(left.id).status == "saving" \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    image = bed.adapter(REGION).get_image(left.id)
    assert (image.status, image.checksum) == ("active", master.checksum)


def _through_fronts(bed: Bed, folder: Path, glance_front: FaultProxy,
                    keystone_front: FaultProxy, **master: object) -> GlanceSync:
    """A facade whose master target reaches Keystone #1 through ``keystone_front``,
    whose token names ``glance_front`` as REGION's image endpoint."""
    folder.mkdir(parents=True, exist_ok=True)
    condition = f"image.name.startswith('{bed.prefix}')"
    path = write_config(bed.info, folder / "glancesync.conf",
                        main={"retries": 3, "retry_wait": 0.2},
                        master={"auth_url": keystone_front.url + "/v3",
                                "metadata_condition": condition, **master},
                        other={"metadata_condition": condition})
    with open(path) as stream:
        return GlanceSync(stream, progress=False)


def _rewrite_region(url: str):
    def rewrite(method: bytes, path: bytes, body: bytes) -> bytes:
        if method != b"POST" or not path.startswith(b"/v3/auth/tokens") or not body:
            return body
        token = json.loads(body)
        for service in token.get("token", {}).get("catalog", []):
            for endpoint in service.get("endpoints", []):
                if service.get("type") == "image" and endpoint.get("region_id") == REGION:
                    endpoint["url"] = url
        return json.dumps(token).encode()
    return rewrite


@pytest.mark.parametrize("rate", [0.0, 0.5], ids=["retried", "paced"])
def test_a_rate_limited_region_through_the_facade(bed, tmp_path, rate):
    """End to end, REGION's catalog endpoint a rate-limiting front: its 429 answers
    are retried after their Retry-After (``retried``); with ``requests_per_second``
    under a limit of one request a second, no 429 ever comes (``paced``)."""
    master = bed.add_image("Master", f"front{int(rate * 10)}", os.urandom(4096))
    keystone_port = int(bed.info.keystone_urls["master"].rsplit(":", 1)[1].split("/")[0])
    limits = ({"min_interval": 1.0} if rate else
              {"too_many": 2, "too_many_match": is_listing})
    with FaultProxy(_port(bed, REGION), lifetime=280, **limits) as glance_front, \
            FaultProxy(keystone_port, rewrite=_rewrite_region(glance_front.url),
                       lifetime=280) as keystone_front:
        gs = _through_fronts(bed, tmp_path, glance_front, keystone_front,
                             requests_per_second=rate)
        result = gs.sync([REGION])
    seen = [(round(t - glance_front.seen[0][0], 2), m, p[:60]) for t, m, p in glance_front.seen]
    assert result.exit_status == 0, (result.totals(), seen)
    assert [(c.status, c.checksum) for c in bed.mine(REGION)] == [
        ("active", master.checksum)]
    assert glance_front.requests > 4
    assert glance_front.too_many_done == (0 if rate else 2), seen


def test_a_rate_limit_that_outlasts_the_retries_names_the_option(bed, tmp_path):
    """A variant: a limit of one request a second and a listing of two requests: the
    run fails, and the message says what keeps a run under the limit."""
    bed.add_image("Master", "strict", os.urandom(4096))
    keystone_port = int(bed.info.keystone_urls["master"].rsplit(":", 1)[1].split("/")[0])
    with FaultProxy(_port(bed, REGION), min_interval=30.0, lifetime=280) as glance_front, \
            FaultProxy(keystone_port, rewrite=_rewrite_region(glance_front.url),
                       lifetime=280) as keystone_front:
        gs = _through_fronts(bed, tmp_path, glance_front, keystone_front)
        result = gs.sync([REGION])
    assert result.exit_status == 1
    (failure,) = result.failures.values()
    assert "429" in str(failure) and "requests_per_second" in str(failure)


def test_a_member_over_image_member_quota_is_one_image_s_refusal(bed, testbed, tmp_path):
    """Issue 23 case 5, ``image_member_quota``: sharing a copy with one project more
    than the region allows is that image's ``error_refused``, with the quota."""
    alice, bob = (bed.info.project_id(c) for c in ("master-alice", "master-bob"))
    shared = bed.add_image("Master", "members", os.urandom(2048), visibility="shared")
    other = bed.add_image("Master", "plain", os.urandom(2048))
    master = bed.adapter("Master")
    master.add_member(shared.id, alice)
    with testbed.region_configured(REGION, RegionSettings(
            glance_conf={"DEFAULT": {"image_member_quota": "1"}})):
        gs = facade(bed, tmp_path, sync_members="true")
        assert gs.sync([REGION]).exit_status == 0
        master.add_member(shared.id, bob)
        master.update_image(other.id, {"p9": "goes on"})
        result = gs.sync([REGION])
        assert result.exit_status == 4, result.totals()
        lines = {s.name: s for s in result.results[f"master:{REGION}"].plan.statuses}
        line = lines[shared.name]
        assert line.status is Status.ERROR_REFUSED and "image_member_quota" in line.reason
        copies = {i.name: i for i in bed.mine(REGION)}
        assert copies[other.name].properties.get("p9") == "goes on"
