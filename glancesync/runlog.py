"""Per-region log files of a run.

Regions are synchronised in worker threads; each worker declares the region
it works on with :func:`region_context`. :class:`RunLogs` adds one file
handler per region to the ``glancesync`` logger, each keeping only the
records emitted while that region was current, so a parallel run leaves one
readable log per region in its run folder. The files receive what the
``glancesync`` logger lets through: the scripts set it to INFO (or DEBUG).
:func:`prune_runs` keeps the number of run folders bounded.

Writing a log never changes the outcome of a run: a log file that cannot
be created or written (a full disk) is reported once, as an error on the
console, and left alone; the run goes on (:class:`SafeFileHandler`).
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import re
import shutil
import sys
from pathlib import Path
from typing import Iterator

from glancesync import readback, safenames
from glancesync.errors import UnsafeFileError
from glancesync.filemodes import PRIVATE_FOLDER, create_private

LOG = logging.getLogger(__name__)

#: The name of a run folder (:class:`RunLogs`): ``run_<date>_<time>_<microseconds>``.
RUN_FOLDER = re.compile(r"run_\d{8}_\d{6}_\d{6}")

_current_region: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "glancesync_region", default=None)

LOG = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogFormatter(logging.Formatter):
    """A formatter showing the message's control characters escaped.

    Messages quote names and answers of the regions: an ANSI escape must
    not reach the terminal, a newline must not forge a log line. The
    traceback of an exception (``--debug``) keeps its lines.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = safenames.printable(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message


class _StopsAtFirstFailure:
    """A handler mixin: the first failure (writing, flushing) calls :meth:`_give_up`.

    logging's own handlers print a traceback to stderr for every record
    they cannot write (hundreds on a full disk) and raise from ``flush``
    and ``close``. These write nothing more after ``failed`` is set.
    """

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)  # type: ignore[misc]

    def flush(self) -> None:
        if self.failed:
            return
        try:
            super().flush()  # type: ignore[misc]
        except (OSError, ValueError) as exc:  # ValueError: a closed stream
            self._give_up(exc)

    def handleError(self, record: logging.LogRecord) -> None:
        self._give_up(sys.exc_info()[1])

    def _give_up(self, exc: BaseException | None) -> None:
        self.failed = True


class SafeFileHandler(_StopsAtFirstFailure, logging.FileHandler):
    """A log file that fails quietly: reported once, then left alone.

    The first failure is one error record (shown on the console, which is
    another handler); then nothing more is written and nothing is raised,
    not even by ``close``.
    """

    def __init__(self, filename: str | Path) -> None:
        # Created owner-only: logs hold private image metadata (glancesync.filemodes).
        create_private(filename)
        super().__init__(filename, encoding="utf-8")

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # the last buffered lines could not be written
            self._give_up(exc)

    def _give_up(self, exc: BaseException | None) -> None:
        if self.failed:
            return
        super()._give_up(exc)
        reason = getattr(exc, "strerror", None) or exc or "unknown error"
        LOG.error("cannot write the log file %s (%s): nothing more is written to it;"
                  " the run goes on", self.baseFilename, reason)


class SafeStreamHandler(_StopsAtFirstFailure, logging.StreamHandler):
    """The console: a stream that cannot be written (closed, full) goes silent."""


@contextlib.contextmanager
def region_context(region: str) -> Iterator[None]:
    """Mark the records logged inside the block as belonging to ``region``."""
    token = _current_region.set(region)
    try:
        yield
    finally:
        _current_region.reset(token)


class _RegionFilter(logging.Filter):
    def __init__(self, region: str) -> None:
        super().__init__()
        self.region = region

    def filter(self, record: logging.LogRecord) -> bool:
        return _current_region.get() == self.region


class RunLogs:
    """One log file per region under ``run_dir/run_<timestamp>/``.

    The file of a region is named by :func:`glancesync.safenames.region_file_name`:
    a region name from a catalog (``x/../../tmp/EVIL``) never makes a file
    outside the run folder.
    """

    def __init__(self, run_dir: Path, regions: list[str], level: int = logging.INFO) -> None:
        stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        self.folder = Path(run_dir) / f"run_{stamp}"
        self.regions = regions
        self.level = level
        self.paths: dict[str, Path] = {}
        self._handlers: list[logging.Handler] = []

    def __enter__(self) -> "RunLogs":
        try:
            readback.make_folder(self.folder.parent, "the run folders' folder (run_dir)")
            self.folder.mkdir(mode=PRIVATE_FOLDER, exist_ok=False)
        except (OSError, UnsafeFileError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            LOG.error("cannot create the run folder %s (%s): this run keeps no"
                      " per-region logs; it goes on", self.folder, reason)
            return self
        logger = logging.getLogger("glancesync")
        for region in self.regions:
            path = safenames.join(self.folder, safenames.region_file_name(region, ".log"))
            try:
                handler = SafeFileHandler(path)
            except OSError as exc:
                LOG.error("cannot create the log file %s (%s): the run goes on without"
                          " it", path, exc.strerror or exc)
                continue
            handler.setLevel(self.level)
            handler.setFormatter(LogFormatter(LOG_FORMAT))
            handler.addFilter(_RegionFilter(region))
            logger.addHandler(handler)
            self._handlers.append(handler)
            self.paths[region] = path
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger("glancesync")
        for handler in self._handlers:
            logger.removeHandler(handler)
            handler.close()


def default_run_dir(federation: str) -> Path:
    """The run folder of a configuration without ``run_dir``: one per federation.

    ``<user state folder>/glancesync/runs/<federation>`` (platformdirs:
    ``$XDG_STATE_HOME``, else ``~/.local/state`` on Linux), ``federation``
    naming the master region where it lives (``Region@<Keystone URL or
    folder>``, :meth:`GlanceSync.lock_name`) through
    :func:`~glancesync.safenames.file_name`. Configurations of unrelated
    federations never share throughput measurements nor run folders; two
    configurations of one federation do, as they share its regions.
    """
    import platformdirs
    return (Path(platformdirs.user_state_dir("glancesync")) / "runs"
            / safenames.file_name(federation))


def prune_runs(run_dir: Path, keep: int) -> list[Path]:
    """Delete the oldest run folders of ``run_dir`` so that ``keep`` remain.

    Only sub-folders named like a run folder (:data:`RUN_FOLDER`; not a
    symbolic link) are counted and deleted, oldest first by name (their
    time stamp); anything else in ``run_dir`` is left alone. A folder that
    cannot be deleted is a warning. Returns the folders deleted.
    """
    problem = readback.folder_problem(Path(run_dir)) if Path(run_dir).exists() else None
    if problem is not None:
        LOG.error("old run folders are not deleted: run_dir %s cannot be trusted: it %s",
                  run_dir, problem)
        return []
    try:
        entries = sorted(entry for entry in Path(run_dir).iterdir()
                         if RUN_FOLDER.fullmatch(entry.name) and not entry.is_symlink()
                         and entry.is_dir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        LOG.warning("cannot list the run folders in %s: %s", run_dir, exc.strerror or exc)
        return []
    deleted = []
    for folder in entries[:max(0, len(entries) - keep)]:
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            continue  # another run removed it first
        except OSError as exc:
            LOG.warning("cannot delete the old run folder %s: %s", folder, exc.strerror or exc)
            continue
        deleted.append(folder)
    if deleted:
        LOG.debug("deleted %d old run folder(s) in %s", len(deleted), run_dir)
    return deleted
