"""safenames: distinct names get distinct files, even names crafted to collide (issue 27).

A name that ends like the digest GlanceSync appends (``-`` and 16 hex
digits) could otherwise take the lock, the run log or the backup file of
the name whose made name it copies: a tenant naming a region or an image
``a_b-<digest of a:b>`` would share ``a:b``'s files.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

from glancesync import safenames
from glancesync.lock import RegionLock, lock_file_name
from glancesync.safenames import MAX_NAME_LENGTH, file_name, region_file_name

#: Names that are made into other names (changed, cut, or ending like a digest).
NAMES = ["a:b", "a/b", "../x", ".hidden", "t:R", "x" * (MAX_NAME_LENGTH + 5),
         "t_a:R", "t:R\n", "é", ""]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_crafted_as_another_names_file_name_gets_its_own(name):
    made = file_name(name)
    assert file_name(made) != made or made == name
    assert file_name(made) != file_name(name) or made == name
    for suffix in (".lock", ".log", ".jsonl"):
        assert file_name(made, suffix) != file_name(name, suffix) or made == name


def test_the_digest_tail_is_exactly_a_dash_and_16_lowercase_hex_digits():
    digest = file_name("a:b")[len("a_b-"):]
    assert len(digest) == 16 and file_name("a:b") == f"a_b-{digest}"
    # Ends like a digest: gets one of its own.
    assert file_name(f"a_b-{digest}") not in (f"a_b-{digest}", file_name("a:b"))
    assert file_name(f"a_b-{digest}").startswith(f"a_b-{digest}-")
    # Not like a digest (15 or 17 digits, upper case, no dash): kept as is.
    for plain in (f"a_b-{digest[:15]}", f"a_b-{digest}0"[:-1] + "g", f"a_b-{digest.upper()}",
                  f"a_b{digest}"):
        assert file_name(plain) == plain, plain
    assert file_name(f"a_b-{digest}0") == f"a_b-{digest}0"


@pytest.mark.parametrize("length", [MAX_NAME_LENGTH - 1, MAX_NAME_LENGTH])
def test_names_up_to_the_length_limit_are_kept(length):
    name = "n" * length
    assert file_name(name) == name


def test_names_past_the_length_limit_are_cut_and_told_apart():
    long_a, long_b = "n" * MAX_NAME_LENGTH + "a", "n" * MAX_NAME_LENGTH + "b"
    assert file_name(long_a) != file_name(long_b)
    assert file_name(long_a).startswith("n" * MAX_NAME_LENGTH + "-")
    assert len(file_name(long_a)) == MAX_NAME_LENGTH + 17


def test_crafted_region_names_do_not_share_lock_log_or_backup_files(tmp_path):
    region = "master:Region One"
    crafted = file_name(region)  # 'master_Region_One-<digest>'
    assert lock_file_name(crafted) != lock_file_name(region)
    crafted_ref = "master:" + region_file_name(region)[len("master_"):]
    assert region_file_name(crafted_ref, ".log") != region_file_name(region, ".log")
    # Locks of both can be held at once: they are two files.
    with RegionLock(tmp_path, region), RegionLock(tmp_path, crafted):
        assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("ref, made", [
    ("master:RegionOne", "master_RegionOne"),
    ("t-1:R.x", "t-1_R.x"),
])
def test_simple_references_keep_their_readable_names(ref, made):
    assert region_file_name(ref, ".log") == made + ".log"


@pytest.mark.parametrize("ref", ["t_x:R", "t:R/..", "t:R-0123456789abcdef", ":R", "t:",
                                 "t:" + "R" * MAX_NAME_LENGTH])
def test_other_references_are_named_with_a_digest(ref):
    made = region_file_name(ref)
    assert made == file_name(ref) and made != ref


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
@example("a:b", "a_b")
@example("a:b", file_name("a:b"))
@example("t:R", "t_R")
def test_file_names_are_distinct_for_distinct_names(first, second):
    if first != second:
        assert file_name(first) != file_name(second)
        assert file_name(first, ".lock") != file_name(second, ".lock")


#: Region references as the configuration and the catalog make them.
REFS = st.builds(lambda target, region: f"{target}:{region}",
                 st.text("ab_-.:", max_size=6), st.text("ab_-.:0123456789abcdef", max_size=24))


@settings(max_examples=300, deadline=None)
@given(REFS, REFS)
@example("t:R", "t:R-" + "0" * 16)
@example("a:b_c", "a_b:c")
def test_region_file_names_are_distinct_for_distinct_references(first, second):
    if first != second:
        assert region_file_name(first, ".log") != region_file_name(second, ".log")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
@example("a:b")
@example("x" * (MAX_NAME_LENGTH + 1))
def test_a_name_made_of_a_made_name_never_collides(name):
    made = file_name(name)
    if made != name:
        assert file_name(made) != made


@settings(max_examples=200, deadline=None)
@given(REFS)
@example("t:R-0123456789abcdef")
@example("t_x:R")
def test_a_reference_crafted_as_another_references_file_name_gets_its_own(ref):
    """References always have a ``:`` (``target:Region``): one crafted from another's
    made name (its first ``_`` made a ``:`` again) still gets a file of its own."""
    made = region_file_name(ref)
    target, sep, rest = made.partition("_")
    crafted = f"{target}:{rest}"
    if sep and crafted != ref:
        assert region_file_name(crafted) != made


def test_join_keeps_made_names_in_their_folder(tmp_path: Path):
    for name in NAMES:
        path = safenames.join(tmp_path, file_name(name, ".lock"))
        assert path.parent == tmp_path


# --- the rest of the module, case by case (mutation survivors) ---------------------------

@pytest.mark.parametrize("name, made", [
    ("..Xa", "Xa"),          # only dots are stripped in front
    ("...", "_"),            # nothing left: one underscore
    ("\udcff", "_"),         # a lone surrogate (a name read from bytes) is hashed too
])
def test_file_name_of_odd_names(name, made):
    assert file_name(name) == f"{made}-{file_name(name)[-16:]}"
    assert len(file_name(name)[-16:]) == 16


def test_a_reference_at_the_length_limit_keeps_its_readable_name():
    ref = "t:" + "R" * (MAX_NAME_LENGTH - 2)
    assert region_file_name(ref, ".log") == "t_" + "R" * (MAX_NAME_LENGTH - 2) + ".log"
    longer = ref + "R"
    assert region_file_name(longer, ".log").endswith(".log")
    assert region_file_name("t_x:R", ".log").endswith(".log")


@pytest.mark.parametrize("name, words", [
    ("a/b", "'a/b' is not a plain file name: refused in"),
    ("..", "'..' is not a plain file name"),
    ("", "'' is not a plain file name"),
    ("a\0b", "is not a plain file name"),
])
def test_join_refuses_what_is_not_a_file_name(tmp_path, name, words):
    with pytest.raises(safenames.UnsafeNameError, match=words):
        safenames.join(tmp_path, name)


def test_join_refuses_a_link_out_of_the_folder_and_a_loop(tmp_path):
    (tmp_path / "out").symlink_to("/etc/passwd")
    with pytest.raises(safenames.UnsafeNameError, match="resolves outside"):
        safenames.join(tmp_path, "out")
    assert safenames.join(tmp_path, "out", resolve=False) == tmp_path / "out"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    if sys.version_info < (3, 13):  # later versions resolve a loop as it is, inside
        with pytest.raises(safenames.UnsafeNameError, match="loop cannot be resolved"):
            safenames.join(tmp_path, "loop")


@pytest.mark.parametrize("text, shown", [
    ("plain name", "plain name"),
    (123, "123"),
    ("a\\b", "a\\\\b"),
    ("a\nb\rc\td", "a\\nb\\rc\\td"),
    ("\x1b[31m", "\\x1b[31m"),
    ("\x7f\xa0", "\\x7f\\xa0"),
    ("\u202e\u2028", "\\u202e\\u2028"),
    ("\uffff", "\\uffff"),
    ("\U000e0001", "\\U000e0001"),
    ("é ü", "é ü"),
])
def test_printable_escapes_every_unprintable_character_and_the_backslash(text, shown):
    assert safenames.printable(text) == shown
