"""glancesync.plan.model: names Glance accepts, descriptions, lines of operations."""
from __future__ import annotations

from glancesync.plan.model import (ImageStatus, Operation, OperationKind, RegionPlan, Status,
                                   name_problem)
from glancesync.strategy import Strategy, Transfer

from tests.unit.plan.builders import r


def test_255_characters_is_the_longest_name():
    assert name_problem("n" * 255) is None
    assert name_problem("n" * 256) == ("the name " + "n" * 40 + "... would have 256 characters,"
                                       " more than the 255 Glance accepts")


def test_a_status_as_a_dict_has_its_value_and_every_field_once():
    line = ImageStatus(Status.OK, "RegionA", "a", "m-a", "r-a", "fine")
    assert line.to_dict() == {"status": "ok", "region": "RegionA", "name": "a",
                              "master_id": "m-a", "regional_id": "r-a", "reason": "fine",
                              "transfer": None}
    assert type(line.to_dict()["status"]) is str


def test_every_kind_of_operation_is_described():
    big = Operation(OperationKind.UPLOAD, "a", size=1000 * 1024 * 1024)
    assert big.describe() == "upload a (1000.0 MiB)"
    big.transfer, big.image_id = Transfer(Strategy.STREAM, "raw"), "id-1"
    assert big.describe() == f"upload a (1000.0 MiB, {big.transfer.describe()}) as id id-1"
    leftover = r("b", status="saving")
    assert Operation(OperationKind.CLEANUP, "b", regional=leftover).describe() \
        == "cleanup b (saving)"
    assert Operation(OperationKind.CLEANUP, "b").describe() == "cleanup b (?)"
    assert Operation(OperationKind.DELETE, "b", regional=leftover).describe() \
        == f"delete b ({leftover.id})"
    assert Operation(OperationKind.HIDE, "b").describe() == "hide b (?)"
    update = Operation(OperationKind.UPDATE_METADATA, "c", changes={"z": 1, "a": 2},
                       remove=("old",), add_members=("p1",), remove_members=("p2",))
    assert update.describe() == "update_metadata c [a, z, -old, +member p1, -member p2]"
    assert Operation(OperationKind.UPDATE_METADATA, "c",
                     add_members=("p1",)).describe() == "update_metadata c [+member p1]"


def test_the_line_of_an_operation_is_its_image_s_own_else_its_name_s():
    leftover = r("a", status="queued", id_="r-left")
    plan = RegionPlan("RegionA", statuses=[
        ImageStatus(Status.OK, "RegionA", "a", "m-a", "r-a", ""),
        ImageStatus(Status.PENDING_CLEANUP, "RegionA", "a", "m-a", "r-left", ""),
        ImageStatus(Status.PENDING_CLEANUP, "RegionA", "b", "m-b", "r-left", "")])
    assert plan.line_of(Operation(OperationKind.CLEANUP, "a", regional=leftover)) \
        is plan.statuses[1]
    assert plan.line_of(Operation(OperationKind.UPDATE_METADATA, "a")) is plan.statuses[0]
    assert plan.line_of(Operation(OperationKind.UPDATE_METADATA, "a", regional=r("a", id_="x"))) \
        is plan.statuses[0]
    assert plan.line_of(Operation(OperationKind.CLEANUP, "b", regional=leftover)) \
        is plan.statuses[2]
