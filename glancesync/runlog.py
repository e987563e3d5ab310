"""Per-region log files of a run.

Regions are synchronised in worker threads; each worker declares the region
it works on with :func:`region_context`. :class:`RunLogs` adds one file
handler per region to the ``glancesync`` logger, each keeping only the
records emitted while that region was current, so a parallel run leaves one
readable log per region in its run folder. The files receive what the
``glancesync`` logger lets through: the scripts set it to INFO (or DEBUG).
:func:`prune_runs` keeps the number of run folders bounded.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import re
import shutil
from pathlib import Path
from typing import Iterator

LOG = logging.getLogger(__name__)

#: The name of a run folder (:class:`RunLogs`): ``run_<date>_<time>_<microseconds>``.
RUN_FOLDER = re.compile(r"run_\d{8}_\d{6}_\d{6}")

_current_region: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "glancesync_region", default=None)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    """One log file per region under ``run_dir/run_<timestamp>/``."""

    def __init__(self, run_dir: Path, regions: list[str], level: int = logging.INFO) -> None:
        stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
        self.folder = Path(run_dir) / f"run_{stamp}"
        self.regions = regions
        self.level = level
        self.paths: dict[str, Path] = {}
        self._handlers: list[logging.Handler] = []

    def __enter__(self) -> "RunLogs":
        self.folder.mkdir(parents=True, exist_ok=True)
        logger = logging.getLogger("glancesync")
        for region in self.regions:
            path = self.folder / f"{region.replace(':', '_')}.log"
            handler = logging.FileHandler(path, encoding="utf-8")
            handler.setLevel(self.level)
            handler.setFormatter(logging.Formatter(LOG_FORMAT))
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


def prune_runs(run_dir: Path, keep: int) -> list[Path]:
    """Delete the oldest run folders of ``run_dir`` so that ``keep`` remain.

    Only sub-folders named like a run folder (:data:`RUN_FOLDER`; not a
    symbolic link) are counted and deleted, oldest first by name (their
    time stamp); anything else in ``run_dir`` is left alone. A folder that
    cannot be deleted is a warning. Returns the folders deleted.
    """
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
