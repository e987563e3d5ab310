"""Structured status: what --show-status prints, as objects."""
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    # One region: a list of ImageStatus.
    for item in glancesync.get_status("RegionC"):
        print(f"{item.status.value:<18} {item.name:<16} {item.reason}")

    # Several regions at once; failures are collected, not raised.
    report = glancesync.status(["master:"])
    pending = [s for s in report.statuses if s.status.is_pending]
    print(f"{len(pending)} image(s) pending in {len(report.plans)} region(s);"
          f" exit status would be {int(report.exit_status)}")

    # The plan behind the status: the operations a sync would run.
    plan = glancesync.plan_region("RegionC")
    for operation in plan.operations:
        print("would", operation.describe())
