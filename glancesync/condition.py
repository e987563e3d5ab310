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
"""
from __future__ import annotations

import ast
import dataclasses
import operator
from types import MappingProxyType
from typing import Any

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

# Read-only methods per type; everything else is refused at evaluation.
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
    MappingProxyType: {"get", "keys", "values", "items"},
    str: _STR_METHODS,
    set: _SET_METHODS,
    frozenset: _SET_METHODS,
}

_OPERATORS = {
    ast.Add: simpleeval.safe_add, ast.Sub: operator.sub,
    ast.Mult: simpleeval.safe_mult,
    ast.Div: operator.truediv, ast.Mod: operator.mod,
    ast.FloorDiv: operator.floordiv, ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_, ast.BitXor: operator.xor,
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
    ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_, ast.IsNot: operator.is_not,
}


class _Evaluator(simpleeval.SimpleEval):
    """simpleeval with tuple, list and set literals (no comprehensions)."""

    def __init__(self, names: dict[str, Any]) -> None:
        super().__init__(operators=_OPERATORS, functions=dict(FUNCTIONS),
                         names=names, allowed_attrs=_ALLOWED_ATTRS)
        self.nodes.update({
            ast.Tuple: lambda node: tuple(self._eval(e) for e in node.elts),
            ast.List: lambda node: [self._eval(e) for e in node.elts],
            ast.Set: lambda node: {self._eval(e) for e in node.elts},
        })


class Condition:
    """A compiled ``metadata_condition``.

    Construction checks the syntax, the names and the attributes of
    ``image`` used, and raises :class:`ConfigError` (without location: the
    configuration loader adds it). Calling it evaluates the expression for
    one image.
    """

    def __init__(self, expression: str) -> None:
        self.expression = expression.strip()
        if not self.expression:
            raise ConfigError("the expression is empty")
        try:
            self._tree = ast.parse(self.expression, mode="eval")
        except SyntaxError as exc:
            raise ConfigError(
                f"invalid expression {self.expression!r}: {exc.msg}") from None
        self._check(self._tree)

    def _check(self, tree: ast.AST) -> None:
        allowed_names = set(NAMES) | set(FUNCTIONS)
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED_NODES):
                raise ConfigError(
                    f"invalid expression {self.expression!r}:"
                    f" {type(node).__name__} is not allowed; use names,"
                    " attributes, comparisons, and/or/not, in, and the"
                    f" functions {', '.join(FUNCTIONS)}")
            if isinstance(node, ast.Name) and node.id not in allowed_names:
                raise ConfigError(
                    f"invalid expression {self.expression!r}: unknown name"
                    f" {node.id!r}; the known names are"
                    f" {', '.join(sorted(allowed_names))}")
            if isinstance(node, ast.Attribute):
                if node.attr.startswith("_"):
                    raise ConfigError(
                        f"invalid expression {self.expression!r}: attribute"
                        f" {node.attr!r} is not allowed")
                if isinstance(node.value, ast.Name) and node.value.id in FUNCTIONS:
                    raise ConfigError(
                        f"invalid expression {self.expression!r}: functions"
                        " have no attributes to use")
                if (isinstance(node.value, ast.Name) and node.value.id == "image"
                        and node.attr not in IMAGE_ATTRIBUTES):
                    raise ConfigError(
                        f"invalid expression {self.expression!r}: image has"
                        f" no attribute {node.attr!r}; it has"
                        f" {', '.join(IMAGE_ATTRIBUTES)}")
            if isinstance(node, ast.Call) and (
                    node.keywords or any(isinstance(a, ast.Starred) for a in node.args)):
                raise ConfigError(
                    f"invalid expression {self.expression!r}: only positional"
                    " arguments are allowed in calls")

    def __call__(self, image: Image, metadata_set: frozenset[str] = frozenset()) -> bool:
        """True when the image satisfies the expression.

        An expression that fails on this image (wrong type, missing key,
        forbidden method) raises :class:`ConfigError` naming the image.
        """
        names = {"image": ImageView.of(image), "metadata_set": set(metadata_set),
                 "True": True, "False": False, "None": None}
        evaluator = _Evaluator(names)
        try:
            return bool(evaluator.eval(self.expression, previously_parsed=self._tree.body))
        except simpleeval.InvalidExpression as exc:
            raise ConfigError(
                f"metadata_condition {self.expression!r} cannot be evaluated"
                f" on image {image.name!r} ({image.id}): {exc}") from None
        except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as exc:
            raise ConfigError(
                f"metadata_condition {self.expression!r} failed on image"
                f" {image.name!r} ({image.id}): {type(exc).__name__}: {exc}"
                " (use user_properties.get(name) for optional properties)") from None

    def __repr__(self) -> str:
        return f"Condition({self.expression!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.expression == self.expression

    def __hash__(self) -> int:
        return hash(self.expression)
