"""Change the metadata of one regional image."""
import sys

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    image = next(i for i in glancesync.get_images_region("RegionB")
                 if i["name"] == "ubuntu-22.04")
    print("before: nid =", image["nid"], "os_distro =", image.get("os_distro"),
          "min_ram =", image["min_ram"])

    # "id" names the image; set a property and min_ram, remove a property (None).
    updated = glancesync.update_metadata_image("RegionB", {
        "id": image["id"],
        "nid": "101",
        "os_distro": None,
        "min_ram": 512,
    })
    print("after: nid =", updated.properties["nid"], "os_distro =",
          updated.properties.get("os_distro"), "min_ram =", updated.min_ram)
