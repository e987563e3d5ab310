"""Synchronise one named image to every region of every target, now.

Usage: example_sync_one_image.py CONFIG [IMAGE]   (IMAGE: ubuntu-22.04 by default)
``images`` limits the run to the master images of that name (shell-style
patterns; the kernel and ramdisk an upload needs come too): every other
image is left as it is, as with ``glancesync-sync --image``.
"""
import sys

from glancesync import GlanceSync

name = sys.argv[2] if len(sys.argv) > 2 else "ubuntu-22.04"
with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream, progress=False) as glancesync:
    every_region = [f"{target}:" for target in glancesync.config.targets]
    result = glancesync.sync(every_region, images=[name])
    for region, outcome in sorted(result.results.items()):
        status = glancesync.plan_region(region).status_of(name)
        print(f"{region}: {outcome.uploaded} uploaded, {outcome.updated} updated;"
              f" {name} is {status.status.value if status else 'not selected'}")
    for region, error in sorted(result.failures.items()):
        print(f"{region}: FAILED: {error}")
    sys.exit(int(result.exit_status))
