"""A JSON status report of every region: what a monitoring job reads.

Prints one JSON document: per region, each master image's status, its
category (ok, pending, needs_operator, info) and why; the regions that
could not be read; the exit status --show-status would give.
"""
import json
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream, progress=False) as glancesync:
    # Every region of every target, the master region left out.
    regions = [f"{target}:" for target in glancesync.config.targets]
    report = glancesync.status(regions)
    document = {
        "exit_status": int(report.exit_status),
        "regions": {
            region: [{"image": item.name,
                      "status": item.status.value,
                      "category": item.status.category.value,
                      "reason": item.reason}
                     for item in plan.statuses]
            for region, plan in sorted(report.plans.items())},
        "failures": {region: str(error) for region, error in sorted(report.failures.items())},
    }
    json.dump(document, sys.stdout, indent=2)
    print()
