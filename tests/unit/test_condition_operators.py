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
    # what the names given weigh.
    img = SMALL
    names_weight = _names_weight(img)
    limit = MAX_VALUE_SIZE + names_weight
    assert Condition(f"len('x' * {limit}) == {limit}")(img) is True
    with pytest.raises(ConfigError, match=f"larger than {MAX_VALUE_SIZE}"):
        Condition(f"len('x' * {limit + 1}) > 0")(img)
    # Concatenation is bounded the same way.
    assert Condition(f"len('x' * {limit - 1} + 'y') == {limit}")(img) is True
    with pytest.raises(ConfigError, match=f"larger than {MAX_VALUE_SIZE}"):
        Condition(f"len('x' * {limit} + 'y') > 0")(img)


#: The image of the exact bounds, and what its names weigh (the evaluator's
#: allowance beyond MAX_VALUE_SIZE), counted by hand: the view 32, each of its 14
#: fields 1 plus its value (the strings 'i', 'n', 'active', 'public': their
#: lengths; None, booleans, 0: 1; 10: 2; empty properties: 1) = 71; metadata_set
#: (empty) 1; True, False, None 1 each.
SMALL = image(name="n", owner=None, checksum=None, id="i")
ALLOWANCE = 32 + 14 + (1 + 1 + 1 + 2 + 6 + 1 + 6 + 1 + 1 + 1 + 1 + 1 + 1 + 1) + 1 + 3


def _names_weight(img: Image) -> int:
    """What the evaluator allows beyond MAX_VALUE_SIZE for the image of the bounds."""
    assert img is SMALL
    return ALLOWANCE


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
    img = SMALL
    limit = MAX_VALUE_SIZE + _names_weight(img)
    # 'x' * n + 'q' replaced 'x' -> 'xy': exactly the limit, then one more.
    assert limit % 2 == 1
    n = limit // 2
    assert Condition(f"len(('x' * {n} + 'q').replace('x', 'xy')) == {limit}")(img) is True
    with pytest.raises(ConfigError, match="replace would build"):
        Condition(f"len(('x' * {n} + 'qq').replace('x', 'xy')) > 0")(img)
    # A count limits the growth: none at all with 0, one replacement with 1.
    assert Condition(f"len(('x' * {n}).replace('x', 'xyz', 0)) == {n}")(img) is True
    assert Condition(f"len(('x' * {n}).replace('x', 'xyz', 1)) == {n + 2}")(img) is True
    # An empty pattern matches between every two characters and at both ends.
    m = (limit - 1) // 2
    assert Condition(f"len(('x' * {m}).replace('', 'y')) == {2 * m + 1}")(img) is True
    with pytest.raises(ConfigError, match="replace would build"):
        Condition(f"len(('x' * {m + 1}).replace('', 'y')) > 0")(img)
    # Arguments that are not strings are left to str.replace (which refuses them).
    with pytest.raises(ConfigError, match="TypeError"):
        Condition("image.name.replace(1, 'y') == ''")(img)


# --- the rest of the evaluator, case by case (mutation survivors) ------------------------

def test_every_field_of_the_image_is_seen():
    img = image(container_format="bare", disk_format="qcow2", min_ram=512, min_disk=3,
                protected=True, properties={"k": "v"})
    assert Condition("image.container_format == 'bare' and image.disk_format == 'qcow2'"
                     " and image.min_ram == 512 and image.min_disk == 3 and image.protected"
                     " and image.user_properties['k'] == 'v' and image.size == 10"
                     " and image.status == 'active' and image.checksum == 'abc'"
                     " and image.owner == 'p1' and image.id == 'id-1'")(img) is True


def test_formatting_widths_exactly_at_their_bounds():
    img = SMALL
    limit = MAX_VALUE_SIZE + ALLOWANCE
    assert Condition(f"len('%{MAX_VALUE_SIZE}d' % 0) == {MAX_VALUE_SIZE}")(img) is True
    # The template plus its widths may reach the limit, and not pass it.
    width = MAX_VALUE_SIZE - 1
    pad = limit - width - len(f"%{width}d")
    assert Condition(f"len('{'x' * pad}%{width}d' % 0) == {pad + width}")(img) is True
    with pytest.raises(ConfigError, match="larger than"):
        Condition(f"len('{'x' * (pad + 1)}%{width}d' % 0) > 0")(img)
    # Every conversion counts, after a mapping key with nested parentheses too.
    keyed = image(properties={"a(b)": "x"})
    assert Condition("'%(a(b))s-%%' % image.user_properties == 'x-%'")(keyed) is True
    with pytest.raises(ConfigError, match=f"above {MAX_VALUE_SIZE}"):
        Condition("len('%(a(b))99999s%(a(b))2s' % image.user_properties) > 0")(keyed)
    with pytest.raises(ConfigError, match=f"above {MAX_VALUE_SIZE}"):
        Condition(f"len('%%%{MAX_VALUE_SIZE + 1}d' % 1) > 0")(img)
    with pytest.raises(ConfigError, match=f"above {MAX_VALUE_SIZE}"):
        Condition(f"len('%d%{MAX_VALUE_SIZE // 2 + 1}d%{MAX_VALUE_SIZE // 2}d' % (1, 2, 3))"
                  " > 0")(img)
    with pytest.raises(ConfigError, match=f"above {MAX_VALUE_SIZE}"):
        Condition(f"len(b'%{MAX_VALUE_SIZE + 1}d' % 1) > 0")(img)


def test_a_container_exactly_at_the_limit():
    img = SMALL
    limit = MAX_VALUE_SIZE + ALLOWANCE
    # A list weighs 1, plus 1 and its weight per element.
    m = limit - 2
    assert Condition(f"len(['x' * {m}]) == 1")(img) is True
    with pytest.raises(ConfigError, match="larger than"):
        Condition(f"len(['x' * {m + 1}]) == 1")(img)
    # A tuple, a set and a slice the same way; other values (a method) weigh 8.
    assert Condition(f"len(('x' * {m},)) == 1")(img) is True
    assert Condition(f"len({{'x' * {m}}}) == 1")(img) is True
    assert Condition(f"len(['x' * {m - 9}, image.name.lower]) == 2")(img) is True
    with pytest.raises(ConfigError, match="larger than"):
        Condition(f"len(['x' * {m - 8}, image.name.lower]) == 2")(img)
    # Two large strings in one list: refused as too large, not as a failure.
    with pytest.raises(ConfigError, match="larger than"):
        Condition("len(['x' * 60000, 'y' * 60000]) > 0")(img)


def test_the_containers_built_are_bounded_in_all():
    img = SMALL
    # Each term builds [0] (weight 3) and a list of 30000 zeros (60001): 16 terms
    # stay under MAX_BUILT plus ten times the allowance, 17 do not.
    one = "len([0] * 30000)"
    assert 16 * 60004 <= condition_module.MAX_BUILT + 10 * ALLOWANCE < 17 * 60004
    assert Condition(" + ".join([one] * 16) + " == 480000")(img) is True
    with pytest.raises(ConfigError, match="builds containers of more than"):
        Condition(" + ".join([one] * 17) + " > 0")(img)


@pytest.mark.parametrize("expression, message", [
    ("", "the expression is empty"),
    ("not " * 60 + "True",
     f"invalid expression {'not ' * 20!r}... (244 characters): nested more than 50 levels"
     " deep; write a simpler expression"),
    ("image.size in (" + "0, " * 1200 + ")",
     "more than 1000 names, constants and operations; write a simpler expression"),
    ("lambda: 1", "invalid expression 'lambda: 1': Lambda is not allowed; use names,"
     " attributes, comparisons, and/or/not, in, and the functions len, str, int, bool, set"),
    ("foo", "invalid expression 'foo': unknown name 'foo'; the known names are False, None,"
     " True, bool, image, int, len, metadata_set, set, str"),
    ("int(x=1)", "invalid expression 'int(x=1)': only positional arguments are allowed in"
     " calls"),
    ("(" * 300 + "1" + ")" * 300, "too many nested parentheses"),
])
def test_refusals_say_exactly_what_is_wrong(expression, message):
    with pytest.raises(ConfigError) as caught:
        Condition(expression)
    assert message in str(caught.value)


def test_evaluation_errors_say_exactly_what_failed():
    img = image(name="img7", id="id-7")
    with pytest.raises(ConfigError) as caught:
        Condition("image.user_properties['missing'] == 'x'")(img)
    assert str(caught.value) == (
        "metadata_condition \"image.user_properties['missing'] == 'x'\" failed on image"
        " 'img7' (id-7): KeyError: 'missing' (use user_properties.get(name) for optional"
        " properties)")
    with pytest.raises(ConfigError) as caught:
        Condition("1 / (image.size - 10) > 0")(img)
    assert str(caught.value) == (
        "metadata_condition '1 / (image.size - 10) > 0' failed on image 'img7' (id-7):"
        " ZeroDivisionError: division by zero")
    long_id = "i" * 100
    with pytest.raises(ConfigError) as caught:
        Condition("1 / 0 > 0")(image(id=long_id))
    assert f"({'i' * 80}...)" in str(caught.value)


def test_conditions_compare_and_hash_by_expression():
    first, second = Condition("image.is_public"), Condition(" image.is_public ")
    assert first == second and hash(first) == hash(second)
    assert first != Condition("image.protected")
    assert hash(first) != hash(Condition("image.protected"))
    assert first != "image.is_public"
    assert repr(first) == "Condition('image.is_public')"


# --- the load-time checker: what each kind of value may call (mutation survivors) -------

@pytest.mark.parametrize("expression", [
    "(image.name if image.is_public else image.size).lower() == 'base'",
    "(image.name or 'x').lower() == 'base'",
    "(image.name + '-x').upper() == 'BASE-X'",
    "image.name[1:].upper() == 'ASE'",
    "image.name[0].upper() == 'B'",
    "image.user_properties['k'].upper() == 'V'",
    "image.user_properties.get('k', 'd').upper() == 'V'",
    "image.user_properties.get('missing', 'd').upper() == 'D'",
    "image.name.split('a')[0].upper() == 'B'",
    "image.name.split('a')[0:1] == ['b']",
    "(image.user_properties.keys() & metadata_set).issubset(metadata_set)",
    "(metadata_set | {'z'}).issuperset(metadata_set)",
    "{'k'}.issubset(image.user_properties.keys())",
    "str(image.size).startswith('1')",
    "set(image.user_properties).isdisjoint(metadata_set) is False",
    "image.user_properties.items() and True",
])
def test_the_checker_accepts_what_evaluation_can_do(expression):
    img = image(properties={"k": "v"})
    assert Condition(expression)(img, frozenset({"k", "a"})) is True


@pytest.mark.parametrize("expression, message", [
    ("None.lower()", "None is None: it has no attributes or methods to use (.lower)"),
    ("len.lower()", "len is a function: it has no attributes or methods to use (.lower)"),
    ("(1 + 2).real", "1 + 2 is a number or a boolean: it has no attributes"),
    ("(1 < 2).real", "1 < 2 is a number or a boolean: it has no attributes"),
    ("(not image.name).real", "is a number or a boolean: it has no attributes"),
    ("[1, 2].count(1)", "[1, 2] is a list or tuple: it has no attributes"),
    ("image.name[0].nope()", "image.name[0] is a string: .nope is not available; use one of"
     " casefold, count, endswith"),
    ("image.user_properties.keys().lower()", "is a dictionary view: it has no attributes"),
    ("image.name.split('a')[0].nope()", ".nope is not available on any value; the methods"
     " are casefold, count, difference, endswith"),
    ("image.nope", "image has no attribute 'nope'; it has id, name, owner, size"),
    ("(image.name if image.is_public else image.size).nope()",
     "this value is None or a number or a boolean or a string: .nope is not available"),
    ("image.user_properties['k' + 'x' * 60].upper().nope()",
     "this value is a string: .nope is not available"),
    ("image.name.lower", None),  # a method not called: fine at load time
    ("image.size.lower()", "image.size is a number or a boolean"),
    ("image.size()", "'image.size' cannot be called; only the functions len, str, int, bool,"
     " set and the methods of strings, sets and dictionaries can"),
    ("image.user_properties.get('k', 1).nope()", ".nope is not available; use one of"),
    ("str(image.size).nope()", "str(image.size) is a string: .nope is not available"),
    ("set(metadata_set).nope()", "set(metadata_set) is a set: .nope is not available"),
])
def test_the_checker_refuses_what_evaluation_cannot_do(expression, message):
    if message is None:
        Condition(expression)
        return
    with pytest.raises(ConfigError) as caught:
        Condition(expression)
    assert message in str(caught.value)
