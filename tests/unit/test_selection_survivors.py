"""select_master: tests that kill the mutants of glancesync/selection.py that survived
the first mutation run (issue 27); each names the mutants (mutmut 3.8.1 names)."""
from __future__ import annotations

import logging

from glancesync.image import Image
from glancesync.selection import select_master

MASTER = "p-master"


def img(name, id_=None, *, status="active", owner=MASTER):
    return Image(id=id_ or f"id-{name}", name=name, status=status, owner=owner,
                 visibility="public", checksum="c")


def test_a_deactivated_master_image_is_kept_aside():
    # kills select_master__mutmut_9, 10 ("deactivated" misspelt), 18 (every image taken
    # for an active one), 38, 39 (== 1 made != 1, == 2)
    image = img("d", status="deactivated")
    selection = select_master([image], MASTER)
    assert selection.candidates == {}
    assert selection.deactivated == {"d": image}


def test_deactivated_images_sharing_a_name_or_a_candidates_name_are_not_kept():
    # kills select_master__mutmut_37 ("and" made "or") and 40 ("not in" made "in")
    images = [img("twice", "1", status="deactivated"), img("twice", "2", status="deactivated"),
              img("both", "3", status="deactivated"), img("both", "4")]
    selection = select_master(images, MASTER)
    assert selection.deactivated == {}
    assert sorted(selection.candidates) == ["both"]
    images = [img("alone", "5", status="deactivated"), img("other", "6")]
    assert list(select_master(images, MASTER).deactivated) == ["alone"]


def test_a_master_listing_of_foreign_images_only_is_warned_with_their_number(caplog):
    # kills select_master__mutmut_41, 43..49 (the count of active foreign images: a
    # queued foreign image and the master's own deactivated one are not counted) and
    # 52..56 (the warning's words, kept and logged)
    images = [img("a", owner="p-other"), img("b", owner="p-other"),
              img("q", status="queued", owner="p-other"), img("d", status="deactivated")]
    with caplog.at_level(logging.WARNING, logger="glancesync.selection"):
        selection = select_master(images, MASTER)
    message = ("the master region has 2 active image(s), none owned by the master project"
               " p-master: nothing to synchronise; check the master target's credentials"
               " (or project, for a local one)")
    assert selection.warnings == [message]
    assert caplog.messages == [message]


def test_a_master_listing_with_own_images_is_not_warned():
    # kills select_master__mutmut_49 from the other side (own images counted as foreign)
    assert select_master([img("mine")], MASTER).warnings == []


def test_a_duplicate_name_is_warned_with_its_ids():
    # kills select_master__mutmut_72, 74, 75, 76 (the warning's words, the ids' separator)
    selection = select_master([img("dup", "2"), img("dup", "1")], MASTER)
    assert selection.warnings == [
        "master image name 'dup' is used by 2 images (1, 2): none of them is synchronised;"
        " rename or delete the extra ones"]
