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


def _conflict(regional, master=None, **policy):
    master = master or m("a")
    ctx = context([master], [regional], **{k: frozenset(v) for k, v in policy.items()})
    conflicts.conflict(ctx, master.name, master, regional)
    line = ctx.statuses[master.name]
    return ctx, (line.status, line.master_id, line.regional_id, line.reason)


def test_each_outcome_names_the_master_the_copy_and_why():
    regional = r("a", "c2")
    ctx, line = _conflict(regional)
    reason = ("regional checksum c2 differs from master's and has no directive (list it in"
              " rename, replace or dontupdate)")
    assert line == (Status.ERROR_CHECKSUM, "m-a", "r-a-c2", reason)
    assert ctx.warnings == [f"image a: {reason}"]
    ctx, line = _conflict(regional, dontupdate={"c2"})
    assert line == (Status.OK_STALLED_CHECKSUM, "m-a", "r-a-c2",
                    "regional checksum c2 in dontupdate (checksum listed)")
    ctx, line = _conflict(r("a", None, os_hash_algo="sha512", os_hash_value="h2"),
                          replace={"any"})
    assert line[3] == "regional checksum h2 in replace ('any'); stream"
    assert ctx.ops["a"].kind is OperationKind.REPLACE


def test_a_protected_image_s_error_says_what_to_do():
    ctx, line = _conflict(r("a", "c2", protected=True), replace={"any"})
    reason = ("regional checksum c2 in replace ('any'), but regional image r-a-c2 is"
              " protected: GlanceSync never unprotects nor deletes it (unprotect or delete it,"
              " or list its checksum in rename or dontupdate)")
    assert line == (Status.ERROR_PROTECTED, "m-a", "r-a-c2", reason)
    assert ctx.warnings == [f"image a: {reason}"]


def test_a_rename_whose_old_name_is_too_long_changes_nothing():
    name = "n" * 252  # NAME.old has 256 characters
    master, regional = m(name), r(name, "c2")
    ctx, line = _conflict(regional, master, rename={"any"})
    reason = ("regional checksum c2 in rename ('any'), but the old image cannot be renamed:"
              " the name " + "n" * 40 + "... would have 256 characters, more than the 255"
              " Glance accepts; nothing changed (shorten the master image's name, or list the"
              " checksum in replace or dontupdate)")
    assert line == (Status.ERROR_NAME, master.id, regional.id, reason)
    assert ctx.warnings == [f"image {name}: {reason}"] and ctx.ops == {}
    # Replacing keeps the name: no NAME.old to check.
    ctx, line = _conflict(regional, master, replace={"any"})
    assert line[0] is Status.PENDING_REPLACE and ctx.ops[name].kind is OperationKind.REPLACE


def test_the_later_directives_still_apply_to_another_project_s_image():
    theirs = r("a", "c2", owner="another")
    assert conflicts.decide(context(rename=frozenset({"c2"}), replace=frozenset({"c2"})),
                            theirs) == (Status.PENDING_REPLACE, "checksum listed")
    assert conflicts.decide(context(replace=frozenset({"any"}), dontupdate=frozenset({"any"})),
                            theirs) == (Status.OK_STALLED_CHECKSUM, "'any'")


def test_the_unresolved_reasons_in_full():
    ctx = context()
    assert conflicts.unresolved(ctx, m("a", None), r("a", "c2")) == (
        "the master image has no checksum: regional image r-a-c2 cannot be compared with it"
        " (list 'any' in rename or replace for a verified copy, or in dontupdate to keep it)")
    assert conflicts.unresolved(ctx, m("a"), r("a", None)) == (
        "regional image r-a-None has no checksum: its content cannot be compared with the"
        " master's (list 'any' in rename or replace for a verified copy, or in dontupdate to"
        " keep it)")
    assert conflicts.unresolved(ctx, m("a"), r("a", "c2", owner="x")) == (
        "regional checksum c2 differs from master's and has no directive (list it in rename,"
        " replace or dontupdate) (owned by project x: only an explicit checksum in replace"
        " allows changing it)")
