#!/usr/bin/env python3
"""glancesync-watch: synchronise images seconds after the master Glance announces them."""
from __future__ import annotations

import logging
import signal
import sys
import threading

from glancesync import cli
from glancesync.errors import ExitStatus

PROG = "glancesync-watch"

WATCH_EXIT_STATUS_HELP = """exit statuses:
  0  stopped by SIGTERM or SIGINT (the sync in progress stopped: transfers
     aborted, the images it did not finish deleted, locks released)
  2  usage or configuration error (no notifications_url, watch_listen not a
     free loopback HOST:PORT, an unknown region...)
"""


def build_parser():
    parser = cli.new_parser(PROG, "Listen to the master Glance's notifications and "
                            "synchronise each image announced to the regions within "
                            "seconds; reconcile every region at start and every "
                            "reconcile_interval seconds. Runs until SIGTERM or SIGINT.",
                            WATCH_EXIT_STATUS_HELP)
    parser.add_argument("regions", nargs="*", metavar="REGION",
                        help="Region, target:Region, or target: for all the regions of "
                             "a target (default: every region of master:)")
    cli.add_all_targets_option(parser)
    cli.add_common_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    cli.check_regions(parser, args.regions)
    return cli.run(PROG, args, lambda: _run(args))


def _run(args) -> int:
    cli.setup_logging(args)
    if not args.debug:  # the watcher reports the bus's state itself, once per change
        logging.getLogger("oslo.messaging").setLevel(logging.CRITICAL)
        logging.getLogger("oslo_messaging").setLevel(logging.CRITICAL)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if not stop.is_set():
            print(f"{PROG}: {signal.Signals(signum).name}: stopping (the sync in progress"
                  " stopped, the images it did not finish deleted)", file=sys.stderr)
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def started(watcher) -> None:
        if watcher.address:
            host, port = watcher.address
            print(f"{PROG}: health and metrics on http://{host}:{port}/", file=sys.stderr,
                  flush=True)

    with cli.build_glancesync(args) as glancesync:
        regions = cli.scope_regions(glancesync, args)
        glancesync.watch(regions, stop=stop, started=started)
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
