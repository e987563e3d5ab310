#!/usr/bin/env python3
"""glancesync-printimages: report the images of regions, marking anomalies."""
from __future__ import annotations

import sys

from glancesync import cli
from glancesync.errors import ExitStatus
from glancesync.report import legend

PROG = "glancesync-printimages"


def build_parser():
    parser = cli.new_parser(PROG, exit_statuses=cli.PRINTIMAGES_EXIT_STATUS_HELP,
                            description="Report the images of regions, marking anomalies.\n\n"
                            "Markers:\n" + legend())
    parser.add_argument("regions", nargs="*", metavar="REGION",
                        help="Region, target:Region or target: (default: every "
                             "region of master:); 'master' prints the images of the "
                             "master region that are synchronised")
    cli.add_common_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    cli.check_regions(parser, args.regions)
    return cli.run(PROG, args, lambda: _run(args))


def _run(args) -> int:
    cli.setup_logging(args)
    with cli.build_glancesync(args, progress=False) as glancesync:
        regions = [region for region in args.regions if region != "master"]
        with_master = len(regions) < len(args.regions)
        # RegionRef, not strings: a region name ending in a blank keeps it.
        resolved = glancesync.region_refs(regions) if regions or not with_master else []
        if with_master:
            glancesync.print_images_master_region()
        if resolved:
            print("Markers:\n" + legend())
        for region in resolved:
            glancesync.print_images(region)
        return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
