"""metadata_condition: evaluation, and refusal of anything unsafe."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from glancesync.condition import Condition
from glancesync.config import load_config
from glancesync.demo import build_federation
from glancesync.errors import ConfigError
from glancesync.image import Image


DEEP = 2000


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
    # Methods that evaluation would refuse are refused when the file is loaded.
    ("image.name.format(1)", ".format is not available"),
    ("image.user_properties.pop('x')", ".pop is not available"),
    # Hostile shapes (issue 15): refused in milliseconds, in one short line.
    ("not " * DEEP + "True", "nested more than 50 levels"),
    ("1" + "+1" * 3000, "nested too deeply"),
    ("1" + "+1" * 60, "nested more than 50 levels"),
    ("[" * 60 + "1" + "]" * 60, "nested more than 50 levels"),
    ("image.name" + ".lower()" * 60, "nested more than 50 levels"),
    ("(" * 300 + "1" + ")" * 300, "too many nested parentheses"),
    ("-" * 100_000 + "1", "longer than 10000 characters"),
    ("'" + "x" * 20_000 + "' == image.name", "longer than 10000 characters"),
    ("image.size in (" + "1, " * 1200 + ")", "more than 1000 names"),
    ("9" * 5000 + " > 0", "4300 digits"),
    ("image.name\x00", "null bytes"),
    ("image.name.join('ab')", ".join is not available"),
    ("image.name.format_map(image.user_properties)", ".format_map is not available"),
    ("image.name.split('-')[0].format(1)", ".format is not available on any value"),
    ("len(metadata_set).bit_length()", "has no attributes or methods"),
    ("image.user_properties.keys().isdisjoint(metadata_set)", "has no attributes or methods"),
    ("b'x'.decode()", "bytes: it has no attributes"),
    ("metadata_set.add('x')", ".add is not available"),
    ("image.size(1)", "cannot be called"),
    ("image.user_properties.get('a')()", "cannot be called"),
    ("True()", "cannot be called"),
    ("len.__call__(1)", "not allowed"),
])
@pytest.mark.timeout(10)  # a hang guard
def test_rejected_at_construction(expression, words):
    with pytest.raises(ConfigError) as info:
        Condition(expression)
    message = str(info.value)
    assert words in message
    assert "\n" not in message and len(message) < 600


@pytest.mark.parametrize("expression, words", [
    ("image.user_properties['missing'] == 'x'", "user_properties.get"),
    ("'x' * 10000000 == ''", "larger than 100000 characters"),
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
    with pytest.raises(ConfigError):
        Condition("metadata_set.add('b')")(img, frozenset({"a"}))
    assert img.properties == {"a": "1"}


def test_metadata_set_default_and_equality():
    assert Condition("len(metadata_set) == 0")(image()) is True
    assert Condition("image.is_public") == Condition(" image.is_public ")
    assert "image.is_public" in repr(Condition("image.is_public"))


# --- hostile values (issue 15): nothing exhausts the machine -------------------

#: An image whose own data is large: expressions may use it whole.
BIG = image(name="cirros-0.6-x86", properties={"nid": "301", "description": "d" * 200_000})


@pytest.mark.timeout(10)  # a hang guard: each is refused in milliseconds
@pytest.mark.parametrize("expression, words", [
    ("len('%*d' % (4000000000, 0)) > 0", "'*' widths"),
    ("len('%.*f' % (4000000000, 1.0)) > 0", "'*' widths"),
    ("len(b'%*d' % (4000000000, 0)) > 0", "'*' widths"),
    ("len('%(a(b))*d' % image.user_properties) > 0", "'*' widths"),
    ("len('%2000000000d' % 0) > 0", "above 100000"),
    ("len('%(nid)999999999s' % image.user_properties) > 0", "above 100000"),
    ("len('%.100000f%.100000f' % (1.0, 1.0)) > 0", "above 100000"),
    ("len(str([[0] * 10000] * 10000)) > 0", "larger than 100000"),
    ("len(str([[0] * 100000] * 100000)) > 0", "larger than 100000"),
    ("len(str([image.user_properties] * 100)) > 0", "larger than 100000"),
    ("len(str(image.name.split('-') * 100000)) > 0", "larger than 100000"),
    ("'%s' * 1000 % ((image.user_properties,) * 1000) > ''", "larger than 100000"),
    ("len(('a' * 100000).replace('', 'b' * 100000)) > 0", "replace would build"),
    ("len(image.user_properties['description'].replace('d', 'dd')) > 0",
     "replace would build"),
    ("len('a' * 1000000) > 0", "larger than 100000"),
    ("[image.user_properties['description']] * 2 + [image.name] * 100000 == []",
     "larger than 100000"),
    ("int('1' * 100000, 16) > 0", "more than 100000 digits"),
    (" * ".join(["(" + " * ".join(["int('9' * 4000)"] * 10) + ")"] * 9) + " > 0",
     "more than 100000 digits"),
    # Any other failure of the evaluator is a clean error too.
    ("int(1e999) > 0", "OverflowError"),
    ("int('9' * 5000) > 0", "ValueError"),
    ("image.name.split('-')[7] == 'x'", "IndexError"),
    ("image.name[::0] == ''", "ValueError"),
    ("1 / (image.size - image.size) > 0", "ZeroDivisionError"),
    ("image.size / 10 ** 0 > 0", "not allowed"),
])
def test_hostile_values_refused_at_evaluation_within_bounds(expression, words):
    if words == "not allowed":  # ** is refused before any evaluation
        with pytest.raises(ConfigError, match="Pow is not allowed"):
            Condition(expression)
        return
    condition = Condition(expression)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            condition(BIG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert words in message
    assert "'cirros-0.6-x86'" in message and "\n" not in message and len(message) < 800
    # The image holds 200 kB: nothing much larger is ever built.
    assert peak < 30 * 2 ** 20, f"{peak / 2 ** 20:.0f} MiB"


@pytest.mark.parametrize("expression", [
    "'ddd' in image.user_properties.get('description', '').lower()",
    "len(image.user_properties['description'] + 'x') == 200001",
    "len(str(image.user_properties)) > 200000",
    "image.user_properties.get('description', '').replace('d', 'e').startswith('e')",
    "len(image.name * 1000) == 14000",
    "image.name.split('-')[0].upper() == 'CIRROS'",
    "len(image.user_properties.keys() & metadata_set) == 1",
    "'%s-%05d' % (image.name, image.size) == 'cirros-0.6-x86-00010'",
    "(image.name if image.is_public else image.id).lower().startswith('cirros')",
    "image.user_properties.get('x', image.name).lower() == 'cirros-0.6-x86'",
    "('nid', '301') in image.user_properties.items()",
    "image.name.partition('-')[2] == '0.6-x86'",
    " * ".join(["int('9' * 4000)"] * 10) + " > 0",
])
def test_large_image_data_and_ordinary_expressions_are_evaluated(expression):
    assert Condition(expression)(BIG, frozenset({"nid", "other"})) is True


def test_condition_errors_are_configuration_errors_with_their_location():
    config = io.StringIO("[main]\nmaster_region = Master\n[master]\ntype = local\n"
                         "path = /nonexistent\nmetadata_condition = " + "not " * DEEP + "1\n")
    with pytest.raises(ConfigError) as info:
        load_config(config, environ={})
    assert "[master] metadata_condition: invalid expression" in str(info.value)


@pytest.mark.timeout(120)
def test_a_failing_condition_fails_its_region_cleanly(tmp_path):
    """An evaluation error names the image; no traceback, the run ends with 2: a
    configuration mistake, not a failure of the region (issue 22)."""
    config = build_federation(tmp_path)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OS_", "GLANCESYNC_"))}
    env.update(GLANCESYNC_LOCK_DIR=str(tmp_path / "locks"), HOME=str(tmp_path))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "glancesync-sync"), "--config-file", str(config),
         "--config", "master.metadata_condition=image.name.split('-')[2] == 'x'",
         "--dry-run", "RegionA", "RegionB"],
        capture_output=True, text=True, env=env, timeout=100)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for region in ("RegionA", "RegionB"):
        assert (f"master:{region}: FAILED: metadata_condition \"image.name.split('-')[2]"
                f" == 'x'\" failed on image 'cirros-") in result.stdout
    assert "IndexError: list index out of range" in result.stdout
