"""Disk format conversion with ``qemu-img``, confined as Glance and Nova confine it.

``qemu-img`` is a system package (Debian, Ubuntu: ``qemu-utils``; Fedora:
``qemu-img``), not a Python one: :func:`require_qemu_img` says how to
install it when a region needs a conversion. :func:`convert` turns a
verified local file of one Glance disk format into a file of another.

A master image is data from elsewhere, and ``qemu-img`` follows what an
image names: a qcow2 backing file or external data file, the extents and
the parent of a VMDK descriptor. Such an image would publish any file this
host's user can read (CVE-2022-47951, CVE-2024-32498). So before
``qemu-img`` touches it, the file is inspected as Glance's image conversion
and Nova's image fetch inspect it since then, with ``oslo.utils``' format
inspector (``oslo_utils.imageutils.format_inspector``), and refused
(:class:`~glancesync.errors.ImageRefusedError`) when:

* its content is not of the declared format (a raw disk with a GPT
  partition table counts as raw, as in Nova), or is of several;
* a safety check of the inspector fails (backing file, data file, unknown
  qcow2 features, a VMDK descriptor naming other files...);
* it is a VMDK that is not a binary sparse file holding its own data: a
  text descriptor, a sparse header of capacity 0 (qemu then opens the
  embedded descriptor's extents), or a ``parentFileNameHint`` (a backing
  file) in the descriptor area qemu reads;
* its virtual size exceeds ``max_virtual_size`` (checked before any
  ``qemu-img`` runs, and again on ``qemu-img info``'s answer);
* ``qemu-img info`` (run only after all of that) reports another format,
  a backing file, a data file, a VMDK create type other than
  ``monolithicSparse``/``streamOptimized`` or an extent in another file.

``qemu-img`` runs with the services' confinement: the format given with
``-f`` (never probed), ``--force-share``, resource limits set by
``oslo.concurrency``'s ``prlimit`` wrapper (address space, CPU time, and
for a conversion the size of the files it writes), a wall-clock timeout
after which it is killed, ``LC_ALL=C``, no standard input, and the image
seen through a link in an empty private folder, its working directory, so
that a relative name resolves to nothing. The conversion's output goes to
the caller's temporary file, which the caller removes if anything fails.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from glancesync.errors import ConfigError, ImageRefusedError, TransferError
from glancesync.integrity import open_regular_file

__all__ = ["INSTALL_HINT", "QEMU_FORMATS", "Limits", "convert", "inspect",
           "require_qemu_img"]

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

GiB = 1024 ** 3
#: Limits of ``qemu-img info`` and ``check``: Glance's and Nova's for
#: ``qemu-img info`` (glance.async_.utils.QEMU_IMG_PROC_LIMITS, nova's
#: QEMU_IMG_LIMITS: 1 GiB of address space, 30 s of CPU time).
INFO_ADDRESS_SPACE = 1 * GiB
INFO_CPU_SECONDS = 30
#: Wall-clock seconds ``qemu-img info`` may take (it reads headers only).
INFO_SECONDS = 60.0
#: Address space of ``qemu-img check`` and ``convert`` (its thread pool
#: reserves memory arenas: a conversion to vmdk needs more than 1 GiB).
WORK_ADDRESS_SPACE = 4 * GiB
#: The VMDK create types qemu converts from a single sparse file (Glance's
#: and Nova's default ``vmdk_allowed_types``).
VMDK_ALLOWED_TYPES = ("monolithicSparse", "streamOptimized")
#: Bytes of the descriptor area qemu reads for ``parentFileNameHint``
#: (qemu block/vmdk.c: DESC_SIZE, 20 sectors, at sector 1 of a sparse file).
_VMDK_DESC_AREA = (512, 20 * 512)
#: Bytes read at a time while inspecting.
_READ = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Limits:
    """The budget of one conversion.

    ``max_virtual_size``: bytes of disk an image may declare (refused above,
    before qemu-img runs). ``timeout``: seconds the checks and the
    conversion may take together (wall clock; also qemu-img's CPU time).
    """

    max_virtual_size: int = 128 * GiB
    timeout: float = 3600.0


def require_qemu_img(why: str) -> str:
    """The path of ``qemu-img``.

    :raises ConfigError: it is not on ``PATH``; the message says ``why`` it
        is needed and how to install it.
    """
    found = shutil.which(QEMU_IMG)
    if found is None:
        raise ConfigError(f"qemu-img is missing, and {why} needs it: {INSTALL_HINT}")
    return found


def _refused(why: str, image: str | None) -> ImageRefusedError:
    return ImageRefusedError(f"refused before conversion: {why}", image=image)


def _capped(limit: int, which: int) -> int:
    """``limit``, or the hard limit ``which`` this process already has if lower.

    The wrapper sets soft and hard limits; asking more than the inherited hard
    limit (``ulimit -t``, systemd ``LimitCPU=``) fails unless the process may
    raise limits, and every conversion would then be refused.
    """
    hard = resource.getrlimit(which)[1]
    return limit if hard == resource.RLIM_INFINITY else min(limit, hard)


def _prlimit(address_space: int, cpu_seconds: float, file_size: int | None) -> list[str]:
    """oslo.concurrency's prlimit wrapper command (as processutils builds it), its
    limits capped at those this process has."""
    from oslo_concurrency.processutils import ProcessLimits
    limits = ProcessLimits(
        address_space=_capped(address_space, resource.RLIMIT_AS),
        cpu_time=_capped(max(1, math.ceil(cpu_seconds)), resource.RLIMIT_CPU),
        file_size=None if file_size is None else _capped(file_size, resource.RLIMIT_FSIZE))
    return [sys.executable, "-m", "oslo_concurrency.prlimit", *limits.prlimit_args(), "--"]


def _run(args: list[str], what: str, image: str | None, *, folder: Path, seconds: float,
         address_space: int, file_size: int | None = None) -> subprocess.CompletedProcess:
    """Run qemu-img ``args`` confined; killed after ``seconds`` (an ImageRefusedError)."""
    if seconds <= 0:
        raise _refused(f"{what} did not start: the time limit (convert_timeout) is used up",
                       image)
    command = [*_prlimit(address_space, seconds, file_size),
               require_qemu_img("converting a disk format"), *args]
    LOG.debug("running %s", " ".join(command))
    environment = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, cwd=folder, env=environment,
                              timeout=seconds, errors="replace")
    except subprocess.TimeoutExpired:
        raise _refused(f"{what} took longer than {seconds:.0f} s and was stopped (raise"
                       " convert_timeout if the image is legitimate and large)",
                       image) from None
    except OSError as exc:
        raise TransferError(f"{what}: cannot run qemu-img: {exc}", image=image) from exc


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


@dataclasses.dataclass
class Inspection:
    """What the inspection found: the detected format and the virtual size (bytes)."""

    detected: str
    virtual_size: int
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def _detect(handle: BinaryIO) -> Any:
    """oslo.utils' inspector of the data in ``handle``, as ``detect_file_format`` runs it.

    Read from an already opened (regular) file, so that nothing is opened
    again by name: the bytes inspected are the bytes of that file.
    """
    from oslo_utils.imageutils import format_inspector
    # The wrapper closes what it reads: its own descriptor of the same file.
    wrapper = format_inspector.InspectWrapper(os.fdopen(os.dup(handle.fileno()), "rb"))
    try:
        while wrapper.read(_READ):
            if wrapper.format is not None:
                break
    finally:
        wrapper.close()
    return wrapper.format


def _inspect_content(path: Path, disk_format: str, image: str | None,
                     limits: Limits) -> Inspection:
    """oslo.utils' inspection and the VMDK rules; no qemu-img. Raises ImageRefusedError."""
    from oslo_utils.imageutils import format_inspector
    try:
        handle = open_regular_file(path)
    except OSError as exc:
        raise TransferError(f"cannot read the image to inspect it ({path}): "
                            f"{exc.strerror or exc}", image=image) from exc
    with handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            inspector = _detect(handle)
            if inspector is None:
                raise format_inspector.ImageFormatError("no format could be decided")
            detected = str(inspector)
            inspector.safety_check()
        except format_inspector.SafetyCheckFailed as exc:
            names = ", ".join(sorted(exc.failures))
            raise _refused(f"the {detected} image fails the format inspector's safety checks"
                           f" ({names}): it may name other files of this host", image) from None
        except format_inspector.ImageFormatError as exc:
            raise _refused(f"its content is not a {disk_format} image the format inspector"
                           f" accepts ({exc})", image) from None
        if detected == "gpt":
            detected = "raw"  # a whole disk with a partition table: raw (as Nova and Glance)
        if detected != disk_format:
            raise _refused(f"it is declared {disk_format}, but its content is {detected}",
                           image)
        if disk_format == "raw":
            virtual = size  # the inspector has seen only the beginning
        else:
            try:
                virtual = int(inspector.virtual_size)
            except (KeyError, ValueError, TypeError, struct.error) as exc:
                raise _refused(f"its virtual size cannot be read ({exc!r})", image) from None
        if disk_format == "vmdk":
            _check_vmdk(handle, image)
    if virtual > limits.max_virtual_size:
        raise _refused(f"its virtual size, {virtual} bytes, is larger than"
                       f" convert_max_virtual_size ({limits.max_virtual_size} bytes)", image)
    return Inspection(detected, virtual)


def _check_vmdk(handle: BinaryIO, image: str | None) -> None:
    """Only a binary sparse VMDK that holds its own data and has no parent.

    qemu opens the extents of a text descriptor, and of the descriptor
    embedded in a sparse file whose header says capacity 0 (qemu
    block/vmdk.c, vmdk_open_vmdk4); and it takes ``parentFileNameHint`` of
    the descriptor area as a backing file (vmdk_parent_open).
    """
    header = os.pread(handle.fileno(), 512, 0)
    if header[:4] != b"KDMV":
        raise _refused("a VMDK text descriptor names its data in other files; only a"
                       " sparse VMDK file (monolithicSparse, streamOptimized) is converted",
                       image)
    capacity = struct.unpack_from("<Q", header, 12)[0] if len(header) >= 20 else 0
    if capacity == 0:
        raise _refused("the sparse VMDK's header has capacity 0: qemu would read the"
                       " extents its descriptor names, in other files", image)
    start, length = _VMDK_DESC_AREA
    area = os.pread(handle.fileno(), length, start)
    if b"parentfilenamehint" in area.lower():
        raise _refused("the VMDK descriptor names a parent (parentFileNameHint): a backing"
                       " file", image)


def _check_info(info: dict[str, Any], disk_format: str, link: Path, image: str | None,
                limits: Limits) -> None:
    """What ``qemu-img info`` reports must agree with the inspection. Raises ImageRefusedError."""
    reported = info.get("format")
    if reported != QEMU_FORMATS[disk_format]:
        raise _refused(f"qemu-img reads it as {reported}, not {disk_format}", image)
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise _refused(f"it has a backing file ({info.get('backing-filename')})", image)
    data = (info.get("format-specific") or {}).get("data") or {}
    if data.get("data-file"):
        raise _refused(f"it has an external data file ({data.get('data-file')})", image)
    if disk_format == "vmdk":
        if data.get("create-type") not in VMDK_ALLOWED_TYPES:
            raise _refused(f"its VMDK create type {data.get('create-type')!r} is not one of"
                           f" {', '.join(VMDK_ALLOWED_TYPES)}", image)
        for extent in data.get("extents") or []:
            if extent.get("filename") != str(link):
                raise _refused(f"a VMDK extent is in another file ({extent.get('filename')})",
                               image)
    virtual = info.get("virtual-size")
    if not isinstance(virtual, int) or virtual < 0:
        raise _refused("qemu-img reports no virtual size", image)
    if virtual > limits.max_virtual_size:
        raise _refused(f"its virtual size, {virtual} bytes, is larger than"
                       f" convert_max_virtual_size ({limits.max_virtual_size} bytes)", image)


@contextlib.contextmanager
def _workspace(source: Path, near: Path) -> Iterator[Path]:
    """An empty private folder beside ``near`` holding one link, ``source``, to the image.

    qemu-img resolves a relative name an image holds against the folder of
    the name it was given: here, a folder where nothing else exists.
    """
    folder = Path(tempfile.mkdtemp(prefix=".partial-qemu-", dir=near))
    try:
        link = folder / "source"
        os.symlink(os.path.abspath(source), link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _inspect_in(link: Path, source: Path, disk_format: str, image: str | None,
                limits: Limits, deadline: float) -> Inspection:
    found = _inspect_content(source, disk_format, image, limits)
    seconds = min(INFO_SECONDS, deadline - time.monotonic())
    done = _run(["info", "--output=json", "--force-share", "-f", QEMU_FORMATS[disk_format],
                 str(link)], "qemu-img info", image, folder=link.parent, seconds=seconds,
                address_space=INFO_ADDRESS_SPACE)
    if done.returncode != 0:
        raise _refused(f"qemu-img cannot read it as {disk_format}: "
                       f"{_last_line(done.stderr)}", image)
    try:
        info = json.loads(done.stdout)
    except ValueError:
        raise _refused("qemu-img info gave no readable answer", image) from None
    if not isinstance(info, dict):
        raise _refused("qemu-img info gave no readable answer", image)
    _check_info(info, disk_format, link, image, limits)
    found.info = info
    found.virtual_size = max(found.virtual_size, info["virtual-size"])
    return found


def inspect(path: Path, disk_format: str, *, image: str | None = None,
            limits: Limits = Limits()) -> Inspection:
    """Inspect ``path`` as ``disk_format`` (see the module's rules); ``qemu-img info`` last.

    :raises ImageRefusedError: the image is refused (the message says why).
    :raises TransferError: the file cannot be read, or qemu-img cannot run.
    :raises ConfigError: qemu-img is not installed.
    """
    if disk_format not in QEMU_FORMATS:
        raise TransferError(f"cannot inspect the disk format {disk_format}", image=image)
    deadline = time.monotonic() + limits.timeout
    with _workspace(path, Path(path).parent) as link:
        return _inspect_in(link, Path(path), disk_format, image, limits, deadline)


def convert(source: Path, source_format: str, output: Path, output_format: str, *,
            image: str | None = None, limits: Limits = Limits()) -> Inspection:
    """Convert ``source`` (``source_format``) into the file ``output`` (``output_format``).

    The source is inspected first (:func:`inspect`), then checked by
    ``qemu-img check`` (a truncated qcow2 converts without a word, zeros
    for what is missing), then converted; all within ``limits``.
    ``output`` is written (created or replaced); on failure it may be left
    half written: the caller removes it. Returns the inspection.

    :raises ImageRefusedError: the source is refused, or a limit was hit.
    :raises TransferError: the source is damaged, or qemu-img failed.
    :raises ConfigError: qemu-img is not installed.
    """
    if source_format not in QEMU_FORMATS or output_format not in QEMU_FORMATS:
        raise TransferError(f"cannot convert {source_format} to {output_format}", image=image)
    deadline = time.monotonic() + limits.timeout
    with _workspace(source, Path(output).parent) as link:
        found = _inspect_in(link, Path(source), source_format, image, limits, deadline)
        work = {"folder": link.parent, "address_space": WORK_ADDRESS_SPACE}
        if source_format in _CHECKED:
            done = _run(["check", "-q", "--force-share", "-f", QEMU_FORMATS[source_format],
                         str(link)], "qemu-img check", image,
                        seconds=deadline - time.monotonic(), **work)
            if done.returncode not in (0, _NO_CHECK):
                raise TransferError(f"qemu-img check found the {source_format} image damaged "
                                    f"(exit status {done.returncode}): "
                                    f"{_last_line(done.stderr or done.stdout)}", image=image)
        # The output holds at most the virtual size, plus the format's tables.
        most = found.virtual_size + found.virtual_size // 16 + 64 * 1024 * 1024
        done = _run(["convert", "-q", "--force-share", "-f", QEMU_FORMATS[source_format],
                     "-O", QEMU_FORMATS[output_format], str(link), os.path.abspath(output)],
                    "qemu-img convert", image, seconds=deadline - time.monotonic(),
                    file_size=most, **work)
    if done.returncode != 0:
        raise TransferError(f"qemu-img could not convert {source_format} to "
                            f"{output_format}: {_last_line(done.stderr)}", image=image)
    return found
