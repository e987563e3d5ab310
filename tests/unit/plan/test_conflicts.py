"""glancesync.plan.conflicts: the directives and their precedence on different content."""
from __future__ import annotations

import pytest

from glancesync.plan import conflicts
from glancesync.plan.model import OperationKind, Status

from tests.unit.plan.builders import context, m, r


@pytest.mark.parametrize("policy, expected", [
    ({"dontupdate": {"c2"}, "rename": {"any"}}, (Status.OK_STALLED_CHECKSUM, "checksum listed")),
    ({"rename": {"c2"}, "replace": {"c2"}}, (Status.PENDING_RENAME, "checksum listed")),
    ({"replace": {"c2"}, "rename": {"any"}}, (Status.PENDING_REPLACE, "checksum listed")),
    ({"dontupdate": {"any"}, "replace": {"any"}}, (Status.OK_STALLED_CHECKSUM, "'any'")),
    ({"rename": {"any"}, "replace": {"any"}}, (Status.PENDING_RENAME, "'any'")),
    ({"replace": {"other"}}, None),
])
def test_explicit_checksums_first_then_any_dontupdate_rename_replace(policy, expected):
    ctx = context(**{key: frozenset(value) for key, value in policy.items()})
    assert conflicts.decide(ctx, r("a", "c2")) == expected


def test_the_os_hash_value_matches_a_directive_too():
    regional = r("a", None, os_hash_algo="sha512", os_hash_value="h2")
    assert conflicts.decide(context(replace=frozenset({"h2"})), regional) == (
        Status.PENDING_REPLACE, "checksum listed")


def test_another_project_s_image_is_never_renamed_and_replaced_only_explicitly():
    theirs = r("a", "c2", owner="another")
    assert conflicts.decide(context(rename=frozenset({"c2"})), theirs) is None
    assert conflicts.decide(context(replace=frozenset({"any"})), theirs) is None
    assert conflicts.decide(context(replace=frozenset({"c2"})), theirs) == (
        Status.PENDING_REPLACE, "checksum listed")


def test_without_a_directive_the_reason_says_what_to_list():
    ctx = context()
    assert "has no directive (list it in rename" in conflicts.unresolved(ctx, m("a"), r("a", "c2"))
    assert "regional image r-a-None has no checksum" in conflicts.unresolved(
        ctx, m("a"), r("a", None))
    assert conflicts.unresolved(ctx, m("a", None), r("a", "c2")).startswith(
        "the master image has no checksum")
    assert conflicts.unresolved(ctx, m("a"), r("a", "c2", owner="x")).endswith(
        "only an explicit checksum in replace allows changing it)")


def test_a_conflict_becomes_an_upload_a_kept_copy_or_an_error():
    master, regional = m("a"), r("a", "c2")
    ctx = context([master], [regional], rename=frozenset({"c2"}))
    conflicts.conflict(ctx, "a", master, regional)
    assert ctx.ops["a"].kind is OperationKind.RENAME
    assert ctx.statuses["a"].reason.startswith("regional checksum c2 in rename (checksum listed)")
    ctx = context([master], [regional], dontupdate=frozenset({"any"}))
    conflicts.conflict(ctx, "a", master, regional)
    assert ctx.statuses["a"].status is Status.OK_STALLED_CHECKSUM and ctx.ops == {}
    ctx = context([master], [regional])
    conflicts.conflict(ctx, "a", master, regional)
    assert ctx.statuses["a"].status is Status.ERROR_CHECKSUM and ctx.warnings


@pytest.mark.parametrize("rule", [{"any"}, {"c2"}])
def test_a_protected_image_is_never_replaced_whatever_the_rule(rule):
    """Issue 23 case 2: replace (any or its checksum) never unprotects nor deletes."""
    master, regional = m("a"), r("a", "c2", protected=True)
    ctx = context([master], [regional], replace=frozenset(rule))
    conflicts.conflict(ctx, "a", master, regional)
    assert ctx.statuses["a"].status is Status.ERROR_PROTECTED and "a" not in ctx.ops
    assert "protected" in ctx.statuses["a"].reason


def test_a_protected_image_may_still_be_renamed():
    """Renaming is not removing: ``rename`` keeps the protected image as NAME.old."""
    master, regional = m("a"), r("a", "c2", protected=True)
    ctx = context([master], [regional], rename=frozenset({"any"}))
    conflicts.conflict(ctx, "a", master, regional)
    assert ctx.statuses["a"].status is Status.PENDING_RENAME
    assert ctx.ops["a"].kind is OperationKind.RENAME
