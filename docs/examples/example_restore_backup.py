"""Save a region's metadata, change it, then restore it from the backup."""
import sys
import tempfile

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync, \
        tempfile.TemporaryDirectory() as folder:
    saved = glancesync.backup_glancemetadata_region("RegionB", path=folder)
    image = next(i for i in glancesync.get_images_region("RegionB")
                 if i["name"] == "ubuntu-22.04")
    glancesync.update_metadata_image("RegionB", {"id": image["id"], "type": "changed"})

    # Metadata only, never data; a dry run first.
    would = glancesync.restore_backup("RegionB", saved, dry_run=True)
    print(f"dry run: {len(would)} image(s) would be restored")
    changed = glancesync.restore_backup("RegionB", saved)
    print(f"restored {len(changed)} image(s): {changed}")
    again = next(i for i in glancesync.get_images_region("RegionB") if i["id"] == image["id"])
    print("type is back to:", again.get("type"))
