#!/usr/bin/env python3
"""glancesync-sync: synchronise Glance regions with the master region."""
from __future__ import annotations

import sys

from glancesync import cli
from glancesync.errors import ExitStatus
from glancesync.report import statuses_as_json
from glancesync.safenames import printable

PROG = "glancesync-sync"


def build_parser():
    parser = cli.new_parser(PROG, "Synchronise the images of Glance regions with the "
                            "master region: upload what is missing, update metadata, "
                            "handle conflicts and obsolete images.")
    parser.add_argument("regions", nargs="*", metavar="REGION",
                        help="Region, target:Region, or target: for all the regions of "
                             "a target (default: every region of master:)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--dry-run", action="store_true",
                        help="show what a sync would do; change nothing anywhere")
    action.add_argument("--show-status", action="store_true",
                        help="print status,region,image lines for every synchronised image")
    action.add_argument("--show-regions", action="store_true",
                        help="print the regions that would be synchronised")
    action.add_argument("--make-backup", action="store_true",
                        help="back up the regions' image metadata instead of syncing")
    parser.add_argument("--parallel", action="store_true",
                        help="synchronise up to max_children regions at once, "
                             "each region logging to its own file")
    parser.add_argument("--output", choices=("csv", "json"),
                        help="format of --show-status: csv lines status,region,image "
                             "(the default) or a JSON list with ids and reasons")
    cli.add_common_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    cli.check_regions(parser, args.regions)
    if args.output and not args.show_status:
        parser.error("--output goes with --show-status")
    return cli.run(PROG, args, lambda: _run(args))


def _run(args) -> int:
    cli.setup_logging(args)
    progress = False if args.no_progress else None
    with cli.build_glancesync(args, progress=progress) as glancesync:
        if args.show_regions:
            for region in glancesync.resolve_regions(args.regions):
                print(printable(region))
            return ExitStatus.OK
        if args.make_backup:
            for path in glancesync.backup(args.regions):
                print(path)
            return ExitStatus.OK
        if args.show_status:
            status = glancesync.status(args.regions)
            if args.output == "json":
                print(statuses_as_json(status.statuses))
            else:
                for item in status.statuses:
                    print(item.csv())
            return status.exit_status
        result = glancesync.sync(args.regions, dry_run=args.dry_run, parallel=args.parallel)
        for line in cli.summary_lines(result):
            print(line)
        return result.exit_status


if __name__ == "__main__":
    sys.exit(main())
