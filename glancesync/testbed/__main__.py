"""Command line of the test bed: install, start, stop, status, env."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from glancesync.testbed.bed import TestBed, TestBedError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glancesync.testbed",
        description="Loopback OpenStack (2 Keystones, 4 Glance regions) for GlanceSync. "
                    "GLANCESYNC_TESTBED_HOME sets the home (default ./.testbed).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="install keystone, glance, uWSGI into HOME/venv")
    for name, text in (("start", "boot the bed (installs first if needed)"),
                       ("stop", "stop every process of the bed"),
                       ("status", "say whether the bed runs, and its endpoints"),
                       ("env", "print the openrc of a cloud")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--dir", type=Path, default=None,
                             help="run directory (default HOME/run)")
        if name == "env":
            command.add_argument("--cloud", required=True,
                                 help="e.g. master-admin, master-alice, other-bob")
    return parser


def _status(bed: TestBed) -> int:
    if not bed.is_running():
        print(f"test bed in {bed.run_dir}: not running")
        return 1
    info = bed.info
    print(f"test bed in {info.run_dir}: running")
    print(f"clouds.yaml: {info.clouds_yaml}")
    for name, url in info.keystone_urls.items():
        print(f"keystone {name}: {url}")
        for region in info.regions[name]:
            print(f"  glance {region}: {info.glance_urls[region]}")
    print(f"clouds: {', '.join(info.clouds)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit status 0 on success."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    bed = TestBed(getattr(args, "dir", None))
    try:
        if args.command == "install":
            began = time.monotonic()
            done = bed.install()
            state = "installed" if done else "already installed"
            print(f"test bed {state} in {bed.venv} ({time.monotonic() - began:.1f} s)")
            return 0
        if args.command == "start":
            if bed.install():
                print(f"test bed installed in {bed.venv}")
            info = bed.start(detach=True)
            print(f"test bed started in {info.boot_seconds:.1f} s")
            return _status(bed)
        if args.command == "stop":
            bed.stop()
            print(f"test bed in {bed.run_dir} stopped")
            return 0
        if args.command == "status":
            return _status(bed)
        path = bed.run_dir / f"openrc-{args.cloud}"
        if not bed.is_running() or not path.exists():
            bed.info.project_id(args.cloud)  # raises with the known clouds
        print(path.read_text(), end="")
        return 0
    except TestBedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
