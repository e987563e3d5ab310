"""The troubleshooting page covers every error message of the code.

The code is read with :mod:`ast`: every construction of
:class:`~glancesync.errors.GlanceSyncError` or one of its subclasses, and
every call of a function that makes one from its argument (such as
``Section.error(option, message)``), gives a message template: the literal
text, with ``{}`` where a value is put in. Each template must match an
entry of docs/manual/troubleshooting.rst, whose titles write the variable
parts as ``…``.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from glancesync import errors

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "manual" / "troubleshooting.rst"
SOURCES = sorted(p for folder in ("glancesync", "scripts") for p in (ROOT / folder).rglob("*.py")
                 if "testbed" not in p.relative_to(ROOT).parts)
ERROR_CLASSES = {name for name, value in vars(errors).items()
                 if isinstance(value, type) and issubclass(value, errors.GlanceSyncError)}
HOLE = "{}"


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else \
        func.attr if isinstance(func, ast.Attribute) else None


def _is_logging(call: ast.Call) -> bool:
    """A call of a logger's or an argument parser's methods (``LOG.error``)."""
    func = call.func
    return isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
        func.value.id in ("LOG", "log", "logger", "LOGGER", "parser")


def _message_arg(call: ast.Call, index: int) -> ast.expr | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == "message"), None)


class _Module:
    """One source file: its string helpers and error factories."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(encoding="utf-8"))
        self.functions = [n for n in ast.walk(self.tree)
                          if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        #: function name -> template of the string it returns
        self.string_helpers: dict[str, str] = {}
        for function in self.functions:
            returns = [n.value for n in ast.walk(function) if isinstance(n, ast.Return)]
            if len(returns) == 1 and isinstance(returns[0], (ast.JoinedStr, ast.Constant)):
                template = self.template(returns[0], ())
                if template is not None and template != HOLE:
                    self.string_helpers[function.name] = template

    def template(self, node: ast.expr | None, params: tuple[str, ...]) -> str | None:
        """The text of ``node`` with HOLE for each value; "{msg}" for a parameter."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name) and node.id in params:
            return "{msg}"
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else
                           ("{msg}" if isinstance(v.value, ast.Name) and v.value.id in params
                            else HOLE) for v in node.values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.template(node.left, params), self.template(node.right, params)
            return None if left is None or right is None else left + right
        if isinstance(node, ast.Call) and _called_name(node) in self.string_helpers:
            return self.string_helpers[_called_name(node)]
        return HOLE

    def factories(self) -> dict[str, tuple[int, int, int, str]]:
        """Functions making an error from a parameter.

        name -> (fewest arguments, most arguments, index of the message's
        parameter, wrapper: the message with "{msg}" for the parameter).
        """
        found = {}
        for function in self.functions:
            params = [a.arg for a in function.args.args if a.arg not in ("self", "cls")]
            fewest = len(params) - len(function.args.defaults)
            for call in ast.walk(function):
                if isinstance(call, ast.Call) and _called_name(call) in ERROR_CLASSES:
                    message = _message_arg(call, 0)
                    for index, param in enumerate(params):
                        wrapper = self.template(message, (param,))
                        if wrapper and "{msg}" in wrapper:
                            found[function.name] = (fewest, len(params), index, wrapper)
        return found


def message_templates() -> dict[str, list[str]]:
    """Every error message template of the code -> where it is made."""
    modules = [_Module(path) for path in SOURCES]
    factories: dict[str, dict[Path, tuple[int, int, int, str]]] = {}
    for module in modules:
        for name, factory in module.factories().items():
            factories.setdefault(name, {})[module.path] = factory
    found: dict[str, list[str]] = {}
    for module in modules:
        for call in ast.walk(module.tree):
            if not isinstance(call, ast.Call) or _is_logging(call):
                continue
            name = _called_name(call)
            count = len(call.args) + len(call.keywords)
            # the factory of this module first, else one of another whose arity fits
            fitting = [f for path, f in sorted(factories.get(name, {}).items(),
                                               key=lambda item: item[0] != module.path)
                       if f[0] <= count <= f[1]]
            if name in ERROR_CLASSES:
                template = module.template(_message_arg(call, 0), ())
            elif fitting:
                _, _, index, wrapper = fitting[0]
                template = module.template(_message_arg(call, index), ())
                template = None if template is None else wrapper.replace("{msg}", template)
            else:
                continue
            if template is None or "{msg}" in template:
                continue
            template = re.sub(r"\s+", " ", template)
            where = f"{module.path.relative_to(ROOT)}:{call.lineno}"
            found.setdefault(template, []).append(where)
    # A template of holes only passes on another error's message (str(exc)).
    return {t: w for t, w in found.items() if t.replace(HOLE, "").strip(" :;") != ""}


def page_entries() -> list[str]:
    """The message titles of the troubleshooting page (``…`` for a variable part)."""
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(r"^``(.+)``$", text, re.MULTILINE)


def _covers(entry: str, template: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in entry.split("…"))
    return re.fullmatch(pattern, template, re.DOTALL) is not None


def test_the_scan_finds_the_known_kinds_of_message():
    templates = message_templates()
    assert len(templates) > 150
    # a plain raise, an f-string, a factory (Section.error), a string helper
    assert "no credentials for this target" in templates
    assert any(t.startswith("cannot connect to Keystone at {}") for t in templates)
    assert any(t.startswith("invalid size {}: expected a number") for t in templates)
    assert any(t.startswith("invalid expression {}: unknown name {}") for t in templates)
    assert any(t.startswith("{} failed: the image endpoint {}") for t in templates)


def test_every_error_message_is_on_the_troubleshooting_page():
    entries = page_entries()
    missing = {template: where for template, where in message_templates().items()
               if not any(_covers(entry, template) for entry in entries)}
    assert not missing, "\n".join(f"{t!r}  ({', '.join(w)})" for t, w in sorted(missing.items()))


def test_every_entry_covers_a_message():
    templates = message_templates()
    unused = [entry for entry in page_entries()
              if not any(_covers(entry, template) for template in templates)]
    assert not unused


def test_every_entry_has_a_cause_and_a_fix():
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.split(r"^``.+``$", text, flags=re.MULTILINE)[1:]
    for entry, body in zip(page_entries(), blocks):
        assert "Cause:" in body and "Fix:" in body, entry
