"""Dry run, then synchronise one region."""
import sys

from glancesync import GlanceSync, GlanceSyncError

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    preview = glancesync.sync_region("RegionC", dry_run=True)
    print("dry run:", preview.summary())

    try:
        result = glancesync.sync_region("RegionC")
    except GlanceSyncError as error:  # the region could not be synchronised at all
        sys.exit(f"RegionC failed: {error}")
    print("sync:", result.summary())
    for name, reason in result.failed.items():
        print(f"  {name} failed: {reason}")
    print("in sync now:", glancesync.plan_region("RegionC").in_sync)
