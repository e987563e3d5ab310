"""Create a GlanceSync object from a configuration file, with overrides."""
import sys

from glancesync import GlanceSync

config_path = sys.argv[1]

# A stream with the configuration; "overrides" work like --config.
with open(config_path, encoding="utf-8") as stream:
    glancesync = GlanceSync(stream, overrides=["main.max_children=2"])
try:
    print("master region:", glancesync.master_region)
    print("targets:", ", ".join(sorted(glancesync.config.targets)))
    print("max_children:", glancesync.config.main.max_children)
finally:
    glancesync.close()  # closes the sessions and files it opened

# Or let a with block close it.
with open(config_path, encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    print("default max_children:", glancesync.config.main.max_children)
