"""Synchronise every region of the master target, in parallel, like glancesync-sync."""
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream, progress=False) as glancesync:
    result = glancesync.sync(parallel=True)  # () = every region of master:
    for region, outcome in sorted(result.results.items()):
        print(f"{region}: {outcome.uploaded} uploaded, {outcome.updated} updated,"
              f" {outcome.errors} error(s)")
    for region, error in result.failures.items():
        print(f"{region}: FAILED: {error}")
    print(f"bytes read from master: {result.bytes_downloaded}")
    print(f"per-region logs: {result.log_folder}")
    print(f"lock of RegionA while it syncs: {glancesync.lock_name('RegionA')}")
    print(f"exit status: {int(result.exit_status)} ({result.exit_status.name})")
