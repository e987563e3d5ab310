"""Keep the regions in sync from the master's notifications, in a thread of a program.

Usage: example_watch.py CONFIG
The watcher reconciles every region at start, then acts on each event of
the master Glance. This demo has no message bus (the URL names a port
where nothing listens): the watcher says the bus is down and goes on
reconciling. stop() (or setting the stop event given to watch()) ends it
after the sync in progress.
"""
import sys
import threading
import time

from glancesync import GlanceSync

overrides = ["notifications_url=rabbit://demo:demo@127.0.0.1:9/", "watch_listen=none"]
with open(sys.argv[1], encoding="utf-8") as stream, \
        GlanceSync(stream, overrides=overrides, progress=False) as glancesync:
    watcher = glancesync.watcher(["master:RegionA"])
    thread = threading.Thread(target=watcher.run)
    thread.start()
    while not watcher.health()["last_reconciliation_end"] or watcher.health()["bus"] == "unknown":
        time.sleep(0.2)
    print(f"after the first reconciliation: bus {watcher.health()['bus']},"
          f" leader {watcher.health()['leader']}")
    names = sorted(image["name"] for image in glancesync.get_images_region("RegionA"))
    print("RegionA:", ", ".join(names))
    watcher.stop()
    thread.join()
    stop = threading.Event()
    stop.set()  # already set: watch() returns at once, as after SIGTERM
    glancesync.watch(["master:RegionA"], stop=stop)
    print("stopped")
