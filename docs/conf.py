"""Sphinx configuration of the GlanceSync documentation.

Built with warnings as errors (``make docs``); no extension needs the
network. ``autodoc`` imports the package from the source tree.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

import options_doc  # noqa: E402

# The manual's option table, from the option table of the code.
options_doc.write_if_changed(options_doc.TABLE, options_doc.table_text())

project = "GlanceSync"
author = "The GlanceSync authors"
copyright = "GlanceSync authors"
# The version is setup.py's (the changelog's first entry names it too).
release = re.search(r'version="([^"]+)"', (ROOT / "setup.py").read_text()).group(1)
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"

exclude_patterns = ["_build", "examples", "**/*.inc"]
root_doc = "index"
html_theme = "alabaster"
html_static_path: list[str] = []
pygments_style = "sphinx"
highlight_language = "none"
# A dead reference fails the build (-W); only the standard library's and
# third-party names, documented elsewhere, are let through.
nitpicky = True
nitpick_ignore = [
    ("py:class", "os.PathLike"),
    ("py:class", "io.StringIO"),
    ("py:data", "os.environ"),
    ("py:mod", "logging"),
]


#: The developers' specification, which docstrings may cite, is no document
#: users have: the reference shows the manual's page saying the same.
SPEC_PAGES = {"2": ":doc:`manual/concepts`", "4": ":doc:`manual/selection`",
              "5": ":ref:`statuses`", "6": ":ref:`obsolete`",
              "10": ":ref:`whole-image`"}


def _manual_for_spec(match: re.Match) -> str:
    pages = [SPEC_PAGES.get(number, ":doc:`manual/synchronisation`")
             for number in re.findall(r"\d+", match.group(0))]
    return "the manual: " + ", ".join(dict.fromkeys(pages))


def _no_spec(app, what, name, obj, options, lines) -> None:
    """``SPEC section 5`` in a docstring -> the manual's page on the subject."""
    for index, line in enumerate(lines):
        lines[index] = re.sub(r"SPEC sections? \d+(?: and \d+)?", _manual_for_spec, line)


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _no_spec)
