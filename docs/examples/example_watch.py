"""Keep the regions in sync from the master's notifications, and stop from another thread.

Usage: example_watch.py CONFIG
The watcher reconciles every region at start, then acts on each event of
the master Glance. This demo has no message bus (the URL names a port
where nothing listens): the watcher says the bus is down and goes on
reconciling. Setting the stop event (from any thread, a signal handler
too) ends watch() and stops the sync in progress (its half-made images deleted).
"""
import sys
import threading
import time

from glancesync import GlanceSync

overrides = ["notifications_url=rabbit://demo:demo@127.0.0.1:9/", "watch_listen=none"]
stop = threading.Event()


def report_then_stop(watcher):
    """Runs beside the watcher: waits for its first reconciliation, then stops it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not watcher.health()["last_reconciliation_end"]
                                           or watcher.health()["bus"] == "unknown"):
        time.sleep(0.2)
    health = watcher.health()
    print(f"after the first reconciliation: bus {health['bus']}, leader {health['leader']}",
          flush=True)
    stop.set()


with open(sys.argv[1], encoding="utf-8") as stream, \
        GlanceSync(stream, overrides=overrides, progress=False) as glancesync:
    unstarted = glancesync.watcher(["master:RegionA"])  # its queue's name, its health...
    print("listener pool:", unstarted.settings.pool.split(".")[0], flush=True)
    # With coordination_url, the watchers of these regions of this federation elect
    # one leader under this name (its first line; then the master's lock name).
    print("leader election:", glancesync.watch_group(["master:RegionA"]).split("\n")[0])
    glancesync.watch(["master:RegionA"], stop=stop, started=lambda watcher: threading.Thread(
        target=report_then_stop, args=(watcher,), daemon=True).start())
    names = sorted(image["name"] for image in glancesync.get_images_region("RegionA"))
    print("stopped; RegionA:", ", ".join(names))
