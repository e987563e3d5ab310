"""Print the anomaly report of a region, to the terminal and into a string."""
import io
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    glancesync.print_images("RegionB")

    # The report can be captured: "file" is any text stream.
    buffer = io.StringIO()
    glancesync.print_images("RegionB", file=buffer)
    not_in_master = [line for line in buffer.getvalue().splitlines()
                     if line.lstrip().startswith("+")]
    print(f"{len(not_in_master)} image(s) of RegionB are not in the master region")
