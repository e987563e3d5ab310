"""Print the master images that are synchronised to the other regions."""
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    glancesync.print_images_master_region()
