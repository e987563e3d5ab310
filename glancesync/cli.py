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
import logging
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import BinaryIO, Callable, NoReturn, Sequence, TextIO

from glancesync import redaction
from glancesync.config import ALWAYS_SHOWN, open_config_file
from glancesync.errors import ExitStatus, GlanceSyncError, UsageError
from glancesync.facade import GlanceSync, RunResult, StatusReport
from glancesync.integrity import atomic_file
from glancesync.redaction import REDACTOR
from glancesync.runlog import LOG_FORMAT, LogFormatter, SafeFileHandler, SafeStreamHandler
from glancesync.safenames import printable

EXIT_STATUS_HELP = """exit statuses:
  0  done, or everything already in sync
  1  at least one region failed (its error is printed)
  2  usage or configuration error
  3  work is pending (--show-status, --dry-run)
  4  images need an operator (the error_* statuses)
  5  another glancesync run holds the lock of a region
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


def new_parser(prog: str, description: str) -> ArgumentParser:
    """A parser with the common options and the exit statuses in ``--help``."""
    return ArgumentParser(
        prog=prog, description=description,
        epilog=CONFIG_HELP + "\n\n" + EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)


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
        return GlanceSync(stream, overrides=args.config, progress=progress)
    finally:
        if stream is not None:
            stream.close()


def run(prog: str, args: argparse.Namespace, body: Callable[[], int]) -> int:
    """Run a script's body; map errors to one line and an exit status.

    Everything the script prints goes through the one redaction
    (:func:`glancesync.redaction.install_streams`).
    """
    redaction.install_streams()
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


def summary_lines(result: RunResult) -> list[str]:
    """The summary of a sync run, always printed by the scripts.

    One line per region (its counters, or why it failed) and a total.
    """
    lines = [outcome.summary() for _, outcome in sorted(result.results.items())]
    for region, error in sorted(result.failures.items()):
        reason = str(error).removeprefix(f"region {region}: ")
        lines.append(f"{region}: FAILED: {reason}")
    for region, estimate in sorted(result.estimates.items()):
        if estimate.bytes:
            lines.append(f"{region}: {estimate.describe()}")
    total = result.totals()
    if not result.dry_run:
        total += f", {result.bytes_downloaded / 2 ** 20:.1f} MiB downloaded from the master"
    lines.append(total)
    if result.log_folder:
        lines.append(f"logs: {result.log_folder}")
    # Region names and errors quote what the regions answered.
    return [printable(line) for line in lines]


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
        metrics = glancesync.config.main.metrics_file
        self.files = {"run report": Path(report_json) if report_json else None,
                      "HTML report": Path(report_html) if report_html else None,
                      "metrics file": Path(metrics) if metrics else None}
        for what, path in self.files.items():
            if path is not None and not path.absolute().parent.is_dir():
                raise UsageError(f"cannot write the {what} {path}: its folder "
                                 f"{path.absolute().parent} does not exist")

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
                    metrics.write(path, result)
                    continue
                with atomic_file(path, prefix=f".{path.name}.", suffix=".tmp") as out:
                    out.write(REDACTOR.redact(makers[what]()).encode("utf-8"))
            except OSError as error:
                failed = True
                print(f"glancesync: error: cannot write the {what} {printable(str(path))}: "
                      f"{printable(error.strerror or str(error))}", file=sys.stderr)
        if failed and status == ExitStatus.OK:
            return int(ExitStatus.USAGE)
        return int(status)
