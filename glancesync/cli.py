"""What the command-line scripts share: options, logging, error handling.

The scripts in ``scripts/`` parse their own arguments and call one method of
:class:`~glancesync.GlanceSync`; this module gives them the common options,
the logging set-up (quiet under cron, secrets redacted) and the mapping of
errors to the documented exit statuses.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import traceback
from typing import Callable, Iterable, TextIO

from glancesync.errors import ConfigError, ExitStatus, GlanceSyncError, UsageError

EXIT_STATUS_HELP = """exit statuses:
  0  done, or everything already in sync
  1  at least one region failed (its error is printed)
  2  usage or configuration error
  3  work is pending (--show-status, --dry-run)
  4  images need an operator (error_checksum, error_ami)
  5  another glancesync run holds the lock of a region
"""

CONFIG_HELP = ("configuration: the file named by --config-file, else "
               "$GLANCESYNC_CONFIG, else /etc/glancesync.conf, else the OS_* "
               "environment variables (master target only)")

_SECRET_PATTERNS = [
    re.compile(r"(?i)(x-auth-token|x-subject-token|x-service-token)(['\"]?\s*[:=]\s*['\"]?)([^'\"\s,}]+)"),
    re.compile(r"(?i)(\"?(?:password|secret|token|credential)\"?\s*[:=]\s*\"?)([^\"\s,}]+)"),
]


class RedactingFilter(logging.Filter):
    """Masks tokens, passwords and the configured secrets in log records."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def add_secrets(self, secrets: Iterable[str]) -> None:
        self.secrets.extend(s for s in secrets if s and len(s) >= 4)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        text = _SECRET_PATTERNS[0].sub(lambda m: m.group(1) + m.group(2) + "***", text)
        text = _SECRET_PATTERNS[1].sub(lambda m: m.group(1) + "***", text)
        return text


#: The filter installed by :func:`setup_logging`; the facade feeds it the
#: configuration's secrets.
REDACTOR = RedactingFilter()


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options every script takes."""
    group = parser.add_argument_group("configuration and output")
    group.add_argument("--config-file", metavar="PATH",
                       help="configuration file (default: $GLANCESYNC_CONFIG, "
                            "then /etc/glancesync.conf)")
    group.add_argument("--config", metavar="[SECTION.]KEY=VALUE", action="append",
                       default=[], help="override one configuration option; "
                       "repeat for several (KEY=VALUE alone sets [DEFAULT])")
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


def new_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A parser with the common options and the exit statuses in ``--help``."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description,
        epilog=CONFIG_HELP + "\n\n" + EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def setup_logging(args: argparse.Namespace, stream: TextIO | None = None) -> None:
    """Console logging: INFO on a terminal, WARNING under cron or --quiet."""
    stream = stream or sys.stderr
    if args.debug:
        level = logging.DEBUG
    elif args.verbose:
        level = logging.INFO
    elif args.quiet or not stream.isatty():
        level = logging.WARNING
    else:
        level = logging.INFO
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(stream)
    console.setLevel(level)
    console.setFormatter(logging.Formatter(
        "%(levelname)s %(name)s: %(message)s" if args.debug else "%(message)s"))
    console.addFilter(REDACTOR)
    root.addHandler(console)
    lowest = level
    if args.log_file:
        try:
            handler = logging.FileHandler(args.log_file, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write the log file {args.log_file}: "
                             f"{error.strerror}") from error
        file_level = logging.DEBUG if args.debug else logging.INFO
        handler.setLevel(file_level)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(REDACTOR)
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


def config_stream(args: argparse.Namespace) -> TextIO | None:
    """The configuration file named on the command line, opened, or None."""
    if not args.config_file:
        return None
    try:
        return open(args.config_file, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the configuration file: {error.strerror or error}",
                          path=args.config_file) from error


def run(prog: str, args: argparse.Namespace, body: Callable[[], int]) -> int:
    """Run a script's body; map errors to one line and an exit status."""
    try:
        return int(body())
    except GlanceSyncError as error:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"{prog}: error: {error}", file=sys.stderr)
        return int(error.exit_status)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into a command that stopped reading (e.g. head).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitStatus.OK)


def summary_lines(result) -> list[str]:
    """The per-region summary of a sync run, always printed by the scripts."""
    lines = []
    for region, outcome in sorted(result.results.items()):
        lines.append(outcome.summary())
    for region, error in sorted(result.failures.items()):
        lines.append(f"{region}: FAILED: {error}")
    if result.log_folder:
        lines.append(f"logs: {result.log_folder}")
    return lines
