"""metadata_condition: a truth table for every operator, the manual's examples,
and each resource limit exactly at its bound (issue 27).

Each operator is tested on both sides of its answer (and on equality for the
orderings), so that swapping an operator for its opposite or for its strict
or loose form fails a case.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from glancesync import condition as condition_module
from glancesync.condition import (
    MAX_DEPTH, MAX_EXPRESSION_LENGTH, MAX_NODES, MAX_VALUE_SIZE, Condition)
from glancesync.errors import ConfigError
from glancesync.image import Image

MANUAL = Path(__file__).resolve().parents[2] / "docs" / "manual" / "selection.rst"


def image(**kwargs) -> Image:
    fields = {"id": "id-1", "name": "base", "status": "active", "visibility": "public",
              "owner": "p1", "size": 10, "checksum": "abc"}
    fields.update(kwargs)
    return Image(**fields)


# --- comparisons: image.size OP 10, with the size below, at and above 10 ------

ORDERINGS = {
    # operator: (size 9, size 10, size 11)
    "==": (False, True, False),
    "!=": (True, False, True),
    "<": (True, False, False),
    "<=": (True, True, False),
    ">": (False, False, True),
    ">=": (False, True, True),
}


@pytest.mark.parametrize("op", sorted(ORDERINGS))
@pytest.mark.parametrize("size, column", [(9, 0), (10, 1), (11, 2)])
def test_orderings_truth_table(op, size, column):
    expected = ORDERINGS[op][column]
    assert Condition(f"image.size {op} 10")(image(size=size)) is expected
    # The same with the operands the other way round (10 OP size).
    mirrored = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
    assert Condition(f"10 {mirrored} image.size")(image(size=size)) is expected


@pytest.mark.parametrize("op, left, right, expected", [
    ("==", "'qcow2'", "image.disk_format", True),
    ("==", "'iso'", "image.disk_format", False),
    ("!=", "'qcow2'", "image.disk_format", False),
    ("!=", "'iso'", "image.disk_format", True),
    ("<", "'a'", "'b'", True),
    ("<", "'b'", "'a'", False),
    ("<=", "'b'", "'b'", True),
    ("<=", "'c'", "'b'", False),
    (">=", "'b'", "'b'", True),
    (">=", "'a'", "'b'", False),
])
def test_string_comparisons(op, left, right, expected):
    assert Condition(f"{left} {op} {right}")(image(disk_format="qcow2")) is expected


@pytest.mark.parametrize("expression, expected", [
    # in / not in: in a string, in a tuple, in the properties, in metadata_set.
    ("'as' in image.name", True),
    ("'zz' in image.name", False),
    ("'as' not in image.name", False),
    ("'zz' not in image.name", True),
    ("image.visibility in ('public', 'community')", True),
    ("image.visibility in ('private', 'shared')", False),
    ("image.visibility not in ('public', 'community')", False),
    ("image.visibility not in ('private', 'shared')", True),
    ("'nid' in image.user_properties", True),
    ("'type' in image.user_properties", False),
    ("'nid' not in image.user_properties", False),
    ("'type' not in image.user_properties", True),
    ("'sdc' in metadata_set", True),
    ("'other' in metadata_set", False),
    ("'sdc' not in metadata_set", False),
    ("'other' not in metadata_set", True),
    # is / is not: None, True and False.
    ("image.container_format is None", True),
    ("image.disk_format is None", False),
    ("image.container_format is not None", False),
    ("image.disk_format is not None", True),
    ("image.protected is False", True),
    ("image.protected is True", False),
    ("image.protected is not False", False),
    ("image.protected is not True", True),
])
def test_membership_and_identity_truth_table(expression, expected):
    img = image(disk_format="qcow2", properties={"nid": "1"})
    assert Condition(expression)(img, frozenset({"sdc"})) is expected


@pytest.mark.parametrize("expression, expected", [
    # and / or / not over every pair of truth values.
    ("image.is_public and image.protected", False),
    ("image.is_public and not image.protected", True),
    ("not image.is_public and image.protected", False),
    ("not image.is_public and not image.protected", False),
    ("image.is_public or image.protected", True),
    ("not image.is_public or image.protected", False),
    ("image.is_public or not image.protected", True),
    ("not image.is_public or not image.protected", True),
    ("not image.is_public", False),
    ("not image.protected", True),
    # Chained comparisons: every link must hold.
    ("1 < image.size < 20", True),
    ("1 < image.size < 10", False),
    ("10 <= image.size <= 10", True),
    ("11 <= image.size <= 12", False),
    # Conditional expressions pick the right branch.
    ("(image.size if image.is_public else 0) == 10", True),
    ("(image.size if image.protected else 0) == 0", True),
])
def test_boolean_operators_truth_table(expression, expected):
    assert Condition(expression)(image(size=10)) is expected


@pytest.mark.parametrize("expression, expected", [
    ("image.size + 3 == 13", True),
    ("image.size - 3 == 7", True),
    ("3 - image.size == -7", True),
    ("image.size * 3 == 30", True),
    ("image.size / 4 == 2.5", True),
    ("image.size // 4 == 2", True),
    ("image.size % 4 == 2", True),
    ("-image.size == -10", True),
    ("+image.size == 10", True),
    ("(image.size & 6) == 2", True),
    ("(image.size | 5) == 15", True),
    ("(image.size ^ 3) == 9", True),
    ("image.name + '-x' == 'base-x'", True),
    ("image.name * 2 == 'basebase'", True),
    ("2 * image.name == 'basebase'", True),
    ("'%s-%d' % (image.name, image.size) == 'base-10'", True),
    ("(metadata_set | {'b'}) == {'a', 'b'}", True),
    ("(metadata_set & {'a', 'c'}) == {'a'}", True),
    ("(metadata_set ^ {'a', 'c'}) == {'c'}", True),
    ("(metadata_set - {'a'}) == set()", True),
])
def test_arithmetic_operators(expression, expected):
    assert Condition(expression)(image(size=10), frozenset({"a"})) is expected


# --- the manual's own examples ---------------------------------------------------

#: Each example of docs/manual/selection.rst with an image it selects and one it
#: does not (metadata_set is {'nid', 'sdc_aware'}).
MANUAL_EXAMPLES = {
    "image.is_public and 'nid' in image.user_properties": (
        image(properties={"nid": "1"}), image(properties={"type": "x"})),
    "image.user_properties.get('type') == 'baseimage'": (
        image(properties={"type": "baseimage"}), image(properties={"type": "other"})),
    "image.is_public or image.name.startswith('fiware-')": (
        image(visibility="private", name="fiware-x"), image(visibility="private")),
    "image.is_public and image.size < 10 * 1024 * 1024 * 1024": (
        image(size=10 * 2 ** 30 - 1), image(size=10 * 2 ** 30)),
    "image.is_public and len(set(image.user_properties) & metadata_set) > 0": (
        image(properties={"sdc_aware": "1"}), image(properties={"other": "1"})),
    "image.is_public and image.disk_format != 'iso'": (
        image(disk_format="qcow2"), image(disk_format="iso")),
    "image.user_properties.get('sdc_aware', 'false').lower() == 'true'": (
        image(properties={"sdc_aware": "True"}), image()),
}


@pytest.mark.parametrize("expression", sorted(MANUAL_EXAMPLES))
def test_manual_examples_select_what_they_say(expression):
    selected, left_out = MANUAL_EXAMPLES[expression]
    condition = Condition(expression)
    metadata_set = frozenset({"nid", "sdc_aware"})
    assert condition(selected, metadata_set) is True
    assert condition(left_out, metadata_set) is False


def test_every_example_of_the_manual_is_in_the_table():
    examples = re.findall(r"^\s+metadata_condition = (.+)$", MANUAL.read_text(), re.M)
    assert examples, "no example found in the manual"
    assert set(examples) <= set(MANUAL_EXAMPLES), set(examples) - set(MANUAL_EXAMPLES)


# --- limits: exactly at the bound is accepted, one beyond is refused -----------

def test_expression_length_bound():
    at_bound = "image.name == '" + "x" * (MAX_EXPRESSION_LENGTH - 16) + "'"
    assert len(at_bound) == MAX_EXPRESSION_LENGTH
    assert Condition(at_bound)(image()) is False
    with pytest.raises(ConfigError, match=f"longer than {MAX_EXPRESSION_LENGTH}"):
        Condition(at_bound[:-1] + "x'")


def _tuple_with_nodes(count: int) -> str:
    """``image.size in (0, 0, ...)`` with ``count`` expression nodes in all.

    Nodes: the Compare, the Attribute, its Name, the Tuple, and its elements.
    """
    return "image.size in (" + "0, " * (count - 4) + ")"


def test_node_count_bound():
    assert Condition(_tuple_with_nodes(MAX_NODES))(image()) is False
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES} names"):
        Condition(_tuple_with_nodes(MAX_NODES + 1))


def _nested(depth: int) -> str:
    """An expression whose syntax tree is ``depth`` levels deep: the
    Expression, one UnaryOp per ``not``, and the Not operator of the last
    (a leaf one level below its UnaryOp) or the Constant."""
    return "not " * (depth - 2) + "True"


def test_depth_bound():
    # Expression (1) > UnaryOp per 'not' > Constant: depth = nots + 2.
    assert Condition(_nested(MAX_DEPTH))(image()) in (True, False)
    with pytest.raises(ConfigError, match=f"nested more than {MAX_DEPTH} levels"):
        Condition(_nested(MAX_DEPTH + 1))


def test_built_string_bound():
    # An image with no data beyond its fields: the limit is MAX_VALUE_SIZE plus
    # what the names given weigh; find that allowance from an exact string.
    img = image(name="n", owner=None, checksum=None, id="i")
    names_weight = _names_weight(img)
    limit = MAX_VALUE_SIZE + names_weight
    assert Condition(f"len('x' * {limit}) == {limit}")(img) is True
    with pytest.raises(ConfigError, match=f"larger than {MAX_VALUE_SIZE}"):
        Condition(f"len('x' * {limit + 1}) > 0")(img)
    # Concatenation is bounded the same way.
    assert Condition(f"len('x' * {limit - 1} + 'y') == {limit}")(img) is True
    with pytest.raises(ConfigError, match=f"larger than {MAX_VALUE_SIZE}"):
        Condition(f"len('x' * {limit} + 'y') > 0")(img)


def _names_weight(img: Image) -> int:
    """What the evaluator counts for the names it is given (its allowance)."""
    evaluator = condition_module._Evaluator({
        "image": condition_module.ImageView.of(img), "metadata_set": set(),
        "True": True, "False": False, "None": None})
    return evaluator._limit - MAX_VALUE_SIZE


def test_repetition_is_refused_before_it_is_built():
    # A repetition of a billion gigabytes cannot be built; it is refused at once.
    with pytest.raises(ConfigError, match="larger than"):
        Condition("len('x' * 1" + "0" * 18 + ") > 0")(image())
    with pytest.raises(ConfigError, match="larger than"):
        Condition("len([0] * " + "1" + "0" * 18 + ") > 0")(image())


def test_number_digits_bound():
    # A number weighs 1 + bit_length // 3 "digits": 299999 bits weigh exactly
    # MAX_VALUE_SIZE, 300000 bits one more.
    assert MAX_VALUE_SIZE == 100_000
    at_bound = "int('7' + 'f' * 74999, 16)"
    assert Condition(f"{at_bound} > 0")(image()) is True
    with pytest.raises(ConfigError, match=f"more than {MAX_VALUE_SIZE} digits"):
        Condition("int('f' * 75000, 16) > 0")(image())
    # A product is refused from its operands' sizes, before it is computed.
    factor = "int('f' * 40000, 16)"
    assert Condition(f"{factor} * 3 > 0")(image()) is True
    with pytest.raises(ConfigError, match=f"more than {MAX_VALUE_SIZE} digits"):
        Condition(f"{factor} * {factor} > 0")(image())


def test_formatting_width_bound():
    assert Condition(f"len('%{MAX_VALUE_SIZE - 10}d' % 0) == {MAX_VALUE_SIZE - 10}")(image())
    with pytest.raises(ConfigError, match=f"above {MAX_VALUE_SIZE}"):
        Condition(f"len('%{MAX_VALUE_SIZE + 1}d' % 0) > 0")(image())


def test_replace_bound():
    img = image(name="n", owner=None, checksum=None, id="i")
    limit = MAX_VALUE_SIZE + _names_weight(img)
    # 'ab' * k replaced 'a' -> 'aa' grows by k characters.
    k = (limit) // 3
    assert Condition(f"len(('ab' * {k}).replace('a', 'aa')) == {3 * k}")(img) is True
    with pytest.raises(ConfigError, match="replace would build"):
        Condition(f"len(('ab' * {k + 1}).replace('a', 'aa')) > 0")(img)
