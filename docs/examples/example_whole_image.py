"""The whole image: tags, hidden images, a deactivated copy."""
import sys

from glancesync import GlanceSync

config = sys.argv[1]
with open(config, encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    master = glancesync.adapter("Master")
    ubuntu = next(i for i in master.list_images() if i.name == "ubuntu-22.04")
    # Tags and os_hidden are metadata like the others: set on the master...
    glancesync.update_metadata_image("Master", {"id": ubuntu.id, "tags": ["lts"],
                                                "os_hidden": True})
    glancesync.sync_region("RegionA")
    # ...they are on the copy.
    region = glancesync.adapter("RegionA")
    copy = next(i for i in region.list_images() if i.name == "ubuntu-22.04")
    print(f"copy {copy.id}: tags {copy.tags}, hidden {copy.os_hidden}")

    # An operator deactivates the copy: still the copy, never uploaded again.
    region.deactivate_image(copy.id)
    status = {s.name: s for s in glancesync.get_status("RegionA")}["ubuntu-22.04"]
    print(f"{status.status.value} ({status.status.category}): {status.reason}")

# deactivated_copies decides for every copy: report (the default), reactivate, keep.
with open(config, encoding="utf-8") as stream, \
        GlanceSync(stream, overrides=["deactivated_copies=reactivate"]) as glancesync:
    result = glancesync.sync_region("RegionA")
    print(f"after the sync: {glancesync.adapter('RegionA').get_image(copy.id).status},"
          f" {result.uploaded} uploaded")
