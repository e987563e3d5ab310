"""glancesync.executor.run: one region's plan run, operation by operation (issue 27).

The safety rules of the run itself: the lifecycle's removal steps are
postponed once an operation of the region failed (not after a refusal,
which is one image's business); a stop request starts no other operation;
a refusal makes the image's status need an operator, saying who refused
what and why (with what of a quota GlanceSync's own records use). Each
operation's outcome counts its own bytes and time only. Real local regions.
"""
from __future__ import annotations

import dataclasses
import logging

import pytest

from glancesync.errors import ImageRefusedError, ServiceError, TransferError
from glancesync.executor import (DONE, FAILED, NOT_STARTED, POSTPONED, REFUSED, Executor)
from glancesync.executor.run import quota_note
from glancesync.image import Provenance
from glancesync.plan.model import ImageStatus, Operation, OperationKind, RegionPlan, Status
from glancesync.retry import RetryingAdapter, RetryPolicy
from glancesync.stopping import StopRequest

from tests.engine import DirectSource
from tests.scenarios import put
from tests.unit.executor.regions import Recording
from tests.unit.executor.test_upload import upload_op
from tests.unit.test_executor_faults import FlippingSource

REGION = "master:RegionA"
DATA = b"\x03" * 4096
NOTE = "postponed: this region's run had an error (the next run without one takes it)"


@pytest.fixture
def master(tmp_path):
    return Recording("master:Master", tmp_path / "Master", "p-master")


@pytest.fixture
def region(tmp_path):
    return Recording(REGION, tmp_path / "RegionA")


@pytest.fixture
def caplog(caplog):
    caplog.set_level(logging.DEBUG, logger="glancesync.executor")
    return caplog


def lines(caplog, level=None) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "glancesync.executor" and level in (None, r.levelname)]


def removal(region, name: str, kind=OperationKind.DELETE):
    """A copy of ``name`` in ``region``, its pending_removal line and its removal step."""
    copy = put(region, name, b"old")
    line = ImageStatus(Status.PENDING_REMOVAL, REGION, name, None, copy.id,
                       reason="its master image is gone")
    changes = {"os_hidden": True} if kind is OperationKind.HIDE else {}
    return copy, line, Operation(kind, name, regional=copy, changes=changes, reason="gone")


def upload_plan(master, names, *extra):
    """A plan uploading master images ``names``, then the ``extra`` (line, op) pairs."""
    statuses, ops = [], []
    for name in names:
        image = put(master, name, DATA)
        statuses.append(ImageStatus(Status.PENDING_UPLOAD, REGION, name, image.id, None,
                                    reason="not in the region"))
        ops.append(upload_op(image))
    for line, op in extra:
        statuses.append(line)
        ops.append(op)
    return RegionPlan(REGION, statuses=statuses, operations=ops)


def test_removal_steps_wait_for_a_run_without_failure(master, region, caplog):
    gone, gone_line, delete = removal(region, "gone")
    hidden, hidden_line, hide = removal(region, "hidden", OperationKind.HIDE)
    plan = upload_plan(master, ["new"], (gone_line, delete), (hidden_line, hide))
    result = Executor(region, FlippingSource(master, {"new"}), progress=False).execute(plan)
    assert [o.result for o in result.outcomes] == [FAILED, POSTPONED, POSTPONED]
    assert [o.error for o in result.outcomes[1:]] == [NOTE, NOTE]
    assert (result.errors, result.postponed, result.deleted, result.retired) == (1, 2, 0, 0)
    assert gone_line.reason == f"its master image is gone; {NOTE}"
    assert hidden_line.reason == f"its master image is gone; {NOTE}"
    assert region.get_image(gone.id).status == "active"
    assert region.get_image(hidden.id).os_hidden is False
    assert f"{REGION}: delete of image gone ({gone.id}) {NOTE}" in lines(caplog, "WARNING")
    assert f"{REGION}: hide of image hidden ({hidden.id}) {NOTE}" in lines(caplog, "WARNING")
    assert set(result.failed) == {"new"}


def test_a_removal_before_the_failure_is_taken(master, region):
    gone, gone_line, delete = removal(region, "gone")
    image = put(master, "new", DATA)
    plan = RegionPlan(REGION, statuses=[gone_line], operations=[delete, upload_op(image)])
    result = Executor(region, FlippingSource(master, {"new"}), progress=False).execute(plan)
    assert [o.result for o in result.outcomes] == [DONE, FAILED]
    assert result.deleted == 1 and result.postponed == 0


def test_a_refusal_does_not_hold_back_the_removal_steps(master, region, caplog):
    """A replace refused (the old copy was protected since the plan) needs an
    operator for that image; the region's other removal steps go on."""
    image = put(master, "a", DATA)
    old = put(region, "a", b"\x01" * 10)
    region.update_image(old.id, {"protected": True})
    line = ImageStatus(Status.PENDING_REPLACE, REGION, "a", image.id, old.id)
    replace = dataclasses.replace(upload_op(image), kind=OperationKind.REPLACE, regional=old)
    gone, gone_line, delete = removal(region, "gone")
    plan = RegionPlan(REGION, statuses=[line, gone_line], operations=[replace, delete])
    result = Executor(region, DirectSource(master), progress=False).execute(plan)
    assert [o.result for o in result.outcomes] == [REFUSED, DONE]
    assert (result.errors, result.needs_operator, result.deleted) == (0, 1, 1)
    assert line.status is Status.ERROR_PROTECTED and "never unprotects" in line.reason
    assert result.outcomes[0].error == str(replace_error(line))
    assert f"{REGION}: image a: {line.reason}" in lines(caplog, "ERROR")


def replace_error(line):
    return f"region {REGION}, image a: {line.reason}"


def test_a_stop_requested_before_the_run_starts_nothing(master, region):
    stop = StopRequest()
    stop.set("SIGTERM received")
    gone, gone_line, delete = removal(region, "gone")
    plan = upload_plan(master, ["a", "b"], (gone_line, delete))
    result = Executor(region, DirectSource(master), progress=False, stop=stop).execute(plan)
    assert [o.result for o in result.outcomes] == [NOT_STARTED] * 3
    assert {o.error for o in result.outcomes} == {stop.error().message}
    assert result.not_done == 3 and not result.success
    assert region.list_images() == [gone]


def test_the_run_counts_the_images_already_ok_and_those_needing_an_operator(master, region,
                                                                            caplog):
    statuses = [ImageStatus(Status.OK, REGION, "ok", "m1", "r1"),
                ImageStatus(Status.OK_DEACTIVATED, REGION, "d", "m2", "r2"),
                ImageStatus(Status.PENDING_UPLOAD, REGION, "p", "m3", None),
                ImageStatus(Status.ERROR_CHECKSUM, REGION, "e", "m4", "r4"),
                ImageStatus(Status.INFO_RENAMED, REGION, "i", "m5", "r5")]
    result = Executor(region, None, progress=False).execute(RegionPlan(REGION, statuses))
    assert (result.ok, result.needs_operator) == (2, 1)
    (summary,) = [r for r in caplog.records if r.getMessage() == result.summary()]
    assert summary.levelname == "INFO" and summary.summary is True


def test_each_outcome_counts_its_own_bytes_and_time(master, region):
    copy = put(region, "vm", b"x")
    update = Operation(OperationKind.UPDATE_METADATA, "vm", regional=copy,
                       changes={"type": "y"})
    plan = upload_plan(master, ["a", "b"])
    plan.operations.append(update)
    result = Executor(region, DirectSource(master), progress=False).execute(plan)
    first, second, third = result.outcomes
    assert (first.bytes, second.bytes, third.bytes) == (len(DATA), len(DATA), 0)
    assert third.bytes_server_side == 0
    assert third.transfer_seconds == 0.0  # nothing sent: the upload's time not carried over
    for outcome in result.outcomes:
        assert 0 <= outcome.transfer_seconds <= outcome.seconds < 3600


def test_a_dry_run_counts_no_transfer_time(master, region):
    result = Executor(region, DirectSource(master), progress=False, dry_run=True).execute(
        upload_plan(master, ["a"]))
    (outcome,) = result.outcomes
    assert (outcome.result, outcome.bytes, outcome.transfer_seconds) == (DONE, len(DATA), 0.0)


class Refusing(Recording):
    """A local region refusing every metadata change with ``status``."""

    status = 403

    def update_image(self, image_id, changes, remove=()):
        raise ServiceError("Forbidden: not allowed here", status_code=self.status,
                           region=self.name)


@pytest.fixture
def refusing(tmp_path):
    return Refusing(REGION, tmp_path / "Refusing")


def test_a_refused_change_says_which_change_the_region_refused(refusing, caplog):
    copy = put(refusing, "vm", b"x")
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=copy, changes={"type": "y"},
                   remove=("old",))
    line = ImageStatus(Status.PENDING_METADATA, REGION, "vm", "m1", copy.id)
    result = Executor(refusing, None, progress=False).execute(
        RegionPlan(REGION, [line], [op]))
    reason = ("the region refused the change (update_metadata vm [type, -old]): Forbidden:"
              " not allowed here; it will refuse it at every run until an operator acts")
    assert (line.status, line.reason) == (Status.ERROR_REFUSED, reason)
    assert result.outcomes[0].result == REFUSED and result.errors == 0
    assert result.needs_operator == 1
    assert f"{REGION}: image vm: {reason}" in lines(caplog, "ERROR")


def test_a_refused_upload_says_a_step_of_it_was_refused(master, refusing):
    image = put(master, "a", DATA)
    line = ImageStatus(Status.PENDING_UPLOAD, REGION, "a", image.id, None)
    Executor(refusing, DirectSource(master), progress=False).execute(
        RegionPlan(REGION, [line], [upload_op(image)]))
    assert line.status is Status.ERROR_REFUSED
    assert line.reason.startswith("the region refused a step of the upload: Forbidden")


class Unconvertible(DirectSource):
    def prepare(self, image, *args):
        raise ImageRefusedError("it names a backing file", image=image.name)


def test_a_master_image_glancesync_refuses_to_convert_is_said_so(master, region):
    image = put(master, "a", DATA)
    line = ImageStatus(Status.PENDING_UPLOAD, REGION, "a", image.id, None)
    Executor(region, Unconvertible(master), progress=False).execute(
        RegionPlan(REGION, [line], [upload_op(image)]))
    assert line.status is Status.ERROR_REFUSED
    assert line.reason == ("GlanceSync refused to convert the master image (it names a"
                           " backing file); the region was not asked; every run refuses"
                           " it until an operator replaces the master image")
    assert region.changes == []


def test_a_quota_refusal_of_an_upload_counts_glancesyncs_own_properties(master):
    image = put(master, "a", DATA)
    op = upload_op(image, late_properties={"img_signature": "s"})
    op = dataclasses.replace(op, add_members=("p1", "p2"))
    note = quota_note(op, ServiceError("quota", status_code=413))
    own = sorted(Provenance.of(image, "Master").stamped().as_properties())
    assert note == (f" (the image would carry {len(own) + 2} properties, {len(own)} of them"
                    f" GlanceSync's own records and marks: {', '.join(own)}; they count in"
                    " the region's image_property_quota) (it would be shared with 2 more"
                    " project(s): image_member_quota)")
    assert quota_note(op, ServiceError("forbidden", status_code=403)) == ""


def test_a_quota_refusal_of_a_metadata_change_counts_what_the_copy_would_carry(region):
    copy = dataclasses.replace(put(region, "vm", b"x", type="t", gone="g"),
                               marks={"glancesync.retired": "hide"},
                               provenance=Provenance("m-1", "Master", "md5:0", None, None))
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=copy,
                   changes={"glancesync.copied_at": "now", "os_distro": "x", "min_ram": 1},
                   remove=("gone",))
    note = quota_note(op, ServiceError("quota", status_code=413))
    own = sorted({"glancesync.retired", "glancesync.copied_at"} | set(
        copy.provenance.as_properties()))
    keys = {"type", "os_distro"} | set(own)
    assert note == (f" (the image would carry {len(keys)} properties, {len(own)} of them"
                    f" GlanceSync's own records and marks: {', '.join(own)}; they count in"
                    " the region's image_property_quota)")


def test_no_quota_note_without_records_or_members(region):
    copy = put(region, "vm", b"x")
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=copy, changes={"a": "b"})
    assert quota_note(op, ServiceError("quota", status_code=413)) == ""
    bare = Operation(OperationKind.CLEANUP, "vm")
    assert quota_note(bare, ServiceError("quota", status_code=413)) == ""


def test_a_one_off_metadata_change_is_logged_with_why(region, caplog):
    copy = put(region, "vm", b"x", old="o")
    executor = Executor(region, None, progress=False)
    updated = executor.update_metadata(copy, {"k": "v"}, ["old"], reason="restoring a backup")
    assert updated.properties == {"k": "v"}
    executor.update_metadata(copy, {"k": "w"})
    assert lines(caplog, "INFO") == [
        f"{REGION}: updating image vm [k=v, -old] (restoring a backup)",
        f"{REGION}: updating image vm [k=w]"]


def test_the_adapter_is_wrapped_once_and_given_the_stop(region):
    stop = StopRequest()
    region.import_stop = None
    executor = Executor(region, None, progress=False, stop=stop,
                        retry=RetryPolicy(retries=7))
    assert isinstance(executor.adapter, RetryingAdapter)
    assert executor.adapter.inner is region and region.import_stop is stop
    assert executor.region == REGION and executor.stream.stop is stop
    again = Executor(executor.adapter, None, progress=False)
    assert again.adapter is executor.adapter


def test_refusals_by_validate_command_are_counted_and_said(master, region, caplog):
    from tests.unit.executor.test_validation import command
    plan = upload_plan(master, ["a", "b"])
    plan.statuses.append(ImageStatus(Status.ERROR_CHECKSUM, REGION, "c", "m", "r"))
    executor = Executor(region, DirectSource(master), progress=False,
                        validation=command("raise SystemExit(1)"))
    result = executor.execute(plan)
    assert [o.result for o in result.outcomes] == [REFUSED, REFUSED]
    assert result.needs_operator == 3 and result.errors == 0
    for outcome in result.outcomes:
        line = plan.status_of(outcome.name)
        assert line.status is Status.ERROR_VALIDATION
        assert outcome.error == f"region {REGION}, image {outcome.name}: {line.reason}"
        assert f"{REGION}: image {outcome.name}: {line.reason}" in lines(caplog, "ERROR")


def test_refusals_by_the_region_are_counted_each(refusing):
    ops, statuses = [], []
    for name in ("a", "b"):
        copy = put(refusing, name, b"x")
        ops.append(Operation(OperationKind.UPDATE_METADATA, name, regional=copy,
                             changes={"type": "y"}))
        statuses.append(ImageStatus(Status.PENDING_METADATA, REGION, name, "m", copy.id))
    result = Executor(refusing, None, progress=False).execute(RegionPlan(REGION, statuses, ops))
    assert result.needs_operator == 2


def test_a_quota_refusal_names_what_glancesync_adds(tmp_path):
    quota = Refusing(REGION, tmp_path / "Quota")
    quota.status = 413
    copy = dataclasses.replace(put(quota, "vm", b"x"),
                               provenance=Provenance("m-1", "Master", "md5:0", None, None))
    op = Operation(OperationKind.UPDATE_METADATA, "vm", regional=copy, changes={"type": "y"})
    line = ImageStatus(Status.PENDING_METADATA, REGION, "vm", "m-1", copy.id)
    Executor(quota, None, progress=False).execute(RegionPlan(REGION, [line], [op]))
    assert quota_note(op, ServiceError("q", status_code=413)) in line.reason
    assert "image_property_quota" in line.reason


def test_failed_and_stopped_operations_are_said_and_counted(master, region, caplog):
    stop = StopRequest()

    class StopsAfterOne(DirectSource):
        """Fails the data of "bad"; asks the run to stop while "stopped" is sent."""

        def chunks(self, image):
            if image.name == "bad":
                raise TransferError("the master's data is unreadable", image="bad")
            for chunk in super().chunks(image):
                stop.set("SIGTERM received")
                yield chunk

    plan = upload_plan(master, ["bad", "stopped", "later"])
    retry = RetryPolicy(retries=0)
    result = Executor(region, StopsAfterOne(master), progress=False, stop=stop,
                      retry=retry).execute(plan)
    assert [o.result for o in result.outcomes] == [FAILED, "stopped", NOT_STARTED]
    assert (result.errors, result.not_done) == (1, 2)
    bad, stopped, _ = plan.operations
    said = f"region {REGION}, image bad: the master's data is unreadable"
    assert result.outcomes[0].error == said and result.failed == {"bad": said}
    assert f"{REGION}: {bad.describe()} failed: {said}" in lines(caplog, "ERROR")
    assert (f"{REGION}: {stopped.describe()} interrupted: stopped: SIGTERM received"
            in lines(caplog, "WARNING"))


def test_the_executors_defaults(region, master):
    source = DirectSource(master)
    executor = Executor(region, source, progress=False)
    assert executor.server_copy.import_timeout == 1800.0
    assert executor.stream.saving_timeout == 900.0
    assert executor.source is source and executor.stream.source is source
    assert not executor.dry_run and not executor.stop.is_set()
