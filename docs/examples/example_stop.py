"""Stop a sync from another thread, as a service does when it shuts down."""
import logging
import sys
import threading

from glancesync import GlanceSync


class ShutdownAtFirstUpload(logging.Handler):
    """Stands for the service's shutdown: asks the run to stop once data moves."""

    def __init__(self, glancesync: GlanceSync) -> None:
        super().__init__()
        self.glancesync = glancesync

    def emit(self, record: logging.LogRecord) -> None:
        if " uploading image " in record.getMessage() and not self.glancesync.stop_request.is_set():
            shutdown = threading.Thread(target=self.glancesync.stop, args=("shutting down",))
            shutdown.start()
            shutdown.join()


logging.getLogger("glancesync.executor").setLevel(logging.INFO)
with open(sys.argv[1], encoding="utf-8") as stream, GlanceSync(stream, progress=False) as glancesync:
    logging.getLogger("glancesync.executor").addHandler(ShutdownAtFirstUpload(glancesync))
    result = glancesync.sync()  # returns soon after the stop, with what it did
    print(f"stopped: {result.stopped}")
    for region, outcome in sorted(result.results.items()):
        print(f"{region}: {outcome.uploaded} uploaded, {outcome.not_done} operation(s) not done")
    for region, error in sorted(result.failures.items()):
        print(f"{region}: {error.message}")
    print(f"exit status: {int(result.exit_status)} ({result.exit_status.name})")
    left = [image["name"] for region in glancesync.get_regions()
            for image in glancesync.get_images_region(region) if image["status"] != "active"]
    print(f"images left unfinished: {left}")
