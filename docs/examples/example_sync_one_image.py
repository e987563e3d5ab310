"""Synchronise one named image to every region of every target, now.

Usage: example_sync_one_image.py CONFIG [IMAGE]   (IMAGE: ubuntu-22.04 by default)
For this run only, every target selects that image and nothing else; the
other images are left as they are.
"""
import dataclasses
import sys

from glancesync import GlanceSync
from glancesync.config import load_config

name = sys.argv[2] if len(sys.argv) > 2 else "ubuntu-22.04"
with open(sys.argv[1], encoding="utf-8") as stream:
    config = load_config(stream)
for target_name, target in config.targets.items():
    # Nothing else moves in this run: no NAME_obsolete marking, and no removal
    # of the copies the narrowed selection leaves out (removal_policy).
    config.targets[target_name] = dataclasses.replace(
        target, metadata_condition=lambda image, metadata_set: image.name == name,
        support_obsolete_images=False, removal_policy="keep", keep_old_copies=None)

with GlanceSync(config, progress=False) as glancesync:
    result = glancesync.sync([f"{target}:" for target in config.targets])
    for region, outcome in sorted(result.results.items()):
        status = glancesync.plan_region(region).status_of(name)
        print(f"{region}: {outcome.uploaded} uploaded, {outcome.updated} updated;"
              f" {name} is {status.status.value if status else 'not selected'}")
    for region, error in sorted(result.failures.items()):
        print(f"{region}: FAILED: {error}")
    sys.exit(int(result.exit_status))
