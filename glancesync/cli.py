"""What the command-line scripts share: options, logging, error handling.

The scripts in ``scripts/`` parse their own arguments and call one method of
:class:`~glancesync.GlanceSync`; this module gives them the common options,
one way to build the :class:`~glancesync.GlanceSync` from them
(:func:`build_glancesync`), the logging set-up (quiet under cron, secrets
redacted by :mod:`glancesync.redaction`) and the mapping of errors to the
documented exit statuses.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import os
import re
import shutil
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, NoReturn, Sequence, TextIO

from glancesync import redaction, stopping
from glancesync.config import ALWAYS_SHOWN, open_config_file
from glancesync.errors import (ExitStatus, GlanceSyncError, NothingToSyncError, StoppedError,
                               UsageError)
from glancesync.facade import GlanceSync, RunResult, StatusReport
from glancesync.filemodes import OutputModes
from glancesync.options import MASTER
from glancesync.plan import ImageStatus, Operation, OperationKind, RegionPlan, Status
from glancesync.regions import parse_region
from glancesync.integrity import atomic_file
from glancesync.redaction import REDACTOR
from glancesync.runlog import LOG_FORMAT, LogFormatter, SafeFileHandler, SafeStreamHandler
from glancesync.safenames import printable

EXIT_STATUS_HELP = """exit statuses:
  0  done, or everything already in sync
  1  at least one region failed (its error is printed)
  2  usage or configuration error, or a run that can do nothing (no image of
     the master to synchronise, no region, an --image pattern matching nothing)
  3  work is pending (--show-status, --dry-run)
  4  images need an operator (the error_* statuses)
  5  another glancesync run holds the lock of a region (still, after --wait-lock)
  6  the coordination service of several hosts (coordination_url) cannot be used
  130  stopped by SIGINT (Ctrl-C): transfers under way aborted, the images the
     run had not finished deleted, locks released, the summary printed
  143  stopped by SIGTERM (systemctl stop, kill), as for SIGINT
"""

#: ``--help`` of glancesync-printimages: what its exit status says.
PRINTIMAGES_EXIT_STATUS_HELP = """exit statuses:
  0  the reports were printed
  1  a region could not be read (its error is printed)
  2  usage or configuration error (an unknown region, wrong credentials...)
"""

#: ``--help`` of glancesync-backup: what its exit status says.
BACKUP_EXIT_STATUS_HELP = """exit statuses:
  0  the backups were written, or the backup restored
  1  a region could not be read or changed (its error is printed)
  2  usage or configuration error (an unknown region, an unreadable or
     malformed backup file, a backup of another region without --force...)
  3  --restore --dry-run: the restore would change images
  130  stopped by SIGINT (Ctrl-C) before the last region (the files written are kept)
  143  stopped by SIGTERM, as for SIGINT
"""

CONFIG_HELP = ("configuration: the file named by --config-file, else "
               "$GLANCESYNC_CONFIG, else /etc/glancesync.conf, else the OS_* "
               "environment variables (master target only)")

def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every script takes."""
    group = parser.add_argument_group("configuration and output")
    group.add_argument("--config-file", metavar="PATH",
                       help="configuration file (default: $GLANCESYNC_CONFIG, "
                            "then /etc/glancesync.conf)")
    group.add_argument("--config", metavar="[SECTION.]KEY=VALUE", action="append",
                       default=[], help="override one configuration option; "
                       "repeat for several (KEY=VALUE alone goes to [main] for "
                       "a [main] option, else to [DEFAULT])")
    verbosity = group.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true",
                           help="print only errors and the summary")
    verbosity.add_argument("-v", "--verbose", action="store_true",
                           help="log every action (default on a terminal)")
    verbosity.add_argument("--debug", action="store_true",
                           help="log HTTP requests (secrets masked) and show "
                                "tracebacks of errors")
    group.add_argument("--log-file", metavar="PATH",
                       help="also write the log, at the verbose level, to this file")
    group.add_argument("--no-progress", action="store_true",
                       help="no progress bars, even on a terminal")


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line saying what to do."""

    def error(self, message: str) -> NoReturn:
        self.exit(int(ExitStatus.USAGE),
                  f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def new_parser(prog: str, description: str,
               exit_statuses: str = EXIT_STATUS_HELP) -> ArgumentParser:
    """A parser with the common options and the script's exit statuses in ``--help``."""
    return ArgumentParser(
        prog=prog, description=description,
        epilog=CONFIG_HELP + "\n\n" + exit_statuses,
        formatter_class=argparse.RawDescriptionHelpFormatter)


def add_all_targets_option(parser: argparse.ArgumentParser) -> None:
    """``--all-targets``: every region of every configured target in one run."""
    parser.add_argument("--all-targets", action="store_true",
                        help="every region of every configured target, in one run (as if "
                             "each target were given as target:); without it and without "
                             "REGION, only master: is covered")


def add_wait_lock_option(parser: argparse.ArgumentParser) -> None:
    """``--wait-lock SECONDS``: wait for the lock of a region another run holds."""
    parser.add_argument("--wait-lock", type=_seconds, default=0.0, metavar="SECONDS",
                        help="wait up to SECONDS for the lock of a region that another "
                             "run holds before giving up on it (exit status 5); default 0: "
                             "give up at once")


def _seconds(text: str) -> float:
    """A number of seconds, 0 or more (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text!r}")
    return value


def scope_regions(glancesync: GlanceSync, args: argparse.Namespace) -> list[str]:
    """The region arguments of a run: ``args.regions``, or every target with ``--all-targets``.

    :raises UsageError: ``--all-targets`` with region arguments.
    """
    if getattr(args, "all_targets", False):
        if args.regions:
            raise UsageError("--all-targets covers every region of every target: give"
                             " either --all-targets or REGION arguments")
        return [f"{name}:" for name in _targets(glancesync)]
    return list(args.regions)


def left_out_note(prog: str, glancesync: GlanceSync, args: argparse.Namespace) -> str | None:
    """The note of a run that leaves configured targets out, or None.

    A run given no region and no ``--all-targets`` covers ``master:`` only;
    when the configuration has other targets, the scripts print this on
    stderr at the end of the run (on every run, ``--quiet`` and cron
    included; not after an error, which is then the one line printed).
    """
    targets = _targets(glancesync)
    if getattr(args, "all_targets", False) or args.regions or len(targets) == 1:
        return None
    return (f"{prog}: note: only the regions of target master are covered; the configured"
            f" target(s) {printable(', '.join(targets[1:]))} are left out (give --all-targets"
            " for every target, or name the regions)")


def _targets(glancesync: GlanceSync) -> list[str]:
    """The configured targets, ``master`` first."""
    return [MASTER] + sorted(name for name in glancesync.config.targets if name != MASTER)


def unmatched_image_pattern(glancesync: GlanceSync, result: RunResult | StatusReport
                            ) -> UsageError | None:
    """A usage error for an ``--image`` pattern that matched nothing, or None.

    A pattern matches when an image of the run's plans (a master image, or
    a regional copy the lifecycle retires) or of the master region has a
    name it matches. The error names the closest names (case aside), so
    that a typing mistake is seen at once. A run that failed in every
    region is not checked (its failures say more).

    :raises GlanceSyncError: the master region cannot be listed.
    """
    from glancesync import scope
    if not result.images or not result.plans:
        return None
    planned = {item.name for plan in result.plans.values() for item in plan.statuses}
    missing = [p for p in result.images if not any(scope.matches(n, [p]) for n in planned)]
    if not missing:
        return None
    master = {str(image["name"]) for image in
              glancesync.get_images_region(glancesync.master_region) if image["name"]}
    names = sorted(master | {name for name in planned if name})
    for pattern in missing:
        if any(scope.matches(name, [pattern]) for name in names):
            continue
        plain = re.sub(r"[*?\[\]]", "", pattern).lower()
        lowered = {name.lower(): name for name in names}
        close = [lowered[n] for n in difflib.get_close_matches(plain, list(lowered), n=3,
                                                                cutoff=0.4)]
        hint = (f"; the closest names are {', '.join(close)}" if close
                else f"; the master's images are {', '.join(names[:10]) or '(none)'}"
                + (" ..." if len(names) > 10 else ""))
        return UsageError(f"--image {pattern!r} matches no image of the master region"
                          f" {glancesync.master_region} nor of the regions{hint}")
    return None


def check_regions(parser: argparse.ArgumentParser, regions: Sequence[str]) -> None:
    """Refuse region arguments that are obviously something else.

    ``--config`` takes exactly one value, so ``--config a=1 b=2`` leaves
    ``b=2`` among the regions: say how to write it instead of reporting an
    unknown region.
    """
    for region in regions:
        if "=" in region:
            parser.error(f"{region!r} is not a region; to override an option "
                         f"write --config {region}")
        if region.startswith("-"):
            parser.error(f"unknown option {region!r}")


def setup_logging(args: argparse.Namespace, stream: TextIO | None = None) -> None:
    """Console logging: INFO on a terminal, errors only under cron or --quiet."""
    stream = stream or sys.stderr
    if args.debug:
        level = logging.DEBUG
    elif args.verbose:
        level = logging.INFO
    elif args.quiet or not stream.isatty():
        level = logging.ERROR  # cron: errors (and images needing an operator) only
    else:
        level = logging.INFO
    # Masking at record creation covers every handler, ours and the run logs.
    redaction.install()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = SafeStreamHandler(stream)
    # The level is applied by the filter: security warnings (ALWAYS_SHOWN)
    # reach a cron mail too.
    console.setLevel(min(level, logging.WARNING))
    console.setFormatter(LogFormatter(
        "%(levelname)s %(name)s: %(message)s" if args.debug else "%(message)s"))
    # Region summaries are printed at the end of the run: not twice.
    console.addFilter(lambda record: not getattr(record, "summary", False) and (
        record.levelno >= level or getattr(record, ALWAYS_SHOWN, False)))
    root.addHandler(console)
    lowest = level
    if args.log_file:
        try:
            handler = SafeFileHandler(args.log_file)
        except OSError as error:
            raise UsageError(f"cannot write the log file {args.log_file}: "
                             f"{error.strerror}") from error
        file_level = logging.DEBUG if args.debug else logging.INFO
        handler.setLevel(file_level)
        handler.setFormatter(LogFormatter(LOG_FORMAT))
        root.addHandler(handler)
        lowest = min(lowest, file_level)
    # Our own records at INFO always reach the per-region run logs.
    root.setLevel(min(lowest, logging.INFO))
    logging.getLogger("glancesync").setLevel(logging.DEBUG if args.debug else logging.INFO)
    for noisy in ("keystoneauth", "glanceclient", "urllib3", "stevedore",
                  "openstack", "requests"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.WARNING)
    if not args.debug:
        logging.captureWarnings(True)
        logging.getLogger("py.warnings").setLevel(logging.ERROR)


def config_stream(args: argparse.Namespace) -> BinaryIO | None:
    """The configuration file named on the command line, opened, or None.

    Opened as bytes: the loader decodes them and reports a file that is not
    UTF-8 in one line, as it does for ``$GLANCESYNC_CONFIG``. Only a regular
    file of at most 1 MiB is opened (:func:`~glancesync.config.open_config_file`).

    :raises ConfigError: the file cannot be opened or is not a configuration file.
    """
    if not args.config_file:
        return None
    return open_config_file(args.config_file)


def build_glancesync(args: argparse.Namespace, *, progress: bool | None = False) -> GlanceSync:
    """The :class:`GlanceSync` the common options describe (``--config-file``, ``--config``).

    ``progress``: draw progress bars (None: only on a terminal).

    :raises ConfigError: the configuration cannot be read or is invalid.
    """
    stream = config_stream(args)
    try:
        glancesync = GlanceSync(stream, overrides=args.config, progress=progress,
                                stop=getattr(args, "stop_request", None),
                                wait_lock=getattr(args, "wait_lock", 0.0))
    finally:
        if stream is not None:
            stream.close()
    if getattr(args, "log_file", None):  # opened before the configuration was read
        output_modes(glancesync).apply(Path(args.log_file))
    return glancesync


def output_modes(glancesync: GlanceSync) -> OutputModes:
    """Who may read the run's outputs: :mod:`glancesync.filemodes` with ``output_group``."""
    return OutputModes(glancesync.config.main.output_group)


def share_outputs(glancesync: GlanceSync, paths: Sequence[Path]) -> None:
    """Give the backup files (and their folders) or run folders ``paths`` the outputs' mode.

    The library writes them owner-only; with ``output_group`` they become
    readable by that group.
    """
    modes = output_modes(glancesync)
    if not modes.group:
        return
    for folder in dict.fromkeys(Path(path) if Path(path).is_dir() else Path(path).parent
                                for path in paths):
        modes.apply_tree(folder)


def run(prog: str, args: argparse.Namespace, body: Callable[[], int],
        stoppable: bool = False) -> int:
    """Run a script's body; map errors to one line and an exit status.

    Everything the script prints goes through the one redaction
    (:func:`glancesync.redaction.install_streams`). ``stoppable``: SIGINT
    and SIGTERM set the run's :class:`~glancesync.StopRequest`
    (``args.stop_request``, which :func:`build_glancesync` hands to the
    :class:`~glancesync.GlanceSync`) instead of killing the script: the run
    stops within seconds, cleans up and reports (exit status 130 or 143).
    """
    redaction.install_streams()
    with contextlib.ExitStack() as stack:
        if stoppable and threading.current_thread() is threading.main_thread():
            args.stop_request = stack.enter_context(
                stopping.signal_handlers(stopping.StopRequest(), prog))
        return _run_body(prog, args, body)


def _run_body(prog: str, args: argparse.Namespace, body: Callable[[], int]) -> int:
    try:
        return int(body())
    except GlanceSyncError as error:
        # A configuration error may quote the offending line: mask secrets.
        if getattr(args, "debug", False):
            print(REDACTOR.redact(traceback.format_exc()), file=sys.stderr, end="")
        # One line, whatever the message quotes (an option name with a newline,
        # a server's answer with ANSI escapes...).
        message = printable(REDACTOR.redact(str(error)))
        print(f"{prog}: error: {message}", file=sys.stderr)
        return int(error.exit_status)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into a command that stopped reading (e.g. head).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitStatus.OK)


#: The statuses of a plan line that is no image of the master to synchronise:
#: leftovers and the lifecycle's copies of images gone from the master.
NOT_MASTER_IMAGES = frozenset({Status.PENDING_CLEANUP, Status.PENDING_REMOVAL,
                               Status.INFO_REMOVAL_GRACE, Status.OK_RETIRED,
                               Status.INFO_REMOVAL_SKIPPED, Status.ERROR_MAX_DELETES,
                               Status.ERROR_MASTER_SHRANK})


def nothing_to_sync(glancesync: GlanceSync, result: RunResult | StatusReport,
                    regions: Sequence[str]) -> NothingToSyncError | None:
    """Why a run that went well could do nothing at all, or None.

    A run (status, dry run, sync; not limited by ``--image``) that failed
    nowhere but covers no region, or whose regions are given no image of
    the master to synchronise, did nothing that was asked of it.
    """
    if result.failures or result.images:
        return None
    if not result.plans:
        where = ", ".join(regions) or f"{MASTER}:"
        return NothingToSyncError(
            f"no region to synchronise in {where}: the target has no region but the"
            " master region, or ignore_regions leaves none")
    if any(item.status not in NOT_MASTER_IMAGES
           for plan in result.plans.values() for item in plan.statuses):
        return None
    return NothingToSyncError(
        f"nothing to synchronise: the master region {glancesync.master_region} shows"
        " no image that the selection rules synchronise to these regions; check the"
        " project and role of the master credentials (they must see the images),"
        " metadata_condition and metadata_set")


def record_problem(result: RunResult | StatusReport, problem: GlanceSyncError,
                   regions: Sequence[str]) -> None:
    """Record a run's ``problem`` as the failure of every region it covered.

    A run that could do nothing (:func:`nothing_to_sync`, an ``--image``
    pattern matching nothing) is not a success: its regions (none: its
    targets, ``target:``) are failed in every output, and its exit status
    is the problem's.
    """
    covered = list(result.plans) or [
        f"{parse_region(region)[0]}:" for region in (regions or [f"{MASTER}:"])]
    for region in covered:
        result.failures[region] = problem


def summary_lines(result: RunResult, quiet: bool = False) -> list[str]:
    """The summary of a sync run, printed by the scripts.

    One line per region (its counters, or why it failed) and a total.
    ``quiet``: nothing at all when the run changed nothing (or, for a dry
    run, would change nothing), failed nowhere and found nothing that needs
    an operator; otherwise only the regions that changed or failed, and
    the images that need an operator.
    """
    if quiet:
        return _quiet_lines(result)
    lines = [outcome.summary() for _, outcome in sorted(result.results.items())]
    lines += _failure_lines(result)
    for region, estimate in sorted(result.estimates.items()):
        if estimate.bytes:
            lines.append(f"{region}: {estimate.describe()}")
    total = result.totals()
    if not result.dry_run:
        total += f", {result.bytes_downloaded / 2 ** 20:.1f} MiB downloaded from the master"
    lines.append(total)
    lines.extend(host_lines(result))
    lines += stopped_lines(result)
    if result.log_folder:
        lines.append(f"logs: {result.log_folder}")
    # Region names and errors quote what the regions answered.
    return [printable(line) for line in lines]


def host_lines(result: RunResult) -> list[str]:
    """With several hosts (``coordination_url``): the regions this host did, and
    those another host held (with who held them)."""
    lines = []
    if result.done_here:
        lines.append(f"done by this host: {', '.join(sorted(result.done_here))}")
    if result.held_elsewhere:
        held = ", ".join(f"{region} ({holder})"
                         for region, holder in sorted(result.held_elsewhere.items()))
        lines.append(f"held by another host: {held}")
    return lines


def _failure_lines(result: RunResult) -> list[str]:
    """``REGION: FAILED: why`` per region that failed as a whole; ``REGION: NOT DONE:
    why`` for one a stop request kept the run from."""
    lines = []
    for region, error in sorted(result.failures.items()):
        reason = str(error).removeprefix(f"region {region}: ")
        word = "NOT DONE" if isinstance(error, StoppedError) else "FAILED"
        lines.append(f"{region}: {word}: {reason}")
    return lines


#: The operations not done that the summary of a stopped run names, at most.
MAX_NOT_DONE_LINES = 20


def stopped_lines(result: RunResult) -> list[str]:
    """What a stopped run did not do (nothing when it was not stopped).

    ``run stopped (SIGTERM received): 3 operation(s) not done in 1 region(s),
    1 region(s) not reached; ...`` and a line per operation not done
    (``REGION: not done: KIND NAME (stopped | not started)``), at most
    :data:`MAX_NOT_DONE_LINES`.
    """
    if result.stopped is None:
        return []
    reason = result.stopped.message.removeprefix("stopped: ")
    outcomes = [(region, o) for region, outcome in sorted(result.results.items())
                for o in outcome.outcomes if o.result in ("stopped", "not started")]
    reached = {region for region, _ in outcomes}
    missed = [r for r, e in sorted(result.failures.items()) if isinstance(e, StoppedError)]
    lines = [f"run stopped ({reason}): {len(outcomes)} operation(s) not done in"
             f" {len(reached)} region(s), {len(missed)} region(s) not reached; the images"
             " it had not finished were deleted (unless an error above says otherwise)"]
    for region, outcome in outcomes[:MAX_NOT_DONE_LINES]:
        lines.append(f"{region}: not done: {outcome.kind} {outcome.name} ({outcome.result})")
    if len(outcomes) > MAX_NOT_DONE_LINES:
        lines.append(f"... and {len(outcomes) - MAX_NOT_DONE_LINES} more operation(s) not"
                     " done (the run report and the log list them)")
    return lines


def _quiet_lines(result: RunResult) -> list[str]:
    """``--quiet``: what changed, what failed, what needs an operator; else nothing."""
    lines = []
    for region, outcome in sorted(result.results.items()):
        changed = any(o.result == "done" for o in outcome.outcomes)
        if changed or not outcome.success:
            lines.append(outcome.summary())
    lines += _failure_lines(result)
    for region, plan in sorted(result.plans.items()):
        for item in plan.needs_operator:
            lines.append(f"{region}: {item.name}: {item.status}: {item.reason}")
    if not lines:
        return []
    lines.append(result.totals())
    lines += stopped_lines(result)
    if result.log_folder:
        lines.append(f"logs: {result.log_folder}")
    return [printable(line) for line in lines]


#: The kinds of operation that remove something: data, an image, its
#: visibility in listings, its use (a dry run marks them ``!``).
DESTRUCTIVE = frozenset({OperationKind.REPLACE, OperationKind.DELETE, OperationKind.HIDE,
                         OperationKind.DEACTIVATE, OperationKind.CLEANUP})

#: How the planner words the time left of a copy in its grace period.
_GRACE_LEFT = re.compile(r" in (\d+(?:\.\d+)?) h \(removal_grace_hours\)")


def plan_lines(plans: dict[str, RegionPlan], now: float | None = None) -> list[str]:
    """One line per planned action of a dry run, in the order a sync takes them.

    ``REGION: KIND NAME (details): why``; a destructive step (a deletion,
    a replacement, hiding, deactivating, the clean-up of a leftover) is
    marked ``!`` in front. A copy whose removal waits for its grace period
    gets a line saying when it is due (``now``: the run's start, seconds
    since the epoch).
    """
    import datetime
    now = time.time() if now is None else now
    lines = []
    for region, plan in plans.items():
        for op in plan.operations:
            status = (plan.removal_status(op) if op.kind.removes
                      else _status_of(plan, op))
            why = op.reason or (f"{status.status}: {status.reason}" if status else "")
            mark = "!" if op.kind in DESTRUCTIVE else " "
            lines.append(f"{mark} {region}: {op.describe()}" + (f": {why}" if why else ""))
        for item in plan.statuses:
            if item.status is not Status.INFO_REMOVAL_GRACE:
                continue
            found = _GRACE_LEFT.search(item.reason)
            due = ""
            if found:
                moment = datetime.datetime.fromtimestamp(
                    now + float(found.group(1)) * 3600, datetime.timezone.utc)
                due = f" at about {moment:%Y-%m-%d %H:%M} UTC"
            lines.append(f"  {region}: later{due}: {item.name} ({item.regional_id}):"
                         f" {item.reason}")
    return [printable(line) for line in lines]


def _status_of(plan: RegionPlan, op: Operation) -> ImageStatus | None:
    """The status line an operation comes from: of its regional image, else of its name."""
    for item in plan.statuses:
        if op.regional is not None and item.regional_id == op.regional.id:
            return item
    return plan.status_of(op.name)


def status_table(status: StatusReport, stream: TextIO | None = None) -> str:
    """The status matrix of ``--show-status --format table`` for ``stream`` (stdout).

    Colours only on a terminal (and not with ``NO_COLOR``); as wide as the
    terminal (``$COLUMNS``, else 80 columns).
    """
    from glancesync.views import table
    stream = stream or sys.stdout
    color = stream.isatty()
    width = shutil.get_terminal_size((80, 24)).columns
    return table.render(status.plans, status.failures, estimates=status.estimates,
                        color=color, width=width)


class RunOutputs:
    """The files a run writes besides its console output.

    ``--report-json``, ``--report-html`` and ``metrics_file``: their
    folders are checked when this object is made (before the run), and the
    files written atomically by :meth:`write` at its end.

    :raises UsageError: the folder of one of the files does not exist.
    """

    def __init__(self, glancesync: GlanceSync, *, report_json: str | None = None,
                 report_html: str | None = None) -> None:
        self.glancesync = glancesync
        self.modes = output_modes(glancesync)
        metrics = glancesync.config.main.metrics_file
        self.files = {"run report": Path(report_json) if report_json else None,
                      "HTML report": Path(report_html) if report_html else None,
                      "metrics file": Path(metrics) if metrics else None}
        for what, path in self.files.items():
            if path is not None and not path.absolute().parent.is_dir():
                raise UsageError(f"cannot write the {what} {path}: its folder "
                                 f"{path.absolute().parent} does not exist")

    @contextlib.contextmanager
    def recording(self, mode: str, regions: Sequence[str],
                  images: Sequence[str] = ()) -> Iterator[None]:
        """Record in every output a run that fails as a whole inside the block.

        A run that cannot start (wrong password, unreachable Keystone,
        ``master_region`` misspelt, the master unreadable) writes the run
        report, the HTML report and the metrics all the same: each region it
        was to cover failed (``glancesync_last_run_success`` 0), with the
        error. ``mode``: ``status``, ``dry_run`` or ``sync``. The error is
        raised again.
        """
        started = time.time()
        try:
            yield
        except GlanceSyncError as error:
            result: RunResult | StatusReport = (
                StatusReport(started=started, images=tuple(images)) if mode == "status"
                else RunResult(dry_run=mode == "dry_run", started=started,
                               images=tuple(images)))
            result.finished = time.time()
            for label in self._labels(regions):
                result.failures[label] = error
            self.write(result, error.exit_status)
            raise

    def _labels(self, regions: Sequence[str]) -> list[str]:
        """The regions a run that failed before reading them is recorded under.

        The regions the earlier metrics file knows among those asked for
        (all of a target's for ``target:``); else ``target:`` itself, so
        that a region that does not exist never gets series of its own.
        """
        from glancesync.views import metrics
        path = self.files["metrics file"]
        known = metrics.known_regions(metrics.previous_samples(path)) if path else []
        labels: list[str] = []
        for region in regions or [f"{MASTER}:"]:
            try:
                target, name = parse_region(region)
            except UsageError:
                continue
            if name is None:
                found = [k for k in known if k.startswith(f"{target}:") and k != f"{target}:"]
            else:
                found = [f"{target}:{name}"] if f"{target}:{name}" in known else []
            labels.extend(found or [f"{target}:"])
        return list(dict.fromkeys(labels)) or [f"{MASTER}:"]

    def html(self, result: RunResult | StatusReport) -> str:
        """The HTML page of ``result``."""
        from glancesync.views import html
        return html.render(result, targets=sorted(self.glancesync.config.targets))

    def write(self, result: RunResult | StatusReport, status: int) -> int:
        """Write the files of ``result``; the exit status to return.

        A file that cannot be written is one error line; the run's own exit
        status is kept, or becomes 2 (usage) if the run itself went well.
        """
        from glancesync.views import metrics, runreport
        failed = False
        makers = {"run report": lambda: runreport.dumps(result),
                  "HTML report": lambda: self.html(result)}
        for what, path in self.files.items():
            if path is None:
                continue
            try:
                if what == "metrics file":
                    metrics.write(path, result, self.modes)
                    continue
                with atomic_file(path, prefix=f".{path.name}.", suffix=".tmp") as out:
                    self.modes.apply_fd(out.fileno())
                    out.write(REDACTOR.redact(makers[what]()).encode("utf-8"))
            except OSError as error:
                failed = True
                print(f"glancesync: error: cannot write the {what} {printable(str(path))}: "
                      f"{printable(error.strerror or str(error))}", file=sys.stderr)
        if failed and status == ExitStatus.OK:
            return int(ExitStatus.USAGE)
        return int(status)
