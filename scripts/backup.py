#!/usr/bin/env python3
"""glancesync-backup: save (or restore) the image metadata of regions."""
from __future__ import annotations

import sys

from glancesync import cli
from glancesync.errors import ExitStatus

PROG = "glancesync-backup"


def build_parser():
    parser = cli.new_parser(
        PROG, exit_statuses=cli.BACKUP_EXIT_STATUS_HELP, description="Save the image metadata of regions, one file per region under "
        "backup_glance_<timestamp>/; or re-apply a saved file's metadata (never "
        "data) to a region with --restore.")
    parser.add_argument("regions", nargs="*", metavar="REGION",
                        help="Region, target:Region or target: (default: every "
                             "region of master:)")
    parser.add_argument("--path", metavar="DIR",
                        help="where to create the backup folder (default: here)")
    parser.add_argument("--restore", metavar="FILE",
                        help="re-apply the metadata saved in FILE to the one REGION given")
    parser.add_argument("--dry-run", action="store_true",
                        help="with --restore: show the changes, make none")
    parser.add_argument("--force", action="store_true",
                        help="with --restore: apply a backup recorded for another region "
                             "(its kernel_id and ramdisk_id are not restored)")
    cli.add_all_targets_option(parser)
    cli.add_common_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    cli.check_regions(parser, args.regions)
    if args.restore and len(args.regions) != 1:
        parser.error("--restore needs exactly one REGION")
    if args.dry_run and not args.restore:
        parser.error("--dry-run goes with --restore")
    if args.force and not args.restore:
        parser.error("--force goes with --restore")
    if args.all_targets and args.restore:
        parser.error("--all-targets goes with a backup, not with --restore")
    return cli.run(PROG, args, lambda: _run(args), stoppable=True)


def _run(args) -> int:
    cli.setup_logging(args)
    with cli.build_glancesync(args, progress=False) as glancesync:
        if args.restore:
            changed = glancesync.restore_backup(args.regions[0], args.restore,
                                                dry_run=args.dry_run, force=args.force)
            print(f"{len(changed)} image(s) {'would be ' if args.dry_run else ''}updated")
            return ExitStatus.PENDING if args.dry_run and changed else ExitStatus.OK
        paths = glancesync.backup(cli.scope_regions(glancesync, args), args.path)
        cli.share_outputs(glancesync, paths)
        if not args.quiet:  # under cron --quiet: no mail for a backup that went well
            for path in paths:
                print(path)
        note = cli.left_out_note(PROG, glancesync, args)
        if note:
            print(note, file=sys.stderr)
        return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
