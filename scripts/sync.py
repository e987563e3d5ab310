#!/usr/bin/env python3
"""glancesync-sync: synchronise Glance regions with the master region."""
from __future__ import annotations

import argparse
import sys

from glancesync import cli
from glancesync.errors import ExitStatus
from glancesync.report import statuses_as_json
from glancesync.safenames import printable

PROG = "glancesync-sync"

#: Formats of --show-status.
FORMATS = ("csv", "json", "table", "html")


def build_parser():
    parser = cli.new_parser(PROG, "Synchronise the images of Glance regions with the "
                            "master region: upload what is missing, update metadata, "
                            "handle conflicts and obsolete images.")
    parser.add_argument("regions", nargs="*", metavar="REGION",
                        help="Region, target:Region, or target: for all the regions of "
                             "a target (default: every region of master:)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--dry-run", action="store_true",
                        help="show what a sync would do, one line per action (! marks "
                             "a destructive one); change nothing anywhere")
    action.add_argument("--show-status", action="store_true",
                        help="print status,region,image lines for every synchronised image")
    action.add_argument("--show-regions", action="store_true",
                        help="print the regions that would be synchronised")
    action.add_argument("--make-backup", action="store_true",
                        help="back up the regions' image metadata instead of syncing")
    parser.add_argument("--parallel", action="store_true",
                        help="synchronise up to max_children regions at once, "
                             "each region logging to its own file")
    parser.add_argument("--format", choices=FORMATS,
                        help="format of --show-status: csv lines status,region,image "
                             "(the default), a JSON list with ids and reasons, a table "
                             "(images x regions, one symbol per cell, with a legend) or "
                             "an HTML page")
    parser.add_argument("--output", choices=("csv", "json"), help=argparse.SUPPRESS)
    parser.add_argument("--image", action="append", default=[], metavar="PATTERN",
                        help="only the master images whose name matches this shell-style "
                             "pattern (*, ?, [seq]; case-sensitive); repeat for several. "
                             "Every other image is left alone and not reported")
    parser.add_argument("--report-json", metavar="FILE",
                        help="write what the run did to FILE: the versioned JSON run "
                             "report (per region: statuses, plan, operations and results)")
    cli.add_all_targets_option(parser)
    cli.add_wait_lock_option(parser)
    parser.add_argument("--report-html", metavar="FILE",
                        help="write the run's status matrix and summary to FILE, one "
                             "self-contained HTML page")
    cli.add_common_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    cli.check_regions(parser, args.regions)
    if args.output:  # the former name of --format, for csv and json
        if args.format and args.format != args.output:
            parser.error("--output and --format disagree: give --format only")
        args.format = args.output
    if args.format and not args.show_status:
        parser.error("--format goes with --show-status")
    if args.image and (args.show_regions or args.make_backup):
        parser.error("--image goes with --show-status, --dry-run or a sync")
    if (args.report_json or args.report_html) and (args.show_regions or args.make_backup):
        parser.error("--report-json and --report-html go with --show-status, --dry-run "
                     "or a sync")
    if any(not pattern for pattern in args.image):
        parser.error("--image needs a pattern (an empty one matches nothing)")
    return cli.run(PROG, args, lambda: _run(args), stoppable=True)


def _run(args) -> int:
    cli.setup_logging(args)
    progress = False if args.no_progress else None
    with cli.build_glancesync(args, progress=progress) as glancesync:
        regions = cli.scope_regions(glancesync, args)
        status = _act(args, glancesync, regions)
        note = cli.left_out_note(PROG, glancesync, args)
        if note:
            print(note, file=sys.stderr)
        return status


def _act(args, glancesync, regions: list[str]) -> int:
    if args.show_regions:
        for region in glancesync.resolve_regions(regions):
            print(printable(region))
        return ExitStatus.OK
    if args.make_backup:
        paths = glancesync.backup(regions)
        cli.share_outputs(glancesync, paths)
        for path in paths:
            print(path)
        return ExitStatus.OK
    outputs = cli.RunOutputs(glancesync, report_json=args.report_json,
                             report_html=args.report_html)
    mode = "status" if args.show_status else "dry_run" if args.dry_run else "sync"
    with outputs.recording(mode, regions, args.image):
        if args.show_status:
            result = glancesync.status(regions, images=args.image)
        else:
            result = glancesync.sync(regions, dry_run=args.dry_run,
                                     parallel=args.parallel, images=args.image)
        problem = (cli.unmatched_image_pattern(glancesync, result)
                   or cli.nothing_to_sync(glancesync, result, regions))
    if problem is not None:
        cli.record_problem(result, problem, regions)
    if getattr(result, "log_folder", None):
        cli.share_outputs(glancesync, [result.log_folder])
    if args.show_status:
        _print_status(args, outputs, result)
    else:
        if args.dry_run:
            for line in cli.plan_lines(result.plans, result.started):
                print(line)
        for line in cli.summary_lines(result, quiet=args.quiet):
            print(line)
    status = outputs.write(result, result.exit_status)
    mistakes = [problem] if problem is not None else [
        error for error in result.failures.values() if error.exit_status == ExitStatus.USAGE]
    if mistakes:  # a configuration mistake: one line on stderr, as for any other
        print(f"{PROG}: error: {printable(str(mistakes[0]))}", file=sys.stderr)
    return status


def _print_status(args, outputs, status) -> None:
    if args.format == "json":
        print(statuses_as_json(status.statuses))
    elif args.format == "table":
        print(cli.status_table(status), end="")
    elif args.format == "html":
        print(outputs.html(status), end="")
    else:
        for item in status.statuses:
            print(item.csv())


if __name__ == "__main__":
    sys.exit(main())
