"""A custom selection rule written in Python: only the CirrOS images, in every region.

metadata_condition is usually an expression of the configuration file;
a program may put any function of (image, metadata_set) -> bool in its
place, in each target of the loaded configuration.
"""
import dataclasses
import sys

from glancesync import GlanceSync, Image
from glancesync.config import load_config


def cirros_only(image: Image, metadata_set: frozenset[str]) -> bool:
    """The rule: public images whose name starts with cirros- (kernel and ramdisk too)."""
    return image.is_public and (image.name or "").startswith("cirros-")


with open(sys.argv[1], encoding="utf-8") as stream:
    config = load_config(stream)
for name, target in config.targets.items():
    config.targets[name] = dataclasses.replace(target, metadata_condition=cirros_only)

with GlanceSync(config, progress=False) as glancesync:
    result = glancesync.sync()
    for region, outcome in sorted(result.results.items()):
        print(f"{region}: {outcome.uploaded} uploaded")
    for region in glancesync.get_regions():
        names = sorted(image["name"] for image in glancesync.get_images_region(region))
        print(f"{region}: {', '.join(names)}")
    print(f"exit status: {int(result.exit_status)}")
