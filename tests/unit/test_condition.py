"""metadata_condition: evaluation, and refusal of anything unsafe."""
from __future__ import annotations

import pytest

from glancesync.condition import Condition
from glancesync.errors import ConfigError
from glancesync.image import Image


def image(**kwargs) -> Image:
    fields = {"id": "id-1", "name": "base", "status": "active", "visibility": "public",
              "owner": "p1", "size": 10, "checksum": "abc"}
    fields.update(kwargs)
    return Image(**fields)


@pytest.mark.parametrize("expression, img, expected", [
    ("image.is_public and 'nid' in image.user_properties",
     image(properties={"nid": "1"}), True),
    ("image.is_public and 'nid' in image.user_properties",
     image(visibility="private", properties={"nid": "1"}), False),
    ("image.is_public and 'nid' in image.user_properties", image(), False),
    ("image.user_properties.get('type') == 'baseimage'",
     image(properties={"type": "baseimage"}), True),
    ("image.user_properties.get('type') == 'baseimage'", image(), False),
    ("not image.is_public and image.name.startswith('private_')",
     image(name="private_x", visibility="private"), True),
    ("not image.is_public and image.name.startswith('private_')",
     image(name="other", visibility="private"), False),
    ("len(metadata_set & set(image.user_properties)) > 0",
     image(properties={"sdc_aware": "t"}), True),
    ("len(metadata_set & set(image.user_properties)) > 0",
     image(properties={"x": "t"}), False),
    ("image.size > 5 and image.owner == 'p1' and image.checksum == 'abc'", image(), True),
    ("image.visibility in ('public', 'community') or image.protected", image(), True),
    ("int(image.user_properties.get('nid', '0')) >= 300",
     image(properties={"nid": "301"}), True),
    ("image.disk_format == 'qcow2' and image.min_ram == 0", image(disk_format="qcow2"), True),
    ("bool(image.user_properties) and str(image.min_disk) == '0'",
     image(properties={"a": "b"}), True),
    ("image.id == 'id-1' and image.status == 'active' and image.container_format is None",
     image(), True),
])
def test_evaluation(expression, img, expected):
    assert Condition(expression)(img, frozenset({"sdc_aware", "nid"})) is expected


@pytest.mark.parametrize("expression, words", [
    ("__import__('os')", "unknown name"),
    ("image.__class__", "not allowed"),
    ("image.user_properties.__class__.__bases__", "not allowed"),
    ("image._private", "not allowed"),
    ("lambda: 1", "Lambda"),
    ("(lambda x: x)(1)", "Lambda"),
    ("[c for c in metadata_set]", "ListComp"),
    ("open('/etc/passwd')", "unknown name"),
    ("eval('1')", "unknown name"),
    ("image.nonexistent", "no attribute"),
    ("image.name.__len__()", "not allowed"),
    ("str.format", "no attributes"),
    ("image.name +", "invalid expression"),
    ("x := 1", "invalid expression"),
    ("", "empty"),
    ("f'{image}'", "JoinedStr"),
    ("len(*metadata_set)", "positional"),
    ("int(x=1)", "positional"),
])
def test_rejected_at_construction(expression, words):
    with pytest.raises(ConfigError) as info:
        Condition(expression)
    assert words in str(info.value)


@pytest.mark.parametrize("expression, words", [
    ("image.name.format(1)", "not available"),
    ("image.user_properties.pop('x')", "not allowed"),
    ("image.user_properties['missing'] == 'x'", "user_properties.get"),
    ("'x' * 10000000 == ''", "that long"),
    ("image.owner.upper() == 'P'", "not allowed"),  # owner is None here
])
def test_failures_at_evaluation_name_the_image(expression, words):
    condition = Condition(expression)
    with pytest.raises(ConfigError) as info:
        condition(image(name="img7", owner=None))
    message = str(info.value)
    assert words in message
    assert "img7" in message


def test_expression_cannot_change_the_image():
    img = image(properties={"a": "1"})
    with pytest.raises(ConfigError):
        Condition("image.user_properties.update({'b': 2})")(img)
    assert img.properties == {"a": "1"}


def test_metadata_set_default_and_equality():
    assert Condition("len(metadata_set) == 0")(image()) is True
    assert Condition("image.is_public") == Condition(" image.is_public ")
    assert "image.is_public" in repr(Condition("image.is_public"))
