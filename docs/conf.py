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
