"""Lower level: the target, the region adapter and the master data source."""
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream, progress=False) as glancesync:
    target = glancesync.target("master")
    print("regions of target master:", target.region_names())

    # The adapter is the one interface to a region (Glance or a local folder).
    master = glancesync.adapter(glancesync.master_region)
    images = master.list_images()
    print(f"{master.name}: {len(images)} image(s), project {master.project_id}")

    # The master data source: read once per run, verified, cached.
    smallest = min((i for i in images if i.status == "active"), key=lambda i: i.size)
    source = glancesync.source()
    size = sum(len(chunk) for chunk in source.chunks(smallest))
    print(f"read {smallest.name}: {size} bytes, verified against {smallest.checksum};"
          f" downloads so far: {source.downloads}")
