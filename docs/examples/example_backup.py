"""Back up the metadata of one region, then of several regions at once."""
import json
import sys
import tempfile

from glancesync import GlanceSync

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync, \
        tempfile.TemporaryDirectory() as folder:
    # One region: returns the file written under backup_glance_<timestamp>/.
    path = glancesync.backup_glancemetadata_region("RegionB", path=folder)
    with open(path, encoding="utf-8") as saved:
        records = [json.loads(line) for line in saved]
    print(f"{path.name}: {len(records)} image(s):",
          ", ".join(record["name"] for record in records))

    # Every region of master:, in one backup folder.
    for written in glancesync.backup(["master:"], path=folder):
        print("written:", written.name)
