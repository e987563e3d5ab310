"""Read a run report: the versioned JSON of ``glancesync-sync --report-json FILE``.

Here the report of a dry run limited to ubuntu images is made in place
(what ``--report-json`` writes); a real reader would open the file.
"""
import json
import sys

import jsonschema

from glancesync import GlanceSync
from glancesync.views.runreport import VERSION, dumps, schema

with GlanceSync(open(sys.argv[1])) as glancesync:
    result = glancesync.sync(dry_run=True, images=["ubuntu-*"])
report = json.loads(dumps(result))

jsonschema.validate(report, schema())
if report["version"] != VERSION:
    sys.exit(f"report version {report['version']}, this program reads {VERSION}")
print(f"{report['mode']} limited to {report['images']}: {report['summary']}")
for region in report["regions"]:
    if region["error"]:
        print(f"{region['region']}: failed: {region['error']}")
    for operation in region["operations"]:
        print(f"{region['region']}: {operation['kind']} {operation['name']}:"
              f" {operation['result']}, {operation['bytes']} bytes"
              + (f" ({operation['error']})" if operation["error"] else ""))
