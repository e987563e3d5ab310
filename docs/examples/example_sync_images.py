"""Synchronise master images named by id, as a program reacting to the master's events would.

Usage: example_sync_images.py CONFIG [IMAGE]   (IMAGE: ubuntu-22.04 by default)
The id is looked up by name here; an event of the master region carries it.
Only that image moves (and the kernel and ramdisk its upload needs); a
deleted image's copies would go through the lifecycle. Then a maintenance
window: while a program holds the lock of RegionA, no run changes it.
"""
import sys

from glancesync import GlanceSync, lock

name = sys.argv[2] if len(sys.argv) > 2 else "ubuntu-22.04"
with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream, progress=False) as glancesync:
    master = glancesync.get_images_region(glancesync.master_region)
    image_id = next(image["id"] for image in master if image["name"] == name)
    result = glancesync.sync_images([image_id])  # () = every region of master:
    for region, outcome in sorted(result.results.items()):
        done = ", ".join(f"{o.kind} {o.name}" for o in outcome.outcomes) or "nothing to do"
        print(f"{region}: {done}")
    with lock.hold(glancesync.region_lock("RegionA")):
        held = glancesync.sync_images([image_id], ["RegionA"])
        print(f"while the lock is held: {held.failures['master:RegionA']}")
    sys.exit(int(result.exit_status))
