"""Errors: every failure is a GlanceSyncError carrying its exit status."""
import io
import sys

from glancesync import ExitStatus, GlanceSync, GlanceSyncError
from glancesync.errors import ConfigError, RegionNotFoundError

with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream) as glancesync:
    try:
        glancesync.get_images_region("Atlantis")
    except RegionNotFoundError as error:
        print("unknown region:", error)
        print("exit status:", error.exit_status, ExitStatus(error.exit_status).name)

try:
    GlanceSync(io.StringIO("[main]\nmaster_region = Master\nmax_children = many\n"
                           "[master]\ntype = local\npath = /nonexistent\n"))
except ConfigError as error:
    print("configuration error:", error)
    print("section:", error.section, "option:", error.option)
except GlanceSyncError as error:  # the root of every error of the library
    print("other error:", error)
