"""glancesync.plan.validation: copies validate_command did not accept."""
from __future__ import annotations

from glancesync.config import TargetConfig
from glancesync.image import Provenance
from glancesync.plan import OperationKind, Status, make_plan
from glancesync.plan.validation import FAILED, MARK_VALIDATION, MARK_VALIDATION_OUTPUT, PENDING
from glancesync.selection import select_master

from tests.unit.plan.builders import MASTER_PROJECT, MASTER_REGION, NOW, PROJECT, m, r


def plan(masters, regional, **policy):
    return make_plan("RegionA", select_master(masters, MASTER_PROJECT, MASTER_REGION),
                     regional, PROJECT, TargetConfig(name="t", **policy), now=NOW)


def refused(name, checksum="c2", mark=FAILED, master_id=None, **fields):
    image = r(name, checksum, visibility="private",
              provenance=Provenance(master_id or f"m-{name}", MASTER_REGION, f"md5:{checksum}"),
              **fields)
    image.marks = {MARK_VALIDATION: mark, MARK_VALIDATION_OUTPUT: "boot failed | exit 3"}
    return image


def test_a_refused_copy_is_never_published_and_never_made_again():
    in_service = r("a", "c1")
    result = plan([m("a", "c2")], [in_service, refused("a")], rename=frozenset({"any"}))
    line = result.status_of("a")
    assert line.status is Status.ERROR_VALIDATION and line.regional_id == "r-a-c2"
    assert "last lines: boot failed | exit 3" in line.reason
    assert f"copy {in_service.id} stays in service" in line.reason
    assert result.operations == []  # neither a new upload nor a metadata update


def test_without_the_concern_the_refused_copy_would_be_published():
    # What the concern prevents: the refused copy has the master's content.
    from glancesync.plan import STEPS, validation
    steps = [s for s in STEPS if s not in (validation.set_aside, validation.report)]
    masters = select_master([m("a", "c2")], MASTER_PROJECT, MASTER_REGION)
    result = make_plan("RegionA", masters, [r("a", "c1"), refused("a")], PROJECT,
                       TargetConfig(name="t", rename=frozenset({"any"})), now=NOW, steps=steps)
    assert any(op.kind is OperationKind.UPDATE_METADATA and op.changes.get("visibility")
               == "public" for op in result.operations)


def test_an_interrupted_validation_is_an_error_too():
    result = plan([m("a", "c2")], [refused("a", mark=PENDING)])
    line = result.status_of("a")
    assert line.status is Status.ERROR_VALIDATION
    assert "interrupted run" in line.reason and "no copy in service" in line.reason


def test_a_refused_copy_of_an_earlier_master_is_a_warning_and_left_to_the_lifecycle():
    old = refused("a", "c3", master_id="m-earlier")
    result = plan([m("a", "c2")], [old])
    assert result.status_of("a").status is Status.PENDING_UPLOAD
    assert any("of an earlier master image" in w for w in result.warnings)


def test_another_projects_marked_image_is_not_set_aside():
    theirs = refused("a", "c2", owner="p-other")
    result = plan([m("a", "c2")], [theirs], only_tenant_images=False)
    assert result.status_of("a").status is not Status.ERROR_VALIDATION


def test_a_new_copy_says_it_will_be_validated():
    result = plan([m("a")], [], validate_command="boot-test")
    assert result.status_of("a").reason.endswith(
        "validate_command checks it before it is published")
    assert "validate_command" not in plan([m("a")], []).status_of("a").reason


def test_the_error_names_the_master_the_copy_and_what_to_do():
    in_service = r("a", "c1")
    result = plan([m("a", "c2")], [in_service, refused("a")], rename=frozenset({"any"}))
    line = result.status_of("a")
    reason = ("new copy r-a-c2 refused by validate_command; it stays private (last lines:"
              " boot failed | exit 3); copy r-a-c1 stays in service; delete the new copy to"
              " have another made and validated")
    assert (line.master_id, line.regional_id, line.reason) == ("m-a", "r-a-c2", reason)
    assert f"image a: {reason}" in result.warnings
    pending = refused("a", mark=PENDING)
    del pending.marks[MARK_VALIDATION_OUTPUT]
    assert plan([m("a", "c2")], [pending]).status_of("a").reason == (
        "new copy r-a-c2 left unvalidated by an interrupted run; it stays private; no copy in"
        " service; delete the new copy to have another made and validated")


def test_the_copy_in_service_keeps_its_metadata_update():
    # The copy in service has the master's content too: no upload to drop, its
    # visibility is still corrected.
    in_service = r("a", "c2", id_="r-in-service", visibility="private")
    result = plan([m("a", "c2")], [in_service, refused("a")])
    assert result.status_of("a").status is Status.ERROR_VALIDATION
    assert [(op.kind, op.regional) for op in result.operations] == [
        (OperationKind.UPDATE_METADATA, in_service)]


def test_copies_of_earlier_masters_are_warned_about_in_name_order():
    copies = [refused("B", "c3", id_="0-b", master_id="m-old3"),
              refused("A", "c3", id_="a-2", master_id="m-old2"),
              refused("A", "c3", id_="a-1", master_id="m-old"),
              refused(None, "c3", id_="z-none", master_id="m-XXXX"),
              refused("gone", "c3", id_="g-1")]  # its name is not synchronised any more
    result = plan([m("A", "c2"), m("B", "c2"), m("XXXX", "c2")], copies)
    assert result.warnings == [
        f"image {name} ({id_}): a copy validate_command did not accept (failed) of an"
        " earlier master image; delete it when it is of no more use"
        for name, id_ in [(None, "z-none"), ("A", "a-1"), ("A", "a-2"), ("B", "0-b"),
                          ("gone", "g-1")]]


def test_only_new_copies_say_they_will_be_validated():
    result = plan([m("a"), m("b")], [r("b", visibility="private")],
                  validate_command="boot-test")
    assert result.status_of("a").reason == (
        "missing in the region; stream; validate_command checks it before it is published")
    assert "validate_command" not in result.status_of("b").reason
