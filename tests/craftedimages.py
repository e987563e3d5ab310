"""Hostile disk images, crafted as a hostile master region would publish them.

Each :class:`Crafted` names the disk format the master image declares and
makes the image's bytes in a folder, given the host file an attacker wants
(:data:`SECRET`, planted by the test: its bytes must never reach a cache or
a region). The forms follow what qemu opens (qemu block/vmdk.c,
block/qcow2.c) and what was reported in OpenStack's advisories
(CVE-2022-47951, CVE-2024-32498) and in issue 21.

``HOSTILE`` lists every crafted image; ``SAFE`` images that must still
convert (the refusals must not catch them).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Callable

#: The marker of the host file an image tries to publish.
SECRET = b"HOST-SECRET-0123456789-" * 8


#: The real qemu-img (found once: tests may put a recording wrapper on PATH).
QEMU_IMG = shutil.which("qemu-img") or "qemu-img"


def qemu_img(*args: str) -> None:
    subprocess.run([QEMU_IMG, *args], check=True, capture_output=True, timeout=60)


def plant_secret(folder: Path) -> Path:
    """A host file worth stealing (4 KiB: a whole number of sectors)."""
    path = folder / "host-secret"
    path.write_bytes(SECRET.ljust(4096, b"\0"))
    return path


def text_descriptor(extent: str, *, create_type: str = "monolithicFlat", extra: str = "",
                    sectors: int = 8) -> bytes:
    """A VMDK text descriptor with one FLAT extent named ``extent``."""
    return (f"# Disk DescriptorFile\n{extra}version=1\nCID=fffffffe\nparentCID=ffffffff\n"
            f'createType="{create_type}"\n\nRW {sectors} FLAT "{extent}" 0\n').encode()


def sparse_header(*, capacity: int, descriptor_sectors: int = 20) -> bytes:
    """A VMDK4 sparse extent header (512 bytes), descriptor at sector 1."""
    header = struct.pack("<4sIIQQQQIQQQ?cccc", b"KDMV", 1, 3, capacity, 128, 1,
                         descriptor_sectors, 512, 0, 0, 0, False, b"\n", b" ", b"\r", b"\n")
    return header.ljust(512, b"\0")


def embedded_descriptor(descriptor: bytes) -> bytes:
    """A sparse VMDK of capacity 0: qemu reads the embedded descriptor's extents."""
    return sparse_header(capacity=0) + descriptor.ljust(20 * 512, b"\0")


def with_parent(folder: Path, secret: Path) -> bytes:
    """A real sparse VMDK whose descriptor names a parent: a text VMDK reading ``secret``."""
    parent = folder / "parent.vmdk"
    parent.write_bytes(text_descriptor(str(secret)))
    qemu_img("create", "-f", "vmdk", str(folder / "child.vmdk"), "4K")
    data = bytearray((folder / "child.vmdk").read_bytes())
    at = data.index(b'createType="monolithicSparse"\n') + len(b'createType="monolithicSparse"\n')
    hint = f'parentFileNameHint="{parent}"\n'.encode()
    end = data.index(b"\0", at)
    data[at:end + len(hint)] = hint + data[at:end]
    return bytes(data)


def qcow2_backed(folder: Path, secret: Path) -> bytes:
    qemu_img("create", "-f", "qcow2", "-b", str(secret), "-F", "raw",
             str(folder / "backed.qcow2"), "4K")
    return (folder / "backed.qcow2").read_bytes()


def qcow2_data_file(folder: Path, secret: Path) -> bytes:
    # qemu-img create empties the data file: make it name a decoy of the
    # secret's name length, then point the header at the secret.
    decoy = secret.with_name("x" * len(secret.name))
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={decoy},data_file_raw=on",
             str(folder / "external.qcow2"), "4K")
    data = (folder / "external.qcow2").read_bytes()
    return data.replace(str(decoy).encode(), str(secret).encode())


def qcow2_huge(folder: Path, secret: Path) -> bytes:
    qemu_img("create", "-f", "qcow2", str(folder / "huge.qcow2"), "4T")
    return (folder / "huge.qcow2").read_bytes()


def qcow2_unknown_feature(folder: Path, secret: Path) -> bytes:
    qemu_img("create", "-f", "qcow2", str(folder / "feature.qcow2"), "4K")
    data = bytearray((folder / "feature.qcow2").read_bytes())
    data[72:80] = struct.pack(">Q", 1 << 40)  # an incompatible feature bit nobody knows
    return bytes(data)


def fifo(folder: Path) -> Path:
    path = folder / "hostile-fifo"
    if not path.exists():
        os.mkfifo(path)
    return path


def as_raw(folder: Path, secret: Path) -> bytes:
    """A qcow2 with a backing file, declared raw."""
    return qcow2_backed(folder, secret)


def real_qcow2(folder: Path, secret: Path) -> bytes:
    qemu_img("create", "-f", "qcow2", str(folder / "plain.qcow2"), "1M")
    return (folder / "plain.qcow2").read_bytes()


def real_vmdk(folder: Path, secret: Path) -> bytes:
    qemu_img("create", "-f", "vmdk", str(folder / "plain.vmdk"), "1M")
    return (folder / "plain.vmdk").read_bytes()


@dataclasses.dataclass(frozen=True)
class Crafted:
    """A crafted image: the format it declares and how its bytes are made."""

    name: str
    disk_format: str
    make: Callable[[Path, Path], bytes]

    def data(self, folder: Path, secret: Path) -> bytes:
        return self.make(folder, secret)


def _text(extent: Callable[[Path, Path], str], **kw) -> Callable[[Path, Path], bytes]:
    return lambda folder, secret: text_descriptor(extent(folder, secret), **kw)


def _embedded(extent: Callable[[Path, Path], str], **kw) -> Callable[[Path, Path], bytes]:
    return lambda folder, secret: embedded_descriptor(text_descriptor(extent(folder, secret),
                                                                      **kw))


def _relative(folder: Path, secret: Path) -> str:
    """``../..`` up to the root, then the secret's absolute path."""
    return "../" * 12 + str(secret).lstrip("/")


#: An oslo.utils 10.2 inspector bypass: it reads createType lower-cased from
#: its first occurrence (a comment here), qemu case-sensitively from the real
#: line; the extent, with no ``/``, is a file beside the image.
_CASE_TRICK = {"extra": '# createtype="monolithicsparse"\n'}

HOSTILE: tuple[Crafted, ...] = (
    Crafted("vmdk text descriptor, absolute FLAT extent", "vmdk",
            _text(lambda f, s: str(s))),
    Crafted("vmdk text descriptor, relative ../.. FLAT extent", "vmdk", _text(_relative)),
    Crafted("vmdk text descriptor, extent beside the image (inspector bypass)", "vmdk",
            _text(lambda f, s: "host-secret", **_CASE_TRICK)),
    Crafted("vmdk text descriptor, /dev/zero extent", "vmdk",
            _text(lambda f, s: "/dev/zero", sectors=2 ** 33)),
    Crafted("vmdk text descriptor, FIFO extent", "vmdk", _text(lambda f, s: str(fifo(f)))),
    Crafted("sparse vmdk, embedded descriptor, absolute FLAT extent", "vmdk",
            _embedded(lambda f, s: str(s))),
    Crafted("sparse vmdk, embedded descriptor, extent beside the image", "vmdk",
            _embedded(lambda f, s: "host-secret", **_CASE_TRICK)),
    Crafted("sparse vmdk, embedded descriptor, /dev/zero extent", "vmdk",
            _embedded(lambda f, s: "/dev/zero", sectors=2 ** 33)),
    Crafted("sparse vmdk, embedded descriptor, FIFO extent", "vmdk",
            _embedded(lambda f, s: str(fifo(f)))),
    Crafted("sparse vmdk with a parentFileNameHint", "vmdk", with_parent),
    Crafted("qcow2 with a backing file", "qcow2", qcow2_backed),
    Crafted("qcow2 with an external data file", "qcow2", qcow2_data_file),
    Crafted("qcow2 of 4 TiB virtual size", "qcow2", qcow2_huge),
    Crafted("qcow2 with an unknown incompatible feature", "qcow2", qcow2_unknown_feature),
    Crafted("qcow2 with a backing file, declared raw", "raw", as_raw),
    Crafted("qcow2 declared vmdk", "vmdk", real_qcow2),
    Crafted("vmdk declared qcow2", "qcow2", real_vmdk),
    Crafted("raw text declared qcow2", "qcow2", lambda f, s: b"just some bytes\n" * 64),
)

#: Images that must still be converted.
SAFE: tuple[Crafted, ...] = (
    Crafted("plain qcow2", "qcow2", real_qcow2),
    Crafted("plain sparse vmdk", "vmdk", real_vmdk),
    Crafted("plain raw", "raw", lambda f, s: os.urandom(64 * 1024)),
)
