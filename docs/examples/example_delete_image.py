"""Delete an image from a region, without the interactive confirmation."""
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    images = {i["name"]: i["id"] for i in glancesync.get_images_region("RegionB")}
    uuid = images["centos-7"]
    # confirm=True (the default) asks on the terminal; scripts pass False.
    deleted = glancesync.delete_image("RegionB", uuid, confirm=False)
    print(f"deleted centos-7 ({uuid}):", deleted)
    remaining = [i["name"] for i in glancesync.get_images_region("RegionB")]
    print("remaining in RegionB:", remaining)
