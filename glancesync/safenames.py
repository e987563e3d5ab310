"""File names and terminal text made from untrusted names, in one place.

Region names come from a Keystone catalog, image ids and names from a
region's API or database, target names from the configuration: any of them
may hold ``/``, ``..``, a NUL, control characters, or be thousands of
characters long. Every file name GlanceSync makes from such a name comes
from :func:`file_name`, and every path built from a folder and a name that
should stay in it goes through :func:`join`, which refuses anything that
would resolve outside the folder. Lock files, run logs, backups, the image
cache and the local store's data files all use them.

The same names are printed: :func:`printable` shows a name's control
characters (ANSI escapes, NUL, CR, newlines, bidirectional overrides)
escaped, so that a name cannot rewrite the terminal nor forge a line of a
report or of the log.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from glancesync.errors import UnsafeNameError

__all__ = ["MAX_NAME_LENGTH", "file_name", "join", "printable", "region_file_name"]

#: Characters kept as they are in a file name; every other one becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: A region reference ``target:Region`` whose target has no ``_``: named
#: ``target_Region``, as the run logs and backups always were.
_REF = re.compile(r"([A-Za-z0-9-][A-Za-z0-9.-]*):([A-Za-z0-9._-]+)")
#: What :func:`file_name` appends when it changed a name: ``-`` and 16 hex digits.
_DIGEST_TAIL = re.compile(r"-[0-9a-f]{16}$")
#: Longest readable part of a made name, in characters (all ASCII); file
#: systems take 255 bytes, which leaves room for the digest and a suffix.
MAX_NAME_LENGTH = 200


def file_name(name: str, suffix: str = "") -> str:
    """A file name for ``name``: readable, safe, and distinct per name.

    Characters outside ``[A-Za-z0-9._-]`` become ``_``, leading dots go (no
    hidden file, never ``.`` or ``..``) and the result is cut to
    :data:`MAX_NAME_LENGTH` characters; when that changed the name (or the
    name itself ends like a digest), a digest of the original keeps names
    apart: ``a:b`` gives ``a_b-<16 hex>`` while ``a_b`` stays ``a_b``, and
    ``x/../EVIL`` gives ``x_.._EVIL-<16 hex>``. ``suffix`` (``.lock``,
    ``.log``...) is appended as is.
    """
    safe = _UNSAFE.sub("_", name).lstrip(".")[:MAX_NAME_LENGTH] or "_"
    if safe != name or _DIGEST_TAIL.search(name):
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        safe = f"{safe}-{digest}"
    return safe + suffix


def region_file_name(region: str, suffix: str = "") -> str:
    """A file name for the region reference ``target:Region``.

    ``target_Region`` when the target has no ``_`` and the region name is
    safe (the names run logs and backups always had), else
    :func:`file_name` of the whole reference (with its digest). Distinct
    references always get distinct names: use it for folders that hold
    only names of references.
    """
    ref = _REF.fullmatch(region)
    if ref and not _DIGEST_TAIL.search(region) and len(region) <= MAX_NAME_LENGTH:
        return f"{ref[1]}_{ref[2]}{suffix}"
    return file_name(region, suffix)


def join(folder: Path | str, name: str, *, resolve: bool = True) -> Path:
    """``folder / name``, refusing a name that would leave ``folder``.

    ``name`` must be one path component (no ``/``, no NUL, not ``.`` nor
    ``..``, not empty). With ``resolve`` (the default) the path must also
    resolve inside ``folder`` once symbolic links are followed: a data file
    that is a link to ``/etc/passwd`` is refused like ``../../etc/passwd``.
    ``resolve=False`` is for a folder whose links the operator made (the
    read-only ``images_dir``).

    :raises UnsafeNameError: the name is not a plain file name of ``folder``.
    """
    folder = Path(folder)
    if (not isinstance(name, str) or name in ("", ".", "..") or "\0" in name
            or "/" in name or os.sep in name or (os.altsep and os.altsep in name)):
        raise UnsafeNameError(f"{name!r} is not a plain file name: refused in {folder}")
    path = folder / name
    if not resolve:
        return path
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError) as exc:  # a loop of links, an unreadable folder
        raise UnsafeNameError(f"{path} cannot be resolved: {exc}") from None
    if not inside:
        raise UnsafeNameError(f"{path} resolves outside {folder}: refused")
    return path


def printable(text: object) -> str:
    """``str(text)`` with every character that is not printable shown escaped.

    Not printable: what Python's :meth:`str.isprintable` refuses (control
    and format characters, including ANSI escapes, NUL, CR, LF, tab and the
    bidirectional overrides; line and paragraph separators; spaces other
    than the ASCII space). They become ``\\x1b``, ``\\n``, ``\\u202e``...;
    a backslash becomes ``\\\\``, so the escaped form is never ambiguous.
    """
    text = str(text)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(char if char.isprintable() and char != "\\" else _escaped(char)
                   for char in text)


def _escaped(char: str) -> str:
    if char == "\\":
        return "\\\\"
    return repr(char)[1:-1] if char in "\n\r\t" else (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else
        f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
