"""glancesync.executor.actions: the one place that changes a region, honouring dry run."""
from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

from glancesync.executor.actions import VERBS, RegionActions, describe

from tests.unit.executor.regions import Recording

EXECUTOR = Path(__file__).resolve().parents[3] / "glancesync" / "executor"


@pytest.fixture
def region(tmp_path):
    return Recording("master:RegionA", tmp_path / "RegionA")


def test_a_dry_run_only_logs_what_it_would_do(region, caplog):
    actions = RegionActions(region, dry_run=True)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        assert actions.act("delete", "image x", region.delete_image, "x") is None
    assert region.changes == []
    assert "master:RegionA: would delete image x" in caplog.text


def test_a_real_run_logs_and_makes_the_change(region, caplog):
    actions = RegionActions(region, dry_run=False)
    with caplog.at_level(logging.INFO, logger="glancesync.executor"):
        image = actions.act("create", "image a", region.create_image, "a",
                            disk_format="raw", container_format="bare")
    assert image.name == "a" and region.changes == [("create", "a")]
    assert actions.region == "master:RegionA"
    # creating is half of an upload: logged at debug level only
    assert "creating" not in caplog.text


def test_every_verb_the_executor_uses_is_declared():
    used = set()
    for path in EXECUTOR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "act" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                used.add(node.args[0].value)
    assert used and used <= set(VERBS)


def test_describe_lists_the_changes_sorted_then_the_removals():
    assert describe({"b": 1, "a": "x"}, ["c"]) == "a=x, b=1, -c"
