"""Read the images of a region as dictionaries."""
import sys

from glancesync import GlanceSync
from glancesync.image import is_user_property

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    # Flat dicts, as Glance v2 shows images: core fields and user properties.
    for image in glancesync.get_images_region("RegionB"):
        properties = {k: v for k, v in image.items() if is_user_property(k)}
        print(f"{image['name']:<14} {image['id']} {image['checksum']} "
              f"{image['visibility']} {properties}")
