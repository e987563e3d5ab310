"""Command line of the test bed: install, start, stop, status, env, rabbitmq, etcd."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shlex
import sys
import time
from pathlib import Path

from glancesync.testbed.bed import TestBed, TestBedError
from glancesync.testbed.switches import RegionSettings

OPTIONAL = ("rabbitmq", "etcd")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glancesync.testbed",
        description="Loopback OpenStack (2 Keystones, 4 Glance regions, RabbitMQ, etcd) "
                    "for GlanceSync. GLANCESYNC_TESTBED_HOME sets the home "
                    "(default ./.testbed).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="install keystone, glance, uWSGI into HOME/venv")
    for name, text in (("start", "boot the bed (installs first if needed)"),
                       ("stop", "stop every process of the bed"),
                       ("status", "say whether the bed runs, and its endpoints"),
                       ("env", "print the openrc of a cloud, or the bed's URLs"),
                       ("rabbitmq", "start or stop the bed's RabbitMQ alone"),
                       ("etcd", "start or stop the bed's etcd alone"),
                       ("rabbitmqctl", "run rabbitmqctl against the bed's RabbitMQ")):
        command = commands.add_parser(name, help=text)
        if name in OPTIONAL:
            command.add_argument("action", choices=("start", "stop"))
        if name == "rabbitmqctl":
            command.add_argument("arguments", nargs=argparse.REMAINDER,
                                 help="rabbitmqctl's command and options, e.g. list_queues "
                                      "(after --dir)")
        command.add_argument("--dir", type=Path, default=None,
                             help="run directory (default HOME/run)")
        if name == "start":
            command.add_argument("--without", action="append", choices=OPTIONAL, default=[],
                                 help="do not start this service (repeatable)")
            command.add_argument("--settings", type=Path, default=None,
                                 help="JSON file: region -> settings (glance_conf, policy, "
                                      "schema_image, second_endpoint)")
        if name == "env":
            command.add_argument("--cloud", default=None,
                                 help="e.g. master-admin, master-alice, other-bob; "
                                      "without it: the bed's variables")
    return parser


def _read_settings(path: Path | None) -> dict[str, RegionSettings]:
    """Region settings from a JSON file ({region: {glance_conf, policy, ...}})."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise TestBedError(f"cannot read the region settings {path}: {error}") from error
    known = {field.name for field in dataclasses.fields(RegionSettings)}
    if not isinstance(data, dict) or not all(isinstance(value, dict) for value in data.values()):
        raise TestBedError(f"{path}: expected an object of region -> settings")
    for region, value in data.items():
        unknown = sorted(set(value) - known)
        if unknown:
            raise TestBedError(f"{path}: {region}: unknown setting {', '.join(unknown)}; "
                               f"known: {', '.join(sorted(known))}")
    return {region: RegionSettings.from_json(value) for region, value in data.items()}


def _masked(url: str) -> str:
    """A transport URL without its password."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}://{credentials.partition(':')[0]}:***@{host}"


def bed_variables(bed: TestBed) -> dict[str, str]:
    """The variables a test or a user needs beside the clouds (``env`` prints them)."""
    info = bed.info
    return {
        "GLANCESYNC_TESTBED_DIR": str(info.run_dir),
        "OS_CLIENT_CONFIG_FILE": str(info.clouds_yaml),
        "GLANCESYNC_TESTBED_TRANSPORT_URL": info.transport_url or "",
        "GLANCESYNC_TESTBED_NOTIFICATION_EXCHANGE": info.notification_exchange,
        "GLANCESYNC_TESTBED_NOTIFICATION_TOPIC": info.notification_topic,
        "GLANCESYNC_TESTBED_COORDINATION_URL": info.coordination_url or "",
        "GLANCESYNC_TESTBED_ETCD_URL": info.etcd_url or "",
    }


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
    if info.transport_url:
        state = "running" if bed.rabbitmq_running() else "stopped"
        print(f"rabbitmq: {state}, {_masked(info.transport_url)} "
              f"(exchange {info.notification_exchange}, topic {info.notification_topic}, "
              f"from glance {info.notifying_region})")
    if info.coordination_url:
        state = "running" if bed.etcd_running() else "stopped"
        print(f"etcd: {state}, {info.coordination_url}")
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
            settings = _read_settings(args.settings)
            if bed.install():
                print(f"test bed installed in {bed.venv}")
            info = bed.start(detach=True, rabbitmq="rabbitmq" not in args.without,
                             etcd="etcd" not in args.without,
                             region_settings=settings)
            print(f"test bed started in {info.boot_seconds:.1f} s")
            return _status(bed)
        if args.command == "stop":
            bed.stop()
            print(f"test bed in {bed.run_dir} stopped")
            return 0
        if args.command == "status":
            return _status(bed)
        if args.command in OPTIONAL:
            if not bed.is_running():
                raise TestBedError(f"no running test bed in {bed.run_dir}")
            bed = TestBed.load(bed.run_dir)  # detached: the service outlives this command
            began = time.monotonic()
            getattr(bed, f"{args.action}_{args.command}")()
            print(f"{args.command} of {bed.run_dir}: {args.action} done in "
                  f"{time.monotonic() - began:.1f} s")
            return 0
        if args.command == "rabbitmqctl":
            if not args.arguments:
                raise TestBedError("rabbitmqctl needs a command, e.g. list_queues")
            print(TestBed.load(bed.run_dir).rabbitmqctl(*args.arguments), end="")
            return 0
        if args.cloud is None:
            if not bed.is_running():
                raise TestBedError(f"no running test bed in {bed.run_dir}")
            for key, value in bed_variables(bed).items():
                print(f"export {key}={shlex.quote(value)}")
            return 0
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
