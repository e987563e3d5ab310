"""The ``metadata_condition`` of a target: a safe, restricted expression.

The old tool evaluated this option with ``eval``; here it is parsed once,
checked against an allow-list of syntax, names and attributes, and evaluated
with :mod:`simpleeval`. The expression sees two names:

``image``
    a read-only view of the master image: ``id``, ``name``, ``owner``,
    ``size``, ``status``, ``checksum``, ``visibility``, ``is_public``,
    ``user_properties`` (a dict), ``disk_format``, ``container_format``,
    ``min_ram``, ``min_disk``, ``protected``;
``metadata_set``
    the target's ``metadata_set`` option, as a set.

Available functions: ``len``, ``str``, ``int``, ``bool``, ``set``. Example::

    image.is_public and image.user_properties.get('type') == 'baseimage'

Bounds, so that no expression can exhaust the machine: at load time the
expression's length, its number of nodes and its nesting are limited, and
every method it calls must exist on the values it can be called on; at
evaluation every value it builds (strings, containers counted through
nested containers) is limited to :data:`MAX_VALUE_SIZE` beyond the size of
the image's own data, numbers to :data:`MAX_VALUE_SIZE` digits; values that
could be large are checked before they are built (repetition, ``%``
formatting, ``replace``), and so is the total size of the containers built.
Any failure of the evaluation is a :class:`ConfigError` naming the image.
"""
from __future__ import annotations

import ast
import dataclasses
import operator
import re
import types
from types import MappingProxyType
from typing import Any, Iterable

import simpleeval

from glancesync.errors import ConfigError
from glancesync.image import Image

#: Attributes of ``image`` that an expression may read.
IMAGE_ATTRIBUTES = (
    "id", "name", "owner", "size", "status", "checksum", "visibility",
    "is_public", "user_properties", "disk_format", "container_format",
    "min_ram", "min_disk", "protected",
)

#: Functions an expression may call.
FUNCTIONS = {"len": len, "str": str, "int": int, "bool": bool, "set": set}

#: Names an expression may use besides the functions.
NAMES = ("image", "metadata_set", "True", "False", "None")

#: Longest expression, in characters.
MAX_EXPRESSION_LENGTH = 10_000
#: Most syntax nodes (names, constants, operations, calls...) in an expression.
MAX_NODES = 1_000
#: Deepest nesting of an expression's syntax tree.
MAX_DEPTH = 50
#: Largest value an evaluation may build: characters of a string, digits of
#: a number, or elements of a container counted through nested containers.
MAX_VALUE_SIZE = simpleeval.MAX_STRING_LENGTH
#: Largest total size of the containers one evaluation builds.
MAX_BUILT = 10 * MAX_VALUE_SIZE

# Syntax an expression may use: no lambda, comprehension, assignment,
# f-string, starred argument or keyword argument.
_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not,
    ast.USub, ast.UAdd, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div,
    ast.Mod, ast.FloorDiv, ast.BitAnd, ast.BitOr, ast.BitXor, ast.Compare,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
    ast.Is, ast.IsNot, ast.IfExp, ast.Call, ast.Attribute, ast.Name,
    ast.Load, ast.Constant, ast.Subscript, ast.Slice, ast.Tuple, ast.List,
    ast.Set,
)

# Read-only methods per type; everything else is refused.
_STR_METHODS = {
    "startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip",
    "split", "rsplit", "partition", "rpartition", "find", "rfind", "count",
    "replace", "isdigit", "isalnum", "isalpha", "islower", "isupper",
    "casefold", "removeprefix", "removesuffix",
}
_SET_METHODS = {
    "intersection", "union", "difference", "symmetric_difference",
    "issubset", "issuperset", "isdisjoint",
}
_MAPPING_METHODS = {"get", "keys", "values", "items"}


@dataclasses.dataclass(frozen=True)
class ImageView:
    """What an expression sees of an image (a copy: it cannot change it)."""

    id: str
    name: str | None
    owner: str | None
    size: int | None
    status: str
    checksum: str | None
    visibility: str
    is_public: bool
    user_properties: MappingProxyType
    disk_format: str | None
    container_format: str | None
    min_ram: int
    min_disk: int
    protected: bool

    @classmethod
    def of(cls, image: Image) -> "ImageView":
        return cls(
            id=image.id, name=image.name, owner=image.owner, size=image.size,
            status=image.status, checksum=image.checksum,
            visibility=image.visibility, is_public=image.is_public,
            user_properties=MappingProxyType(dict(image.properties)),
            disk_format=image.disk_format,
            container_format=image.container_format, min_ram=image.min_ram,
            min_disk=image.min_disk, protected=image.protected)


_ALLOWED_ATTRS: dict[Any, set[str]] = {
    ImageView: set(IMAGE_ATTRIBUTES),
    MappingProxyType: _MAPPING_METHODS,
    str: _STR_METHODS,
    set: _SET_METHODS,
    frozenset: _SET_METHODS,
}


def _short(text: str | None, limit: int = 80) -> str:
    """``repr(text)``, cut to about ``limit`` characters (for error messages)."""
    if text is not None and len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    return repr(text)


def _cut(text: str, limit: int = 200) -> str:
    """``text`` on one line, cut to about ``limit`` characters."""
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[:limit] + "..."


# --- load time: the shape of the expression and what it may call ---------------

# What the checker knows of a value: a kind per type with allowed attributes
# ("str", "set", "mapping", "image"), "method:NAME" and "function" for what
# may be called, "seq" for lists and tuples (no attribute, items unknown),
# "view" for the views of a dictionary, "none", "bytes", "other" for numbers
# and booleans, "any" when it cannot tell.
_KIND_ATTRS = {"str": _STR_METHODS, "set": _SET_METHODS, "mapping": _MAPPING_METHODS,
               "image": set(IMAGE_ATTRIBUTES)}
_ANY = frozenset({"any"})
_OTHER = frozenset({"other"})
_STR = frozenset({"str"})
_FIELD_KINDS = {
    "user_properties": frozenset({"mapping"}),
    "id": _STR, "status": _STR, "visibility": _STR,
    "name": frozenset({"str", "none"}), "owner": frozenset({"str", "none"}),
    "checksum": frozenset({"str", "none"}), "disk_format": frozenset({"str", "none"}),
    "container_format": frozenset({"str", "none"}),
}
_FUNCTION_RESULTS = {"str": _STR, "set": frozenset({"set"})}
_METHOD_RESULTS = {
    **dict.fromkeys(("lower", "upper", "strip", "lstrip", "rstrip", "replace", "casefold",
                     "removeprefix", "removesuffix"), _STR),
    **dict.fromkeys(("intersection", "union", "difference", "symmetric_difference"),
                    frozenset({"set"})),
    **dict.fromkeys(("split", "rsplit", "partition", "rpartition"), frozenset({"seq"})),
    **dict.fromkeys(("keys", "values", "items"), frozenset({"view"})),
}
_METHODS = _STR_METHODS | _SET_METHODS | _MAPPING_METHODS
_ALL_ATTRIBUTES = _METHODS | set(IMAGE_ATTRIBUTES)
_DESCRIPTIONS = {"str": "a string", "set": "a set", "mapping": "a dictionary",
                 "image": "image", "function": "a function", "seq": "a list or tuple",
                 "view": "a dictionary view", "none": "None", "other": "a number or a boolean",
                 "bytes": "bytes"}


def _kinds_text(kinds: Iterable[str]) -> str:
    names = sorted(_DESCRIPTIONS.get(kind, "a method" if kind.startswith("method:")
                                     else "a value") for kind in kinds)
    return " or ".join(dict.fromkeys(names))


class _Checker:
    """Load-time checks of a parsed expression (raise :class:`ConfigError`)."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"invalid expression {_short(self.expression)}: {message}")

    def check_shape(self, tree: ast.AST) -> None:
        """Bound the number of nodes and the nesting (iteratively: no recursion)."""
        nodes = 0
        stack = [(tree, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_DEPTH:
                raise self.error(f"nested more than {MAX_DEPTH} levels deep;"
                                 " write a simpler expression")
            nodes += isinstance(node, ast.expr)
            if nodes > MAX_NODES:
                raise self.error(f"more than {MAX_NODES} names, constants and"
                                 " operations; write a simpler expression")
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))

    def check_nodes(self, tree: ast.AST) -> None:
        allowed_names = set(NAMES) | set(FUNCTIONS)
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED_NODES):
                raise self.error(
                    f"{type(node).__name__} is not allowed; use names,"
                    " attributes, comparisons, and/or/not, in, and the"
                    f" functions {', '.join(FUNCTIONS)}")
            if isinstance(node, ast.Name) and node.id not in allowed_names:
                raise self.error(f"unknown name {node.id!r}; the known names are"
                                 f" {', '.join(sorted(allowed_names))}")
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                raise self.error(f"attribute {node.attr!r} is not allowed")
            if isinstance(node, ast.Call) and (
                    node.keywords or any(isinstance(a, ast.Starred) for a in node.args)):
                raise self.error("only positional arguments are allowed in calls")

    def kinds(self, node: ast.AST) -> frozenset[str]:
        """What ``node`` may evaluate to; checks its attributes and calls on the way."""
        if isinstance(node, ast.Constant):
            if node.value is None:
                return frozenset({"none"})
            if isinstance(node.value, bytes):
                return frozenset({"bytes"})
            return _STR if isinstance(node.value, str) else _OTHER
        if isinstance(node, ast.Name):
            if node.id == "image":
                return frozenset({"image"})
            if node.id == "metadata_set":
                return frozenset({"set"})
            return frozenset({"function"}) if node.id in FUNCTIONS else _OTHER
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.BinOp):
            both = self.kinds(node.left) | self.kinds(node.right)
            if "any" in both:
                return _ANY
            # dict views combine into sets (keys() & metadata_set).
            return (both & {"str", "set", "seq"}) | ({"set"} if "view" in both else set()) \
                or _OTHER
        if isinstance(node, ast.BoolOp):
            return frozenset().union(*(self.kinds(value) for value in node.values))
        if isinstance(node, ast.IfExp):
            self.kinds(node.test)
            return self.kinds(node.body) | self.kinds(node.orelse)
        if isinstance(node, ast.Subscript):
            value = self.kinds(node.value)
            self.kinds(node.slice)
            if isinstance(node.slice, ast.Slice):
                return value & {"str", "seq", "any"} or _OTHER
            # A string's character or a property value; items of a list are unknown.
            return ((_STR if value & {"str", "mapping"} else frozenset())
                    | (_ANY if value & {"seq", "any"} else frozenset()) or _OTHER)
        for child in ast.iter_child_nodes(node):
            self.kinds(child)
        if isinstance(node, (ast.List, ast.Tuple)):
            return frozenset({"seq"})
        if isinstance(node, ast.Set):
            return frozenset({"set"})
        return _OTHER if isinstance(node, (ast.Compare, ast.UnaryOp)) else _ANY

    def attribute(self, node: ast.Attribute) -> frozenset[str]:
        """An image field's kinds, or a method (``method:NAME``) of the receiver."""
        receiver = self.kinds(node.value)
        if "any" in receiver:
            if node.attr not in _ALL_ATTRIBUTES:
                raise self.error(f".{node.attr} is not available on any value; the"
                                 f" methods are {', '.join(sorted(_METHODS))}")
            return frozenset({"any", "method:" + node.attr})
        result: set[str] = set()
        for kind in receiver:
            if node.attr in _KIND_ATTRS.get(kind, ()):
                result |= _FIELD_KINDS.get(node.attr, _OTHER) if kind == "image" else {
                    "method:" + node.attr}
        if not result and receiver == {"image"}:
            raise self.error(f"image has no attribute {node.attr!r}; it has"
                             f" {', '.join(IMAGE_ATTRIBUTES)}")
        if not result:
            what = ast.unparse(node.value)
            what = what if len(what) <= 40 else "this value"
            allowed = sorted(set().union(*(_KIND_ATTRS.get(kind, ()) for kind in receiver)))
            if not allowed:
                raise self.error(f"{what} is {_kinds_text(receiver)}: it has no"
                                 f" attributes or methods to use (.{node.attr})")
            raise self.error(f"{what} is {_kinds_text(receiver)}: .{node.attr} is not"
                             f" available; use one of {', '.join(allowed)}")
        return frozenset(result)

    def call(self, node: ast.Call) -> frozenset[str]:
        arguments = [self.kinds(argument) for argument in node.args]
        if isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
            return _FUNCTION_RESULTS.get(node.func.id, _OTHER)
        callee = self.kinds(node.func) if isinstance(node.func, ast.Attribute) else frozenset()
        if "any" in callee:
            return _ANY
        methods = {kind.removeprefix("method:") for kind in callee if kind.startswith("method:")}
        if not methods:
            raise self.error(f"{_short(ast.unparse(node.func), 40)} cannot be called; only"
                             f" the functions {', '.join(FUNCTIONS)} and the methods of"
                             " strings, sets and dictionaries can")
        results = frozenset().union(*(_METHOD_RESULTS.get(m, _OTHER) for m in methods))
        if "get" in methods:  # a property value (a string), None, or the default
            results |= {"str", "none"} | (arguments[1] if len(arguments) > 1 else frozenset())
        return results


# --- evaluation: bounded values -------------------------------------------------

class ValueTooLarge(simpleeval.IterableTooLong):
    """An expression would build a value larger than the bounds allow."""


_SCALAR_SIZES = {bool: 1, type(None): 1, float: 3, complex: 6}
_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))
_SEQUENCES = (str, bytes, list, tuple)
# printf-style conversion after the '%' and its mapping key: flags, width, precision.
_CONVERSION = re.compile(r"[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?")
_PARENTHESES = re.compile(r"[()]")


def _formatting_room(template: str) -> int:
    """Characters that the widths and precisions of a ``%`` template add.

    :raises ValueTooLarge: for ``*`` widths or precisions (taken from the
        arguments), or widths that could not be written in a sane string.
    """
    total = 0
    position = template.find("%")
    while position >= 0:
        position += 1
        if template.startswith("(", position):  # a mapping key: parentheses nest
            depth = 0
            for match in _PARENTHESES.finditer(template, position):
                depth += 1 if match.group() == "(" else -1
                if depth == 0:
                    position = match.end()
                    break
            else:
                return total  # unterminated key: formatting itself refuses it
        match = _CONVERSION.match(template, position)
        for number in match.groups(""):
            if number == "*":
                raise ValueTooLarge("'*' widths and precisions are not allowed in"
                                    " % formatting")
            if len(number) > 6 or total + int(number or 0) > MAX_VALUE_SIZE:
                raise ValueTooLarge(f"% formatting widths and precisions above"
                                    f" {MAX_VALUE_SIZE} are not allowed")
            total += int(number or 0)
        position = template.find("%", match.end() + 1)
    return total


class _BoundedReplace:
    """``text.replace``, refusing results longer than ``limit``."""

    __slots__ = ("text", "limit")

    def __init__(self, text: str, limit: int) -> None:
        self.text = text
        self.limit = limit

    def __call__(self, old: str, new: str, count: int = -1) -> str:
        if isinstance(old, str) and isinstance(new, str) and isinstance(count, int):
            found = len(self.text) + 1 if not old else self.text.count(old)
            if count >= 0:
                found = min(found, count)
            if len(self.text) + found * (len(new) - len(old)) > self.limit:
                raise ValueTooLarge(f"replace would build a string longer than"
                                    f" {self.limit} characters")
        return self.text.replace(old, new, count)

    def __repr__(self) -> str:
        return "<method replace of str>"


class _Evaluator(simpleeval.SimpleEval):
    """simpleeval with tuple, list and set literals, and bounded values.

    simpleeval calls :meth:`_check_disallowed_items` on the value of every
    node; here it also weighs the value (its size counted through nested
    containers, each container weighed once) and refuses it above the
    limit: :data:`MAX_VALUE_SIZE` plus the size of the names given (an
    image with large properties may be read whole, and its values used,
    whatever their size; what an expression builds is not out of proportion
    to it). Numbers are limited to :data:`MAX_VALUE_SIZE` digits.
    """

    def __init__(self, names: dict[str, Any]) -> None:
        operators = {**_OPERATORS, ast.Add: self._add, ast.Mult: self._mult,
                     ast.Mod: self._mod}
        super().__init__(operators=operators, functions=dict(FUNCTIONS),
                         names=names, allowed_attrs=_ALLOWED_ATTRS)
        self.nodes.update({
            ast.Tuple: lambda node: tuple(self._eval(e) for e in node.elts),
            ast.List: lambda node: [self._eval(e) for e in node.elts],
            ast.Set: lambda node: {self._eval(e) for e in node.elts},
        })
        #: id -> (container, its weight): the container is kept so its id stays its own.
        self._weights: dict[int, tuple[Any, int]] = {}
        self._built = 0
        self._limit = self._max_built = float("inf")  # the names given are not limited
        given = sum(self._weigh(value) for value in names.values())
        self._limit = MAX_VALUE_SIZE + given
        self._built, self._max_built = 0, MAX_BUILT + 10 * given

    def _check_disallowed_items(self, item: Any) -> None:
        self._weigh(item)

    def _weigh(self, value: Any) -> int:
        """The size of ``value``; refuses too large values and forbidden items.

        Strings count their characters, numbers their digits, containers
        one per element plus their elements' sizes.
        """
        kind = type(value)
        if kind is str or kind is bytes:
            weight = len(value)
        elif kind is int:
            weight = 1 + value.bit_length() // 3
            if weight > MAX_VALUE_SIZE:
                raise ValueTooLarge(self._too_large(number=True))
        elif kind in _SCALAR_SIZES:
            weight = _SCALAR_SIZES[kind]
        elif id(value) in self._weights:
            return self._weights[id(value)][1]
        else:
            weight = self._weigh_new(value)
            self._weights[id(value)] = (value, weight)
        if weight > self._limit:
            raise ValueTooLarge(self._too_large())
        return weight

    def _weigh_new(self, value: Any) -> int:
        # simpleeval's own check, for every value reached.
        if isinstance(value, types.ModuleType):
            raise simpleeval.FeatureNotAvailable("modules are not allowed")
        if isinstance(value, (list, tuple, set, frozenset, *_VIEWS)):
            base, items = 1, value
        elif isinstance(value, (dict, MappingProxyType)):
            base, items = 1, (part for pair in value.items() for part in pair)
        elif isinstance(value, ImageView):
            base, items = 32, (getattr(value, field) for field in IMAGE_ATTRIBUTES)
        elif isinstance(value, slice):
            base, items = 1, (value.start, value.stop, value.step)
        else:
            try:
                forbidden = callable(value) and value in simpleeval.DISALLOW_FUNCTIONS
            except TypeError:  # unhashable: not one of them
                forbidden = False
            if forbidden:
                raise simpleeval.FeatureNotAvailable("this function is forbidden")
            return 8
        weight = base
        for item in items:
            weight += 1 + self._weigh(item)
            if weight > self._limit:
                break
        self._built += weight
        if self._built > self._max_built:
            raise ValueTooLarge(f"the expression builds containers of more than"
                                f" {self._max_built} elements in all")
        return weight

    def _need(self, weight: int, number: bool = False) -> None:
        if weight > (MAX_VALUE_SIZE if number else self._limit):
            raise ValueTooLarge(self._too_large(number))

    @staticmethod
    def _too_large(number: bool = False) -> str:
        if number:
            return f"the expression would build a number of more than {MAX_VALUE_SIZE} digits"
        return (f"the expression would build a value larger than {MAX_VALUE_SIZE}"
                " characters or elements (beyond the image's own size)")

    def _add(self, left: Any, right: Any) -> Any:
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            self._need(self._weigh(left) + self._weigh(right))
        return left + right

    def _mult(self, left: Any, right: Any) -> Any:
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, _SEQUENCES) and isinstance(count, int):
                self._need(max(count, 0) * self._weigh(sequence))
        if isinstance(left, int) and isinstance(right, int):
            self._need((left.bit_length() + right.bit_length()) // 3, number=True)
        return left * right

    def _mod(self, left: Any, right: Any) -> Any:
        if isinstance(left, str):
            self._need(len(left) + _formatting_room(left))
        elif isinstance(left, bytes):
            self._need(len(left) + _formatting_room(left.decode("latin-1")))
        return left % right

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        item = super()._eval_attribute(node)
        if node.attr == "replace" and type(getattr(item, "__self__", None)) is str:
            return _BoundedReplace(item.__self__, self._limit)
        return item


_OPERATORS = {
    ast.Sub: operator.sub, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_, ast.BitXor: operator.xor,
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}


class Condition:
    """A compiled ``metadata_condition``.

    Construction checks the length, the size and nesting of the syntax tree,
    the syntax, the names, and the attributes and methods used, and raises
    :class:`ConfigError` (without location: the configuration loader adds
    it). Calling it evaluates the expression for one image.
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression.strip()
        checker = _Checker(self.expression)
        if not self.expression:
            raise ConfigError("the expression is empty")
        if len(self.expression) > MAX_EXPRESSION_LENGTH:
            raise checker.error(f"longer than {MAX_EXPRESSION_LENGTH} characters")
        try:
            self._tree = ast.parse(self.expression, mode="eval")
        except SyntaxError as exc:
            raise checker.error(exc.msg) from None
        except (ValueError, RecursionError, MemoryError) as exc:
            # Null bytes, or nesting too deep for Python's own parser.
            raise checker.error(str(exc) if isinstance(exc, ValueError)
                                else "nested too deeply") from None
        checker.check_shape(self._tree)
        checker.check_nodes(self._tree)
        checker.kinds(self._tree.body)

    def __call__(self, image: Image, metadata_set: frozenset[str] = frozenset()) -> bool:
        """True when the image satisfies the expression.

        An expression that fails on this image (wrong type, missing key,
        value too large, any error of the evaluator) raises
        :class:`ConfigError` naming the image.
        """
        names = {"image": ImageView.of(image), "metadata_set": set(metadata_set),
                 "True": True, "False": False, "None": None}
        where = f"on image {_short(image.name)} ({_cut(str(image.id), 80)})"
        try:
            evaluator = _Evaluator(names)
            return bool(evaluator.eval(self.expression, previously_parsed=self._tree.body))
        except simpleeval.InvalidExpression as exc:
            reason = f"cannot be evaluated {where}: {_cut(str(exc))}"
        except (KeyError, IndexError) as exc:
            reason = (f"failed {where}: {type(exc).__name__}: {_cut(str(exc))} (use"
                      " user_properties.get(name) for optional properties)")
        except RecursionError:
            reason = f"failed {where}: values nested too deeply"
        except Exception as exc:  # noqa: BLE001 - any failure of the evaluator is the user's
            reason = f"failed {where}: {type(exc).__name__}: {_cut(str(exc))}"
        raise ConfigError(f"metadata_condition {_short(self.expression)} {reason}")

    def __repr__(self) -> str:
        return f"Condition({self.expression!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)
