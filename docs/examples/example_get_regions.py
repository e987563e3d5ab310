"""List the regions of a target, and resolve region arguments."""
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    # Regions of the master target, master region excluded.
    print("regions:", glancesync.get_regions())
    # The master region included.
    print("with master:", glancesync.get_regions(omit_master_region=False))
    # Region arguments as the commands take them, fully qualified.
    print("resolved:", glancesync.resolve_regions(["master:"]))
    # The same as RegionRef objects, to pass on to the other methods: a
    # region name ending in a blank keeps it.
    for ref in glancesync.region_refs(["master:"]):
        print("ref:", ref.target, repr(ref.name))
