"""metadata_condition: tests that kill the mutants of glancesync/condition.py that
survived the first mutation run (issue 27).

Each test names the mutants it kills (``python -m tests.mutation --diffs condition``,
names as mutmut 3.8.1 gives them, ``x_`` prefix left out). The error texts are
compared whole: they are what an operator reads to fix the configuration.
"""
from __future__ import annotations

import pytest

from glancesync.condition import MAX_VALUE_SIZE, Condition
from glancesync.errors import ConfigError
from glancesync.image import Image


def image(**kwargs) -> Image:
    fields = {"id": "id-1", "name": "base", "status": "active", "visibility": "public",
              "owner": "p1", "size": 10, "checksum": "abc"}
    fields.update(kwargs)
    return Image(**fields)


def refusal(expression: str) -> str:
    with pytest.raises(ConfigError) as caught:
        Condition(expression)
    return str(caught.value)


def failure(expression: str, img: Image) -> str:
    with pytest.raises(ConfigError) as caught:
        Condition(expression)(img)
    return str(caught.value)


# --- _cut, _short: the texts quoted in messages ---------------------------------------

def test_an_image_id_is_quoted_on_one_line():
    # kills _cut__mutmut_11..14 (the "\n" and "\r" replacements changed)
    message = failure("1 / 0 > 0", image(id="a\nb\rc"))
    assert "on image 'base' (a b c): ZeroDivisionError" in message


@pytest.mark.parametrize("length, cut", [(198, False), (199, True)])
def test_an_error_text_is_cut_after_200_characters(length, cut):
    # kills _cut__mutmut_1 (default limit 201) and _cut__mutmut_17 (<= made <):
    # str(KeyError(key)) is the key in quotes, 200 then 201 characters.
    key = "k" * length
    message = failure(f"image.user_properties['{key}'] == 1", image())
    text = repr(key)
    expected = text[:200] + "..." if cut else text
    assert f": KeyError: {expected} (use user_properties.get(name)" in message


def test_an_expression_of_80_characters_is_quoted_whole():
    # kills _short__mutmut_4 (> made >=)
    name = "x" * 80
    assert refusal(name).startswith(f"invalid expression '{name}': unknown name")
    longer = "x" * 81
    assert refusal(longer).startswith(
        f"invalid expression '{'x' * 80}'... (81 characters): unknown name")


# --- the load-time checker's descriptions of values -------------------------------

@pytest.mark.parametrize("expression, message", [
    # _kinds_text__mutmut_4, 6, 7, 9, 12, 13: a method's description
    ("image.name.lower.nope", "image.name.lower is a method: it has no attributes or"
     " methods to use (.nope)"),
    # a constant: not a function ("kinds" mutant 23, "or True" on FUNCTIONS, is
    # equivalent: True is a constant, not a name, to Python's parser)
    ("True.real", "True is a number or a boolean: it has no attributes or methods to use"
     " (.real)"),
    # _Checker.attribute: an unknown item's method, called ("any" mutants of attribute
    # and call): the result is unknown too, not a string
    ("image.name.split('a')[0].upper().nope()", ".nope is not available on any value"),
    # _Checker.kinds BinOp: "any" mutants, "seq" mutants, "view" mutants
    ("(image.name.split('a')[0] + 'x').nope()", ".nope is not available on any value"),
    ("([1] + [2]).nope()", "[1] + [2] is a list or tuple: it has no attributes"),
    ("(image.user_properties.keys() - image.user_properties.keys()).nope()",
     "this value is a set: .nope is not available; use one of difference, intersection"),
    # _Checker.kinds Subscript: slices ("|" for "&", "seq" and "any" mutants)
    ("image.name[1:].nope()", "image.name[1:] is a string: .nope is not available"),
    ("image.name.split('a')[0:1].nope()", "is a list or tuple: it has no attributes"),
    ("image.name.split('a')[0][1:].nope()", ".nope is not available on any value"),
    # _Checker.kinds Subscript: an item of a number ("or True" and "|" mutants), of
    # an unknown value ("any" mutants)
    ("(1)[0].nope()", "1[0] is a number or a boolean: it has no attributes"),
    ("image.name.split('a')[0][0].nope()", ".nope is not available on any value"),
    # _Checker.call: get's results ("=" for "|=", "none" and "> 1" mutants)
    ("image.user_properties.get('k').nope()", "image.user_properties.get('k') is None or"
     " a number or a boolean or a string: .nope is not available"),
    ("image.user_properties.get('k', [1]).nope()",
     "get('k', [1]) is None or a list or tuple or a number or a boolean or a string"),
    # _Checker.call: only names and methods can be called ("or True" on ast.Attribute)
    ("image.name.split('a')[0]()", "\"image.name.split('a')[0]\" cannot be called"),
])
def test_the_checker_describes_values_exactly(expression, message):
    assert message in refusal(expression)


def test_a_receiver_of_40_characters_is_quoted_whole():
    # kills _Checker.attribute mutants "<= 40" made "< 40" and "<= 41"
    for width, quoted in ((40, True), (41, False)):
        text = "'" + "a" * (width - 2) + "'"
        message = refusal(f"{text}.nope()")
        what = text if quoted else "this value"
        assert f": {what} is a string: .nope is not available" in message


def test_a_callee_is_quoted_to_40_characters():
    # kills _Checker.call mutants _short(..., 40) made 41 or the default (80)
    callee = "image.size + " + "1" * 28
    assert len(callee) == 41
    assert (f": {repr(callee[:40])}... (41 characters) cannot be called"
            in refusal(f"({callee})()"))


def test_an_expression_too_deep_for_the_parser_is_refused():
    # kills Condition.__init__ "XXnested too deeplyXX" (Python's parser gives up
    # with MemoryError before our own depth check)
    assert refusal("-" * 9990 + "1").endswith(": nested too deeply")


def test_an_empty_expression_says_so():
    # kills Condition.__init__ "XXthe expression is emptyXX"
    assert refusal("   ") == "the expression is empty"


# --- evaluation --------------------------------------------------------------------

def test_a_star_width_is_refused_with_its_reason():
    # kills _formatting_room "'*' widths" message mutants
    message = failure("len('%*d' % (5, 1)) > 0", image())
    assert message.endswith(": '*' widths and precisions are not allowed in % formatting")


@pytest.mark.parametrize("template", ["(%(a)200000s", "%((a))200000s"])
def test_widths_after_mapping_keys_are_weighed(template):
    # kills _formatting_room__mutmut_22 (finditer from 0: the '(' before the '%'
    # leaves the key unterminated: the width let through, refused only once built).
    # The depth's "-=" and "!=" mutants (24, 28) are equivalent: they count the
    # parentheses with the opposite sign, and a key ends at depth 0 all the same.
    key = template[template.index("%") + 2:template.index("2") - 1]
    message = failure(f"len('{template}' % image.user_properties) > 0",
                      image(properties={key: "x"}))
    assert message.endswith(f"% formatting widths and precisions above {MAX_VALUE_SIZE}"
                            " are not allowed")


def test_replace_with_wrong_argument_types_fails_as_replace_does():
    # kills _BoundedReplace.__call__ "and" made "or" (twice): the weighing must not
    # run on arguments that str.replace refuses.
    assert failure("image.name.replace(1, 'x') == ''", image()).endswith(
        "TypeError: replace() argument 1 must be str, not int")
    assert failure("image.name.replace('a', 1) == ''", image()).endswith(
        "TypeError: replace() argument 2 must be str, not int")


def test_a_bounded_replace_shows_as_a_method():
    # kills _BoundedReplace.__repr__ mutants 1 and 2
    assert Condition("str(image.name.replace) == '<method replace of str>'")(image())


def test_a_repetition_is_weighed_before_it_is_built():
    # kills _Evaluator._mult "*" made "/" on the weight: 10**9 copies of 100000
    # characters would be 100 TB; refused by the bound, not a MemoryError.
    message = failure(f"len(('x' * {MAX_VALUE_SIZE}) * 1000000000) > 0", image())
    assert "would build a value larger than" in message


def test_a_container_read_again_is_weighed_once():
    # kills _Evaluator._weigh__mutmut_19 and the store under id(None): the image's
    # properties (given, weighed once) read 40 times must not count 40 times
    # towards the total of the containers built.
    img = image(properties={f"p{i}": "v" * 1000 for i in range(100)})
    expression = " + ".join(["len(image.user_properties)"] * 40) + " == 4000"
    assert Condition(expression)(img) is True


# The image of test_condition_operators (SMALL) and what its data weighs.
SMALL = image(name="n", owner=None, checksum=None, id="i")
ALLOWANCE = 75


def term(n: int) -> str:
    """``len([0] * n)``: builds [0] (weight 3) and n zeros (1 + 2 n)."""
    return f"len([0] * {n})"


def test_the_total_of_containers_built_is_bounded_exactly():
    # kills _Evaluator.__init__ mutants on the total: _built starting at 1, 11 or
    # 10 / the given weight, and _weigh_new ">" made ">=" on it. The bound is
    # MAX_BUILT (1000000) plus ten times the allowance: 1000750.
    bound = 1_000_000 + 10 * ALLOWANCE
    sixteen = " + ".join([term(30000)] * 16)
    last = (bound - 16 * 60004 - 4) // 2           # the built total exactly at the bound
    assert 16 * 60004 + 2 * last + 4 == bound
    assert Condition(f"{sixteen} + {term(last)} > 0")(SMALL) is True
    with pytest.raises(ConfigError, match="builds containers of more than 1000750"):
        Condition(f"{sixteen} + {term(last + 1)} > 0")(SMALL)


def test_a_container_is_weighed_to_its_end():
    # kills _weigh_new "weight > self._limit" made ">=" (the loop stopped at the limit
    # would leave the elements after it unweighed)
    m = 100_000 + ALLOWANCE - 2
    assert Condition(f"len(['x' * {m}]) == 1")(SMALL) is True
    with pytest.raises(ConfigError, match="larger than"):
        Condition(f"len(['x' * {m}, 'y']) == 2")(SMALL)


def test_a_slice_weighs_one_plus_its_three_parts():
    # kills _weigh_new "base, items = 2, (value.start...)" for slices: the total of
    # containers built sits exactly on the bound with a slice (1 + 3 * 2 = 7) and a
    # tuple (0,) (weight 3) in it.
    bound = 1_000_000 + 10 * ALLOWANCE
    sixteen = " + ".join([term(30000)] * 16)
    last = (bound - 16 * 60004 - 7 - 3 - 4) // 2
    assert 16 * 60004 + 7 + 3 + 2 * last + 4 == bound
    others = "len(image.name[0:1]) + len((0,))"
    assert Condition(f"{sixteen} + {term(last)} + {others} > 0")(SMALL) is True
    with pytest.raises(ConfigError, match="builds containers of more than"):
        Condition(f"{sixteen} + {term(last + 1)} + {others} > 0")(SMALL)
