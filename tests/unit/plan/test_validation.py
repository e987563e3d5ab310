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
