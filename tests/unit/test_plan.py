"""SPEC sections 5 and 6: make_plan on plain images (no I/O)."""
from __future__ import annotations

import csv
import dataclasses
import datetime
import io

import pytest

from glancesync import scope
from glancesync.config import TargetConfig
from glancesync.image import MARK_ORPHANED, MARK_RENAMED, MARK_RETIRED, Image, Provenance
from glancesync.plan import ImageStatus, Status, hold_removals, make_plan
from glancesync.selection import select_master
from glancesync.strategy import RegionTransfer, Strategy

MASTER = "p-master"
PROJ = "p-region"
NOW = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
COPY = object()  # r(): the provenance of a copy of the master image of the same name


def m(name, checksum="c1", *, id_=None, visibility="public", size=10, status="active",
      owner=MASTER, **props):
    """A master image."""
    return Image(id=id_ or f"m-{name}", name=name, status=status, owner=owner,
                 visibility=visibility, size=size, checksum=checksum,
                 disk_format="qcow2", container_format="bare", properties=dict(props))


def r(name, checksum="c1", *, id_=None, visibility="public", owner=PROJ, status="active",
      updated_at=None, provenance=COPY, protected=False, **props):
    """A regional image; by default, of the project, a copy made by GlanceSync of the
    master image of its name (its provenance says so; None: an image without one)."""
    if provenance is COPY:
        provenance = (Provenance(f"m-{name}", None, f"md5:{checksum}")
                      if owner == PROJ and checksum else None)
    return Image(id=id_ or f"r-{name}-{checksum}", name=name, status=status, owner=owner,
                 visibility=visibility, size=10, checksum=checksum, updated_at=updated_at,
                 properties=dict(props), provenance=provenance,
                 protected=protected)


def ours(master_id="m-a", region="Master"):
    """The provenance GlanceSync gives a copy of master image ``master_id``."""
    return Provenance(master_id, region, "md5:c1", "2029-12-31T00:00:00Z")


def plan(master_images, regional_images, transfer=None, **target_kw):
    target = TargetConfig(name="t", **target_kw)
    return make_plan("RegionA", select_master(master_images, MASTER), regional_images, PROJ,
                     target, now=NOW, stalled_upload_age=3600, transfer=transfer)


def status(p, name):
    s = p.status_of(name)
    return s.status if s else None


def kinds(p):
    return [(op.kind, op.name) for op in p.operations]


@pytest.mark.parametrize("name", ["plain", "two\nlines", "cr\rlf", "a, b", 'q"uote',
                                  " padded "])
def test_the_status_csv_record_is_one_row_for_a_csv_reader(name):
    """Issue 10, case 6: the standard CSV quoting, whatever the image name.

    (A name's control characters may be escaped in reports: only the
    printable ones are compared.)
    """
    record = ImageStatus(Status.OK, "master:RegionA", name, "m", "r").csv()
    (row,) = csv.reader(io.StringIO(record + "\n", newline=""))
    assert row[:2] == ["ok", "master:RegionA"] and len(row) == 3
    if name.isprintable():
        assert row[2] == name


# -- basic statuses ------------------------------------------------------------

def test_ok_when_same_content_and_metadata():
    p = plan([m("a", type="x")], [r("a", type="x")])
    assert status(p, "a") is Status.OK
    assert p.operations == [] and p.in_sync
    s = p.status_of("a")
    assert (s.master_id, s.regional_id, s.region) == ("m-a", "r-a-c1", "RegionA")
    assert s.csv() == "ok,RegionA,a"


def test_pending_upload_when_missing_carries_master_fields():
    master = m("a", visibility="public", type="x", architecture="x86_64")
    master.min_ram, master.min_disk, master.protected = 512, 2, True
    p = plan([master], [], metadata_set=frozenset({"type"}))
    assert status(p, "a") is Status.PENDING_UPLOAD
    (op,) = p.operations
    assert op.kind == "upload" and op.size == 10 and op.master is master
    assert op.changes["visibility"] == "public"
    assert op.changes["protected"] is True
    assert (op.changes["min_ram"], op.changes["min_disk"]) == (512, 2)
    assert op.changes["disk_format"] == "qcow2"
    assert op.changes["properties"] == {"type": "x", "architecture": "x86_64"}


def test_upload_with_empty_metadata_set_copies_every_user_property():
    p = plan([m("a", type="x", other="y")], [])
    assert p.operations[0].changes["properties"] == {"type": "x", "other": "y"}


def test_same_content_by_os_hash_when_algorithms_agree():
    master = m("a", checksum=None)
    master.os_hash_algo, master.os_hash_value = "sha512", "h"
    regional = r("a", checksum=None, provenance=Provenance("m-a", None, "sha512:h"))
    regional.os_hash_algo, regional.os_hash_value = "sha512", "h"
    assert status(plan([master], [regional]), "a") is Status.OK


def test_non_synchronised_master_images_have_no_status():
    p = plan([m("priv", visibility="private"), m("x_obsolete")], [])
    assert p.statuses == [] and p.operations == []


# -- metadata ------------------------------------------------------------------

def test_metadata_set_compares_only_listed_and_removes_missing():
    p = plan([m("a", type="new", nid="1")],
             [r("a", type="old", sla="gold", foreign="keep")],
             metadata_set=frozenset({"type", "sla", "nid"}))
    assert status(p, "a") is Status.PENDING_METADATA
    (op,) = p.operations
    assert op.kind == "update_metadata"
    assert op.changes == {"type": "new", "nid": "1"}
    assert op.remove == ("sla",)


def test_empty_metadata_set_removes_every_extra_user_property():
    p = plan([m("a", type="x")], [r("a", type="x", extra="y")])
    (op,) = p.operations
    assert op.changes == {} and op.remove == ("extra",)


def test_glance_computed_properties_are_never_compared():
    regional = r("a", type="x")
    regional.properties.update({"stores": "file", "os_glance_importing_to_stores": "",
                                "owner_specified.openstack.md5": "z"})
    p = plan([m("a", type="x")], [regional])
    assert status(p, "a") is Status.OK


def test_visibility_always_synchronised_even_with_metadata_set():
    p = plan([m("a", visibility="public", type="x")], [r("a", visibility="private", type="x")],
             metadata_set=frozenset({"type"}))
    assert p.operations[0].changes == {"visibility": "public"}


def test_min_ram_and_min_disk_are_compared():
    master = m("a")
    master.min_ram = 1024
    p = plan([master], [r("a")])
    assert p.operations[0].changes == {"min_ram": 1024}


# -- conflicts -----------------------------------------------------------------

def test_error_checksum_without_directive_touches_nothing():
    p = plan([m("a", "new")], [r("a", "old")])
    assert status(p, "a") is Status.ERROR_CHECKSUM
    assert p.operations == []
    assert [s.name for s in p.needs_operator] == ["a"]
    assert any("a" in w for w in p.warnings)


@pytest.mark.parametrize("kw,expected", [
    ({"dontupdate": {"old"}}, Status.OK_STALLED_CHECKSUM),
    ({"dontupdate": {"any"}}, Status.OK_STALLED_CHECKSUM),
    ({"replace": {"old"}}, Status.PENDING_REPLACE),
    ({"replace": {"any"}}, Status.PENDING_REPLACE),
    ({"rename": {"old"}}, Status.PENDING_RENAME),
    ({"rename": {"any"}}, Status.PENDING_RENAME),
    ({"replace": {"other"}}, Status.ERROR_CHECKSUM),
    # precedence
    ({"rename": {"old"}, "replace": {"old"}}, Status.PENDING_RENAME),
    ({"rename": {"any"}, "replace": {"any"}}, Status.PENDING_RENAME),
    ({"rename": {"any"}, "replace": {"old"}}, Status.PENDING_REPLACE),
    ({"replace": {"any"}, "rename": {"old"}}, Status.PENDING_RENAME),
    ({"dontupdate": {"old"}, "rename": {"old"}, "replace": {"old"}},
     Status.OK_STALLED_CHECKSUM),
    ({"dontupdate": {"any"}, "rename": {"any"}, "replace": {"any"}},
     Status.OK_STALLED_CHECKSUM),
    ({"dontupdate": {"any"}, "replace": {"old"}}, Status.PENDING_REPLACE),
    ({"dontupdate": {"old"}, "replace": {"any"}}, Status.OK_STALLED_CHECKSUM),
])
def test_conflict_directives_and_precedence(kw, expected):
    kw = {k: frozenset(v) for k, v in kw.items()}
    p = plan([m("a", "new")], [r("a", "old")], **kw)
    assert status(p, "a") is expected
    op_kinds = [op.kind for op in p.operations]
    assert op_kinds == {Status.PENDING_REPLACE: ["replace"],
                        Status.PENDING_RENAME: ["rename"]}.get(expected, [])


def test_directive_matches_os_hash_value_too():
    regional = r("a", "old")
    regional.os_hash_algo, regional.os_hash_value = "sha512", "oldsha"
    p = plan([m("a", "new")], [regional], replace=frozenset({"oldsha"}))
    assert status(p, "a") is Status.PENDING_REPLACE


def test_replace_and_rename_carry_old_image():
    p = plan([m("a", "new")], [r("a", "old")], rename=frozenset({"any"}))
    (op,) = p.operations
    assert op.regional.id == "r-a-old" and op.master.id == "m-a"


# -- duplicates and foreign images ------------------------------------------

def test_master_duplicates_are_not_synchronised_and_need_an_operator():
    """Issue 10, case 3: an image that should reach the region and reaches none."""
    p = plan([m("d", id_="1"), m("d", "c2", id_="2"), m("ok")], [])
    s = p.status_of("d")
    assert s.status is Status.ERROR_DUPLICATE and s.status.is_error
    assert s.master_id is None and s.regional_id is None
    assert "used by 2 images (1, 2)" in s.reason
    assert kinds(p) == [("upload", "ok")]
    assert p.needs_operator == [s]
    assert s.csv() == "error_duplicate,RegionA,d"


def test_master_duplicates_keep_the_regional_copy_untouched():
    p = plan([m("d", id_="1"), m("d", "c2", id_="2")], [r("d", "c1")])
    s = p.status_of("d")
    assert s.status is Status.ERROR_DUPLICATE and s.regional_id == "r-d-c1"
    assert p.operations == []


def test_master_duplicates_not_meant_for_the_region_have_no_status():
    private = [m("d", id_="1", visibility="private"), m("d", "c2", id_="2",
                                                        visibility="private")]
    assert plan(private, []).statuses == []
    forced = plan(private, [], forcesyncs=frozenset({"2"}))
    assert forced.status_of("d").status is Status.ERROR_DUPLICATE
    obsolete = [m("x_obsolete", id_="1"), m("x_obsolete", "c2", id_="2")]
    assert plan(obsolete, []).statuses == []


def test_regional_duplicate_prefers_the_master_checksum():
    p = plan([m("a", "good")], [r("a", "bad"), r("a", "good")])
    s = p.status_of("a")
    assert s.status is Status.ERROR_REGIONAL_DUPLICATE and s.regional_id == "r-a-good"
    assert any("2 images named 'a'" in w for w in p.warnings)


def test_other_projects_images_ignored_with_only_tenant_images():
    p = plan([m("a")], [r("a", owner="p-alice")])
    assert status(p, "a") is Status.PENDING_UPLOAD


def test_other_projects_same_content_counts_and_is_never_updated():
    p = plan([m("a", type="x")], [r("a", owner="p-alice", visibility="private")],
             only_tenant_images=False)
    assert status(p, "a") is Status.OK
    assert p.operations == []


@pytest.mark.parametrize("kw,expected", [
    ({}, Status.ERROR_CHECKSUM),
    ({"replace": {"any"}}, Status.ERROR_CHECKSUM),
    ({"rename": {"old"}}, Status.ERROR_CHECKSUM),
    ({"rename": {"any"}}, Status.ERROR_CHECKSUM),
    ({"replace": {"old"}}, Status.PENDING_REPLACE),
    ({"dontupdate": {"any"}}, Status.OK_STALLED_CHECKSUM),
])
def test_other_projects_image_changed_only_by_explicit_replace(kw, expected):
    kw = {k: frozenset(v) for k, v in kw.items()}
    p = plan([m("a", "new")], [r("a", "old", owner="p-alice")], only_tenant_images=False, **kw)
    assert status(p, "a") is expected


# -- leftovers -------------------------------------------------------------------

OLD = (NOW - datetime.timedelta(hours=2)).isoformat()
YOUNG = (NOW - datetime.timedelta(minutes=5)).isoformat()


def test_leftovers_of_our_own_uploads_are_cleaned_with_a_status_line():
    regional = [r("a", None, id_="q", status="queued", updated_at=OLD, provenance=ours()),
                r("a", None, id_="s-old", status="saving", updated_at=OLD,
                  provenance=ours()),
                r("gone", None, id_="g", status="queued", updated_at=OLD,
                  provenance=ours("m-gone"))]
    p = plan([m("a")], regional)
    assert status(p, "a") is Status.PENDING_UPLOAD
    cleanups = [op.regional.id for op in p.operations if op.kind == "cleanup"]
    assert cleanups == ["q", "s-old", "g"]
    assert p.operations[-1].kind == "cleanup"
    lines = [(s.name, s.status, s.regional_id) for s in p.statuses]
    assert lines == [("a", Status.PENDING_UPLOAD, None),
                     ("a", Status.PENDING_CLEANUP, "q"),
                     ("a", Status.PENDING_CLEANUP, "s-old"),
                     ("gone", Status.PENDING_CLEANUP, "g")]
    cleanup = p.statuses[1]
    assert cleanup.master_id == "m-a" and "leftover queued image q" in cleanup.reason
    assert p.status_of("a").status is Status.PENDING_UPLOAD  # the image's own status
    assert p.counts()[Status.PENDING_CLEANUP] == 3 and not p.in_sync


def test_a_server_side_copy_stuck_importing_is_a_leftover_once_stalled():
    """A copy a dead region left ``importing`` is cleaned like an interrupted upload."""
    regional = [r("a", None, id_="i-old", status="importing", updated_at=OLD,
                  provenance=ours()),
                r("a", None, id_="i-young", status="importing", updated_at=YOUNG,
                  provenance=ours())]
    p = plan([m("a")], regional)
    assert [op.regional.id for op in p.operations if op.kind == "cleanup"] == ["i-old"]
    assert "leftover importing image i-old" in p.statuses[1].reason


def test_images_glancesync_did_not_create_are_never_cleaned():
    """Issue 10, case 4: an operator's upload in progress is not a leftover."""
    regional = [r("a", None, id_="operator", status="queued", updated_at=OLD),
                r("a", None, id_="foreign", status="queued", updated_at=OLD,
                  owner="p-alice", provenance=ours()),
                r("a", None, id_="young", status="queued", updated_at=YOUNG,
                  provenance=ours()),
                r("a", None, id_="s-young", status="saving", updated_at=YOUNG,
                  provenance=ours()),
                r("a", None, id_="undated", status="queued", provenance=ours())]
    p = plan([m("a")], regional)
    assert [op.kind for op in p.operations] == ["upload"]
    assert [s.status for s in p.statuses] == [Status.PENDING_UPLOAD]


def test_a_leftover_of_another_master_region_is_not_ours():
    regional = [r("a", None, id_="q", status="queued", updated_at=OLD,
                  provenance=ours(region="Elsewhere"))]
    selection = select_master([m("a")], MASTER, "Master")
    target = TargetConfig(name="t")
    p = make_plan("RegionA", selection, regional, PROJ, target, now=NOW,
                  stalled_upload_age=3600)
    assert [op.kind for op in p.operations] == ["upload"]
    mine = [r("a", None, id_="q", status="queued", updated_at=OLD, provenance=ours())]
    p = make_plan("RegionA", selection, mine, PROJ, target, now=NOW, stalled_upload_age=3600)
    assert [op.kind for op in p.operations] == ["upload", "cleanup"]


def test_a_protected_leftover_is_a_warning_not_an_operation():
    regional = [r("a", None, id_="q", status="queued", updated_at=OLD, provenance=ours(),
                  protected=True)]
    p = plan([m("a")], regional)
    assert [op.kind for op in p.operations] == ["upload"]
    assert any("q" in w and "protected" in w for w in p.warnings)


def test_stalled_upload_age_decides_when_a_leftover_is_abandoned():
    regional = [r("a", None, id_="q", status="queued", updated_at=YOUNG, provenance=ours())]
    for age, cleaned in ((3600, False), (300, True), (0, True)):
        p = make_plan("RegionA", select_master([m("a")], MASTER), regional, PROJ,
                      TargetConfig(name="t"), now=NOW, stalled_upload_age=age)
        assert ("cleanup" in [op.kind for op in p.operations]) is cleaned, age


# -- AMI -------------------------------------------------------------------------

def ami_master(kernel_size=100, ramdisk_size=50, ami_size=10):
    kernel = m("k", "ck", size=kernel_size, id_="mk")
    ramdisk = m("rd", "crd", size=ramdisk_size, id_="mrd")
    ami = m("ami", "cami", size=ami_size, id_="mami", kernel_id="mk", ramdisk_id="mrd")
    return [kernel, ramdisk, ami]


def test_ami_smaller_than_kernel_uploaded_after_kernel_and_ramdisk():
    p = plan(ami_master(), [])
    assert status(p, "k") is Status.PENDING_UPLOAD
    assert status(p, "rd") is Status.PENDING_UPLOAD
    assert status(p, "ami") is Status.PENDING_AMI
    assert kinds(p) == [("upload", "rd"), ("upload", "k"), ("upload", "ami")]
    ami_op = p.operations[-1]
    assert ami_op.ami_refs == {"kernel_id": "k", "ramdisk_id": "rd"}
    assert "kernel_id" not in ami_op.changes["properties"]


def test_ami_ids_translated_when_kernel_present():
    regional = [r("k", "ck", id_="rk"), r("rd", "crd", id_="rrd")]
    p = plan(ami_master(), regional)
    assert status(p, "ami") is Status.PENDING_UPLOAD
    (op,) = p.operations
    assert op.changes["properties"]["kernel_id"] == "rk"
    assert op.changes["properties"]["ramdisk_id"] == "rrd"
    assert op.ami_refs == {}


def test_ami_ids_translated_even_outside_metadata_set():
    masters = ami_master()
    for image in masters:
        image.properties["type"] = "x"
    regional = [r("k", "ck", id_="rk", type="x"), r("rd", "crd", id_="rrd", type="x")]
    p = plan(masters, regional, metadata_set=frozenset({"type"}))
    assert p.operations[0].changes["properties"]["kernel_id"] == "rk"


def test_existing_ami_with_wrong_kernel_id_gets_pending_metadata():
    regional = [r("k", "ck", id_="rk"), r("rd", "crd", id_="rrd"),
                r("ami", "cami", kernel_id="mk", ramdisk_id="rrd")]
    p = plan(ami_master(), regional)
    assert status(p, "ami") is Status.PENDING_METADATA
    assert p.operations[0].changes == {"kernel_id": "rk"}


def test_existing_ami_in_sync():
    regional = [r("k", "ck", id_="rk"), r("rd", "crd", id_="rrd"),
                r("ami", "cami", kernel_id="rk", ramdisk_id="rrd")]
    assert plan(ami_master(), regional).in_sync


def test_existing_ami_waits_for_a_replaced_kernel():
    regional = [r("k", "old", id_="rk"), r("rd", "crd", id_="rrd"),
                r("ami", "cami", kernel_id="rk", ramdisk_id="rrd")]
    p = plan(ami_master(), regional, replace=frozenset({"old"}))
    assert status(p, "k") is Status.PENDING_REPLACE
    assert status(p, "ami") is Status.PENDING_AMI
    assert kinds(p) == [("replace", "k"), ("update_metadata", "ami")]
    assert p.operations[1].ami_refs == {"kernel_id": "k"}


def test_error_ami_when_kernel_not_synchronised():
    masters = ami_master()
    masters[0].visibility = "private"
    p = plan(masters, [r("rd", "crd", id_="rrd")])
    assert status(p, "ami") is Status.ERROR_AMI
    assert p.operations == []
    assert "kernel_id" in p.status_of("ami").reason


def test_error_ami_when_kernel_in_error_checksum():
    p = plan(ami_master(), [r("k", "other"), r("rd", "crd")])
    assert status(p, "k") is Status.ERROR_CHECKSUM
    assert status(p, "ami") is Status.ERROR_AMI
    assert p.operations == []


# -- order -------------------------------------------------------------------------

def test_order_metadata_then_uploads_smallest_first_then_cleanup():
    masters = [m("big", "b", size=300), m("small", "s", size=5), m("mid", "md", size=50),
               m("meta", "mt", type="new"), m("repl", "rp", size=1)]
    regional = [r("meta", "mt", type="old"), r("repl", "old"),
                r("big", None, id_="q", status="queued", updated_at=OLD,
                  provenance=ours("m-big"))]
    p = plan(masters, regional, replace=frozenset({"old"}))
    assert kinds(p) == [("update_metadata", "meta"), ("replace", "repl"),
                        ("upload", "small"), ("upload", "mid"), ("upload", "big"),
                        ("cleanup", "big")]
    assert p.counts()[Status.PENDING_UPLOAD] == 3
    assert len(p.pending) == 6  # the leftover's pending_cleanup too


# -- obsolete ----------------------------------------------------------------------

def test_obsolete_renames_regional_image_and_copies_syncprops():
    master = m("x_obsolete", visibility="private", eol="2030", other="no")
    p = plan([master], [r("x", eol="old", other="keep")],
             obsolete_syncprops=frozenset({"eol"}))
    (op,) = p.operations
    assert op.kind == "obsolete_rename"
    assert op.changes == {"name": "x_obsolete", "visibility": "private", "eol": "2030"}
    assert status(p, "x_obsolete") is Status.PENDING_METADATA


def test_obsolete_already_renamed_is_corrected_or_ok():
    master = m("x_obsolete", visibility="private")
    p = plan([master], [r("x_obsolete", visibility="public")])
    assert kinds(p) == [("obsolete_update", "x_obsolete")]
    p = plan([master], [r("x_obsolete", visibility="private")])
    assert p.operations == [] and status(p, "x_obsolete") is Status.OK


@pytest.mark.parametrize("case", ["master_x", "foreign", "disabled", "other_checksum"])
def test_obsolete_exceptions(case):
    masters = [m("x_obsolete")]
    regional = [r("x")]
    kw = {}
    if case == "master_x":
        masters.append(m("x", "c2"))
        regional = [r("x", "c2"), r("y", "c1", id_="yy")]
        regional[1].name = "x"
        regional[1].id = "other-x"
    elif case == "foreign":
        regional = [r("x", owner="p-alice")]
        kw["only_tenant_images"] = False
    elif case == "disabled":
        kw["support_obsolete_images"] = False
    elif case == "other_checksum":
        regional = [r("x", "c9")]
    p = plan(masters, regional, **kw)
    assert not [op for op in p.operations if op.kind.startswith("obsolete")]
    if case == "master_x":
        assert any("x_obsolete" in w for w in p.warnings)


def test_every_status_has_one_category_a_unique_symbol_and_a_description():
    from glancesync.plan import StatusCategory
    assert Status("pending_upload") is Status.PENDING_UPLOAD
    symbols = [s.symbol for s in Status]
    assert len(set(symbols)) == len(symbols) and all(len(x) == 1 for x in symbols)
    for status in Status:
        assert isinstance(status.category, StatusCategory) and status.description
        assert status.is_pending == (status.category is StatusCategory.PENDING)
        assert status.is_error == (status.category is StatusCategory.NEEDS_OPERATOR)
        # The compact views tell pending work (lower case) from an operator's (upper).
        if status.is_pending:
            assert status.symbol.islower()
        if status.is_error:
            assert status.symbol.isupper()


# -- transfer strategies and disk formats ------------------------------------------

SERVER_SIDE = RegionTransfer("auto", region="RegionA", master_region="Master",
                             same_keystone=True, same_credential=True,
                             import_methods=frozenset({"glance-download", "web-download"}))


def test_every_upload_records_its_transfer_and_the_status_says_it():
    p = plan([m("a"), m("b", "c2")], [r("b", "old")], transfer=SERVER_SIDE,
             replace=frozenset({"any"}))
    ops = {op.name: op for op in p.operations}
    assert {op.transfer.strategy for op in ops.values()} == {Strategy.GLANCE_DOWNLOAD}
    assert ops["a"].transfer.source_region == "Master"
    assert "glance-download from Master" in ops["a"].describe()
    a, b = p.status_of("a"), p.status_of("b")
    assert (a.transfer, b.transfer) == ("glance-download", "glance-download")
    assert a.reason == "missing in the region; glance-download from Master"
    assert b.status is Status.PENDING_REPLACE and "glance-download" in b.reason
    assert a.to_dict()["transfer"] == "glance-download"


def test_streamed_by_default_and_no_transfer_without_an_upload():
    p = plan([m("a"), m("b")], [r("b")])
    assert p.operations[0].transfer.strategy is Strategy.STREAM
    assert p.status_of("a").reason == "missing in the region; stream"
    assert p.status_of("b").transfer is None


def test_glance_download_asked_where_impossible_is_streamed_with_a_warning():
    other = dataclasses.replace(SERVER_SIDE, transfer="glance-download", same_keystone=False,
                                region="RegionC")
    p = plan([m("a")], [], transfer=other)
    (op,) = p.operations
    assert op.transfer.strategy is Strategy.STREAM
    assert op.transfer.note == "RegionC is not in the master's Keystone"
    assert p.status_of("a").reason == \
        "missing in the region; stream (RegionC is not in the master's Keystone)"
    assert any("not possible, streamed instead" in w for w in p.warnings)
    quiet = plan([m("a")], [], transfer=dataclasses.replace(other, transfer="auto"))
    assert quiet.warnings == [] and quiet.operations[0].transfer.note


def test_a_converted_copy_is_planned_in_the_wanted_format():
    to_raw = RegionTransfer(convert_to="raw")
    (op,) = plan([m("a")], [], transfer=to_raw).operations
    assert op.changes["disk_format"] == "raw"
    assert (op.transfer.convert_from, op.transfer.disk_format) == ("qcow2", "raw")
    assert op.transfer.describe() == "stream, qcow2 to raw"


def converted(master, disk_format="raw", checksum="conv", **kw):
    """A regional copy of ``master`` converted to ``disk_format``, with its provenance."""
    copy = r(master.name, checksum, **kw)
    copy.disk_format = disk_format
    copy.provenance = Provenance.of(master, "Master")
    return copy


def test_a_converted_copy_is_compared_on_its_provenance_and_format():
    master = m("a")
    to_raw = RegionTransfer(convert_to="raw")
    assert status(plan([master], [converted(master)], transfer=to_raw), "a") is Status.OK
    # Another format, another master content, no record: different content.
    for copy in (converted(master, "vmdk"), r("a", "conv"),
                 converted(m("a", "c-old"))):
        copy.disk_format = copy.disk_format or "raw"
        assert status(plan([master], [copy], transfer=to_raw), "a") is Status.ERROR_CHECKSUM
    # Unconverted, the master's hashes decide as always.
    assert status(plan([master], [converted(master)]), "a") is Status.ERROR_CHECKSUM
    stale = converted(m("a", "c-old"))
    p = plan([master], [stale], transfer=to_raw, replace=frozenset({"any"}))
    assert status(p, "a") is Status.PENDING_REPLACE


# -- the image lifecycle (removal_policy, keep_old_copies) ------------------------------

GONE = Provenance("m-gone", None, "md5:c1")


def lifecycle(p):
    """(status, regional id) of the lifecycle's lines, and the kinds of the steps."""
    lines = [(s.status, s.regional_id) for s in p.statuses if s.name.startswith("x")]
    return lines, [op.kind.value for op in p.operations if op.name.startswith("x")]


def test_copies_of_a_gone_master_get_the_policy_step_last():
    copy = r("x", provenance=GONE)
    p = plan([m("a"), m("big", size=10 ** 9)], [copy], removal_policy="delete",
             removal_grace_hours=0)
    assert lifecycle(p) == ([(Status.PENDING_REMOVAL, copy.id)], ["delete"])
    assert [op.kind.value for op in p.operations] == ["upload", "upload", "delete"]
    assert "m-gone is gone from the master region" in p.statuses[-1].reason
    # keep: nothing reported, nothing done.
    assert lifecycle(plan([m("a")], [copy])) == ([], [])


@pytest.mark.parametrize("policy, fields, retired", [
    ("hide", {"os_hidden": True}, True), ("hide", {"status": "deactivated"}, False),
    ("deactivate", {"status": "deactivated"}, True), ("deactivate", {"os_hidden": True}, False),
    ("delete", {"os_hidden": True}, False), ("delete", {"status": "deactivated"}, False)])
def test_a_copy_already_retired_the_policy_way_is_ok(policy, fields, retired):
    copy = r("x", provenance=GONE)
    for key, value in fields.items():
        setattr(copy, key, value)
    p = plan([m("a")], [copy], removal_policy=policy, removal_grace_hours=0)
    assert lifecycle(p) == (([(Status.OK_RETIRED, copy.id)], []) if retired else
                            ([(Status.PENDING_REMOVAL, copy.id)], [policy]))


@pytest.mark.parametrize("case", ["obsolete", "deactivated", "duplicate", "queued",
                                  "renamed", "other_master_region", "no_provenance",
                                  "synchronised_name", "empty_master"])
def test_copies_whose_master_is_still_there_are_never_removed(case):
    """A master image still listed in any state, renamed or made obsolete is not gone;
    another federation's copies, images without provenance and images named like a
    synchronised master image are not ours to remove; nor is anything when the master
    region offers no image at all (a wrong credential looks like that)."""
    masters = [m("a")]
    copy = r("x", provenance=Provenance("m-x", None, "md5:c1"))
    if case == "obsolete":
        masters.append(m("x_obsolete", id_="m-x"))
    elif case == "deactivated":
        masters.append(m("x", status="deactivated"))
    elif case == "duplicate":
        masters += [m("x"), m("x", id_="m-x2")]
    elif case == "queued":
        masters.append(m("x", status="queued", checksum=None))
    elif case == "renamed":
        masters.append(m("x-renamed", id_="m-x"))
    elif case == "other_master_region":
        copy.provenance = Provenance("m-gone", "ElsewhereMaster", "md5:c1")
    elif case == "no_provenance":
        copy.provenance = None
    elif case == "synchronised_name":
        masters.append(m("x", "c2", id_="m-x-new"))
        copy.provenance = GONE
    elif case == "empty_master":
        masters = []
        copy.provenance = GONE
    p = plan(masters, [copy], removal_policy="delete", removal_grace_hours=0)
    assert not [s for s in p.statuses if s.status in (
        Status.PENDING_REMOVAL, Status.INFO_REMOVAL_GRACE, Status.OK_RETIRED)]
    assert not [op for op in p.operations if op.kind.removes]
    if case == "empty_master":
        assert any("offers no image" in w for w in p.warnings)


def test_obsolete_master_without_obsolete_support_is_no_longer_selected():
    copy = r("x", provenance=Provenance("m-x", None, "md5:c1"))
    p = plan([m("a"), m("x_obsolete", id_="m-x")], [copy], removal_policy="hide",
             removal_grace_hours=0, support_obsolete_images=False)
    assert lifecycle(p) == ([(Status.PENDING_REMOVAL, copy.id)], ["hide"])
    assert "no longer selected" in p.statuses[-1].reason


def test_grace_period_counts_from_the_recorded_mark():
    copy = r("x", provenance=GONE)
    p = plan([m("a")], [copy], removal_policy="deactivate", removal_grace_hours=48)
    assert lifecycle(p) == ([(Status.INFO_REMOVAL_GRACE, copy.id)], ["update_metadata"])
    (op,) = [op for op in p.operations if op.name == "x"]
    assert op.changes == {MARK_ORPHANED: "2030-01-01T12:00:00Z"}
    for mark, expected in [("2030-01-01T00:00:00Z", (Status.INFO_REMOVAL_GRACE, [])),
                           ("2029-12-30T11:59:59Z", (Status.PENDING_REMOVAL, ["deactivate"])),
                           ("not a time", (Status.INFO_REMOVAL_GRACE, ["update_metadata"]))]:
        copy.marks = {MARK_ORPHANED: mark}
        p = plan([m("a")], [copy], removal_policy="deactivate", removal_grace_hours=48)
        assert lifecycle(p) == ([(expected[0], copy.id)], expected[1]), mark
    copy.marks = {MARK_ORPHANED: "2030-01-01T00:00:00Z"}
    assert "in 36.0 h" in plan([m("a")], [copy], removal_policy="deactivate",
                               removal_grace_hours=48).statuses[-1].reason


def test_a_master_back_clears_the_marks_and_undoes_the_policy():
    hidden = r("x", provenance=Provenance("m-x", None, "md5:c1"))
    hidden.os_hidden = True
    hidden.marks = {MARK_ORPHANED: "2029-01-01T00:00:00Z", MARK_RETIRED: "hide"}
    p = plan([m("x")], [hidden], removal_policy="hide")
    assert status(p, "x") is Status.PENDING_METADATA
    (op,) = p.operations
    assert op.changes == {"os_hidden": False}
    assert set(op.remove) == {MARK_ORPHANED, MARK_RETIRED}
    deactivated = r("x", status="deactivated", provenance=Provenance("m-x", None, "md5:c1"))
    deactivated.marks = {MARK_RETIRED: "deactivate"}
    p = plan([m("x")], [deactivated])  # deactivated_copies = report
    assert status(p, "x") is Status.PENDING_REACTIVATE
    assert p.operations[0].kind == "reactivate" and p.operations[0].remove == (MARK_RETIRED,)
    # Deactivated by an operator (no mark): still the operator's decision.
    deactivated.marks = {}
    assert status(plan([m("x")], [deactivated]), "x") is Status.ERROR_DEACTIVATED
    # Back under another name: only the clock is stopped.
    renamed = r("x", provenance=Provenance("m-y", None, "md5:c1"))
    renamed.marks = {MARK_ORPHANED: "2029-01-01T00:00:00Z"}
    p = plan([m("y")], [renamed])
    assert lifecycle(p) == ([(Status.PENDING_METADATA, renamed.id)], ["update_metadata"])
    assert [op.remove for op in p.operations if op.name == "x"] == [(MARK_ORPHANED,)]


def test_protected_and_other_projects_copies_are_reported_never_touched():
    protected = r("x1", provenance=GONE)
    protected.protected = True
    theirs = r("x2", owner="p-alice", provenance=GONE)
    p = plan([m("a")], [protected, theirs], removal_policy="delete", removal_grace_hours=0)
    assert lifecycle(p) == ([(Status.INFO_REMOVAL_SKIPPED, protected.id),
                             (Status.INFO_REMOVAL_SKIPPED, theirs.id)], [])
    assert "protected" in p.statuses[-2].reason and "p-alice" in p.statuses[-1].reason


def old_copy(renamed_at, *, name="x.old", **kw):
    image = r(name, id_=f"r-old-{renamed_at}", **kw)
    image.marks = {MARK_RENAMED: renamed_at} if renamed_at else {}
    return image


def test_keep_old_copies_retires_the_oldest_marked_ones_without_grace():
    copies = [old_copy("2030-01-0%dT00:00:00Z" % day) for day in (1, 3, 2)]
    unmarked = old_copy(None, provenance=None)
    other_name = old_copy("2020-01-01T00:00:00Z", name="y.old")
    p = plan([m("a")], copies + [unmarked, other_name], removal_policy="delete",
             removal_grace_hours=100, keep_old_copies=1)
    assert lifecycle(p) == ([(Status.PENDING_REMOVAL, "r-old-2030-01-01T00:00:00Z"),
                             (Status.PENDING_REMOVAL, "r-old-2030-01-02T00:00:00Z")],
                            ["delete", "delete"])
    assert "3 x.old copies, keep_old_copies = 1" in p.statuses[-1].reason
    # A .old copy whose master is gone follows keep_old_copies only.
    gone = old_copy("2030-01-04T00:00:00Z", provenance=GONE)
    p = plan([m("a")], [gone], removal_policy="delete", removal_grace_hours=0)
    assert lifecycle(p) == ([], [])


def test_image_patterns_keep_only_the_lifecycle_steps_of_matching_images():
    """--image: a copy whose master is gone is removed only when its name matches;
    the NAME.old copies of a matching NAME go with it."""
    gone = r("x", provenance=GONE)
    other = r("y", provenance=Provenance("m-y", None, "md5:c2"))
    olds = [old_copy("2030-01-0%dT00:00:00Z" % day) for day in (1, 2)]
    p = plan([m("a")], [gone, other] + olds, removal_policy="delete",
             removal_grace_hours=0, keep_old_copies=1)
    assert sorted(op.name for op in p.removals) == ["x", "x.old", "y"]
    scoped = scope.restrict(p, ["x"])
    assert sorted((s.name, s.status) for s in scoped.statuses) == [
        ("x", Status.PENDING_REMOVAL), ("x.old", Status.PENDING_REMOVAL)]
    assert sorted(op.regional.id for op in scoped.removals) == sorted(
        [gone.id, "r-old-2030-01-01T00:00:00Z"])
    assert [op.name for op in scope.restrict(p, ["y*"]).operations] == ["y"]
    assert scope.restrict(p, ["a"]).removals == []


def test_max_deletes_holds_every_removal_step_of_a_run_beyond_it():
    def plans():
        made = []
        for region, names in (("RegionA", ["x1", "x2"]), ("RegionB", ["x3"])):
            p = plan([m("a")], [r(n, provenance=GONE) for n in names],
                     removal_policy="hide", removal_grace_hours=0)
            p.region = region
            made.append(p)
        return made

    within = plans()
    assert hold_removals(within, 3) == 3
    assert [len(p.removals) for p in within] == [2, 1]
    assert all(s.status is not Status.ERROR_MAX_DELETES for p in within for s in p.statuses)
    beyond = plans()
    assert hold_removals(beyond, 2) == 3
    for p in beyond:
        assert p.removals == [] and [op.kind.value for op in p.operations] == ["upload"]
        held = [s for s in p.statuses if s.name.startswith("x")]
        assert held and all(s.status is Status.ERROR_MAX_DELETES for s in held)
        assert all("3 removal steps, more than max_deletes = 2" in s.reason
                   and "max_deletes=3" in s.reason for s in held)
        assert any("max_deletes = 2" in w for w in p.warnings)
        assert p.needs_operator
    # Nothing to remove: max_deletes = 0 holds nothing.
    quiet = plan([m("a")], [r("a")], removal_policy="delete")
    assert hold_removals([quiet], 0) == 0 and not quiet.needs_operator


def test_an_obsolete_copy_whose_master_is_deleted_gets_the_policy_step():
    """The obsolete convention renamed the copy; the master then deleted its
    NAME_obsolete image: the copy follows removal_policy like any other."""
    renamed = r("x_obsolete", provenance=Provenance("m-x", None, "md5:c1"))
    still = plan([m("a"), m("x_obsolete", id_="m-x")], [renamed], removal_policy="delete",
                 removal_grace_hours=0)
    assert lifecycle(still) == ([(Status.OK, renamed.id)], [])  # the obsolete line
    gone = plan([m("a")], [renamed], removal_policy="delete", removal_grace_hours=0)
    assert lifecycle(gone) == ([(Status.PENDING_REMOVAL, renamed.id)], ["delete"])
