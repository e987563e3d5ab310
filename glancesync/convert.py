"""Disk format conversion with ``qemu-img``, the tool Glance itself uses.

``qemu-img`` is a system package (Debian, Ubuntu: ``qemu-utils``; Fedora:
``qemu-img``), not a Python one: :func:`require_qemu_img` says how to
install it when a region needs a conversion. :func:`convert` turns a
verified local file of one Glance disk format into a file of another,
after the checks Glance makes on images it converts: the input format is
given, never guessed; an image with a backing file or an external data
file is refused (it would read other files of this host); a qcow2, vdi,
vhdx or vmdk image must pass ``qemu-img check``. ``qemu-img`` writes to a
file only (not to a pipe); the caller gives a temporary file and removes
it if anything fails.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

from glancesync.errors import ConfigError, TransferError

__all__ = ["INSTALL_HINT", "QEMU_FORMATS", "convert", "require_qemu_img"]

LOG = logging.getLogger(__name__)

QEMU_IMG = "qemu-img"
#: How to install qemu-img, for messages.
INSTALL_HINT = ("install it as root (Debian, Ubuntu: apt-get install qemu-utils; "
                "Fedora: dnf install qemu-img)")
#: qemu-img's name of each Glance disk format it converts.
QEMU_FORMATS = {"raw": "raw", "qcow2": "qcow2", "vmdk": "vmdk", "vdi": "vdi", "vhd": "vpc",
                "vhdx": "vhdx"}
#: Formats ``qemu-img check`` knows: checked before converting.
_CHECKED = ("qcow2", "vdi", "vhdx", "vmdk")
#: ``qemu-img check`` exit status: the format has no check.
_NO_CHECK = 63


def require_qemu_img(why: str) -> str:
    """The path of ``qemu-img``.

    :raises ConfigError: it is not on ``PATH``; the message says ``why`` it
        is needed and how to install it.
    """
    found = shutil.which(QEMU_IMG)
    if found is None:
        raise ConfigError(f"qemu-img is missing, and {why} needs it: {INSTALL_HINT}")
    return found


def _run(args: list[str], what: str, image: str | None) -> subprocess.CompletedProcess:
    command = [require_qemu_img("converting a disk format"), *args]
    LOG.debug("running %s", " ".join(command))
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise TransferError(f"{what}: cannot run qemu-img: {exc}", image=image) from exc


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def inspect(path: Path, disk_format: str, *, image: str | None = None) -> dict:
    """``qemu-img info`` of ``path`` read as ``disk_format``; refuses unsafe images.

    :raises TransferError: the file is not of that format, or it names a
        backing file or an external data file.
    """
    done = _run(["info", "--output=json", "-f", QEMU_FORMATS[disk_format], str(path)],
                "inspecting the image", image)
    if done.returncode != 0:
        raise TransferError(f"the data is not a valid {disk_format} image: "
                            f"{_last_line(done.stderr)}", image=image)
    info = json.loads(done.stdout)
    data = (info.get("format-specific") or {}).get("data") or {}
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise TransferError(f"the {disk_format} image has a backing file "
                            f"({info.get('backing-filename')}): refused, as Glance does",
                            image=image)
    if data.get("data-file"):
        raise TransferError(f"the {disk_format} image has an external data file: refused, "
                            "as Glance does", image=image)
    return info


def convert(source: Path, source_format: str, output: Path, output_format: str, *,
            image: str | None = None) -> None:
    """Convert ``source`` (``source_format``) into the file ``output`` (``output_format``).

    ``output`` is written (created or replaced); on failure it may be left
    half written: the caller removes it.

    :raises TransferError: the source is refused or damaged, or qemu-img failed.
    :raises ConfigError: qemu-img is not installed.
    """
    if source_format not in QEMU_FORMATS or output_format not in QEMU_FORMATS:
        raise TransferError(f"cannot convert {source_format} to {output_format}", image=image)
    inspect(source, source_format, image=image)
    if source_format in _CHECKED:
        # qemu-img converts a truncated qcow2 without a word, zeros for what is missing.
        done = _run(["check", "-q", "-f", QEMU_FORMATS[source_format], str(source)],
                    "checking the image", image)
        if done.returncode not in (0, _NO_CHECK):
            raise TransferError(f"qemu-img check found the {source_format} image damaged "
                                f"(exit status {done.returncode}): "
                                f"{_last_line(done.stderr or done.stdout)}", image=image)
    done = _run(["convert", "-q", "-f", QEMU_FORMATS[source_format],
                 "-O", QEMU_FORMATS[output_format], str(source), str(output)],
                "converting the image", image)
    if done.returncode != 0:
        raise TransferError(f"qemu-img could not convert {source_format} to "
                            f"{output_format}: {_last_line(done.stderr)}", image=image)
