"""SPEC section 4: master candidates and the six ordered rules."""
from __future__ import annotations

import dataclasses
import logging

from glancesync.condition import Condition
from glancesync.config import TargetConfig
from glancesync.image import Image
from glancesync.selection import is_synchronised, select_master

MASTER = "p-master"


def img(name, id_=None, *, status="active", owner=MASTER, visibility="public", **props):
    return Image(id=id_ or f"id-{name}", name=name, status=status, owner=owner,
                 visibility=visibility, checksum="c", properties=dict(props))


def target(**kw):
    return TargetConfig(name="t", **kw)


def test_candidates_keep_only_active_named_master_images():
    images = [img("a"), img("queued", status="queued"), img(None, "noname"), img("", "empty"),
              img("foreign", owner="p-other"), img("ownerless", owner=None),
              img("killed", status="killed")]
    selection = select_master(images, MASTER)
    assert sorted(selection.candidates) == ["a", "ownerless"]
    assert selection.duplicate_names == set()
    assert selection.warnings == []


def test_duplicate_names_are_dropped_with_one_warning(caplog):
    images = [img("dup", "1"), img("dup", "2"), img("dup", "3"), img("single")]
    with caplog.at_level(logging.WARNING, logger="glancesync.selection"):
        selection = select_master(images, MASTER)
    assert sorted(selection.candidates) == ["single"]
    assert selection.duplicate_names == {"dup"}
    assert len(selection.warnings) == 1
    assert len([r for r in caplog.records if "dup" in r.getMessage()]) == 1


def test_a_non_active_or_foreign_twin_is_not_a_duplicate():
    images = [img("x", "1"), img("x", "2", status="queued"), img("x", "3", owner="p-other")]
    selection = select_master(images, MASTER)
    assert selection.candidates["x"].id == "1"
    assert not selection.duplicate_names


def test_rule1_obsolete_never_even_forced():
    image = img("x_obsolete")
    assert not is_synchronised(image, target(forcesyncs=frozenset({image.id})))
    assert not is_synchronised(image, target())


def test_rule2_forcesyncs_admit_a_private_image():
    image = img("p", visibility="private")
    assert not is_synchronised(image, target())
    assert is_synchronised(image, target(forcesyncs=frozenset({image.id})))


def test_rule2_forcesyncs_beat_the_condition():
    image = img("p", visibility="private")
    never = Condition("False")
    assert is_synchronised(image, target(forcesyncs=frozenset({image.id}),
                                         metadata_condition=never))


def test_rule3_condition_decides_both_ways():
    private = img("p", visibility="private", type="base")
    public = img("q", visibility="public")
    cond = Condition("image.user_properties.get('type') == 'base'")
    assert is_synchronised(private, target(metadata_condition=cond))
    assert not is_synchronised(public, target(metadata_condition=cond))


def test_rule3_condition_sees_metadata_set():
    cond = Condition("'nid' in metadata_set and image.is_public")
    image = img("q")
    assert is_synchronised(image, target(metadata_condition=cond,
                                         metadata_set=frozenset({"nid"})))
    assert not is_synchronised(image, target(metadata_condition=cond))


def test_rule4_non_public_excluded():
    for visibility in ("private", "shared", "community"):
        assert not is_synchronised(img("v", visibility=visibility), target())


def test_rule5_empty_metadata_set_admits_every_public_image():
    assert is_synchronised(img("v"), target())


def test_rule6_metadata_set_needs_one_listed_property():
    t = target(metadata_set=frozenset({"nid", "type"}))
    assert is_synchronised(img("v", type="x"), t)
    assert not is_synchronised(img("w", other="x"), t)


def test_synchronised_applies_rules_to_candidates():
    images = [img("a"), img("b", visibility="private"), img("c_obsolete")]
    selection = select_master(images, MASTER)
    assert sorted(selection.synchronised(target())) == ["a"]
    assert sorted(selection.by_id()) == ["id-a", "id-b", "id-c_obsolete"]


def test_targetconfig_is_a_plain_dataclass():
    # The engine reads TargetConfig attributes only; replace() must keep working.
    t = dataclasses.replace(target(), only_tenant_images=False)
    assert t.only_tenant_images is False
