"""Who may read the files GlanceSync writes: one rule for every output.

Metrics, run reports (JSON and HTML), backups, log files and the
per-region logs of a run hold the names, ids and properties of private
images: they are created readable and writable by their owner only
(``0600``; the folders made for them ``0700``). With ``output_group =
GROUP`` in ``[main]`` they belong to that group, which may read them
(``0640``; folders ``0750``): the group of a web server showing the HTML
report, or of node_exporter reading the metrics. Never readable by every
user. Caches, locks and state files are not outputs: the rule does not
change them.
"""
from __future__ import annotations

import dataclasses
import errno
import grp
import logging
import os
from pathlib import Path

from glancesync.errors import ConfigError

LOG = logging.getLogger(__name__)

#: Modes of an output file and of a folder made for outputs: owner only,
#: and with ``output_group``.
PRIVATE_FILE, GROUP_FILE = 0o600, 0o640
PRIVATE_FOLDER, GROUP_FOLDER = 0o700, 0o750


@dataclasses.dataclass(frozen=True)
class OutputModes:
    """The rule of :mod:`glancesync.filemodes` for one configuration.

    ``group``: the group that may read the outputs (``output_group``), or
    None: their owner only.
    """

    group: str | None = None

    def gid(self) -> int | None:
        """The id of ``group`` (None without a group).

        :raises ConfigError: no group of that name on this system.
        """
        if not self.group:
            return None
        try:
            return grp.getgrnam(self.group).gr_gid
        except KeyError:
            raise ConfigError(f"no group {self.group!r} on this system (see getent group)",
                              section="main", option="output_group") from None

    @property
    def file_mode(self) -> int:
        return GROUP_FILE if self.group else PRIVATE_FILE

    @property
    def folder_mode(self) -> int:
        return GROUP_FOLDER if self.group else PRIVATE_FOLDER

    def apply_fd(self, fd: int) -> None:
        """Give the open file ``fd`` (a temporary file about to be renamed) its mode.

        :raises OSError: the group cannot be given (this user is not in it).
        """
        gid = self.gid()
        if gid is not None:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, self.file_mode)

    def apply(self, path: Path, *, folder: bool = False) -> None:
        """Give the output ``path`` (a file, or a folder made for outputs) its mode.

        A file this user cannot change (another user's) is a warning: its
        mode is its owner's business.
        """
        try:
            gid = self.gid()
            if gid is not None:
                os.chown(path, -1, gid, follow_symlinks=False)
            os.chmod(path, self.folder_mode if folder else self.file_mode,
                     follow_symlinks=False)
        except (OSError, NotImplementedError) as error:
            reason = getattr(error, "strerror", None) or error
            LOG.warning("cannot give %s the mode of GlanceSync's outputs (%s): %s",
                        path, oct(self.folder_mode if folder else self.file_mode), reason)

    def apply_tree(self, folder: Path) -> None:
        """:meth:`apply` to ``folder`` and every file in it (a run folder, a backup folder)."""
        self.apply(folder, folder=True)
        for entry in sorted(Path(folder).iterdir()):
            if entry.is_file() and not entry.is_symlink():
                self.apply(entry)


def create_private(path: Path | str) -> None:
    """Create ``path`` empty with mode ``0600`` if it does not exist yet.

    For log files, opened in append mode by :mod:`logging`, which would
    create them with the process's umask (often ``0644``).

    Opening never blocks: a FIFO that nobody reads (opening it for writing
    would wait for a reader for ever) is refused; a FIFO with a reader
    (``/dev/stderr`` into a pipe) and a device (``/dev/null``) are taken.

    :raises OSError: the file cannot be created, or is a FIFO nobody reads.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
    try:
        fd = os.open(path, flags, PRIVATE_FILE)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # O_NONBLOCK, O_WRONLY: a FIFO without reader
            raise OSError(errno.ENXIO, "a FIFO that nobody reads: writing to it would"
                                       " block for ever") from None
        raise
    os.close(fd)
