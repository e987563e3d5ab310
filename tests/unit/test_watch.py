"""The watcher without a bus: notifications read as hints, bursts, floods, retries,
leadership, the endpoint's address, the configuration (issue 24).

The syncer is a small class of the test following the watcher's protocol
(``sync``, ``sync_images``); nothing of GlanceSync is patched.
"""
from __future__ import annotations

import dataclasses
import io
import uuid

import pytest

from glancesync import GlanceSync
from glancesync.config import load_config
from glancesync.errors import ConfigError, ServiceError, UsageError
from glancesync.redaction import REDACTOR
from glancesync.watch import Watcher, WatchSettings, read_notification
from glancesync.watch.events import Ignored
from glancesync.watch.http import parse_listen
from glancesync.watch.pending import Batch, Pending
from glancesync.watch.events import Hint

ID = str(uuid.uuid4())


@pytest.mark.parametrize("event_type, payload, reason", [
    ("image.create", {"id": ID}, "quiet"),
    ("image.upload", {"id": ID}, "quiet"),
    ("image.forged", {"id": ID}, "unknown_event"),
    ("x" * 100_000, {"id": ID}, "unknown_event"),
    (None, {"id": ID}, "unknown_event"),
    (["image.update"], {"id": ID}, "unknown_event"),
    ("image.update", None, "malformed_payload"),
    ("image.update", "x" * 1_000_000, "malformed_payload"),
    ("image.update", {}, "bad_image_id"),
    ("image.update", {"id": 42}, "bad_image_id"),
    ("image.update", {"id": "../../etc/passwd"}, "bad_image_id"),
    ("image.update", {"id": "{" + ID + "}"}, "bad_image_id"),
    ("image.update", {"id": ID.replace("-", "")}, "bad_image_id"),
    ("image.update", {"id": ID + "\n"}, "bad_image_id"),
    ("image.member.create", {"id": ID}, "bad_image_id"),
])
def test_hostile_or_quiet_notifications_are_ignored(event_type, payload, reason):
    with pytest.raises(Ignored) as ignored:
        read_notification(event_type, payload)
    assert ignored.value.reason == reason


def test_a_notification_names_its_image_and_whether_it_is_an_activation():
    assert read_notification("image.activate", {"id": ID, "x": "y" * 10**6}) == \
        Hint("image.activate", ID, activation=True)
    assert read_notification("image.member.update", {"image_id": ID}).image_id == ID
    assert not read_notification("image.delete", {"id": ID}).activation
    assert read_notification("image.update", {"id": ID.upper()}).image_id == ID


def test_a_burst_is_one_batch_and_a_flood_one_reconciliation():
    pending = Pending(quiet=0.0, most=0.0, limit=3)
    for _ in range(50):
        pending.add(Hint("image.update", ID))
    pending.add(Hint("image.activate", ID, activation=True))
    batch = pending.take(1.0)
    assert batch.events == {ID: 51} and ID in batch.activated and not batch.overflow
    assert not pending.take(0.0)
    for _ in range(4):
        pending.add(Hint("image.update", str(uuid.uuid4())))
    flood = pending.take(1.0)
    assert flood.overflow and flood.events == {}


def test_a_batch_waits_for_the_burst_to_end():
    pending = Pending(quiet=30.0, most=60.0)
    pending.add(Hint("image.update", ID))
    assert not pending.take(0.1), "the burst may go on: not taken yet"
    assert len(pending) == 1


@dataclasses.dataclass
class Result:
    plans: dict
    failures: dict
    results: dict = dataclasses.field(default_factory=dict)

    @property
    def failed_regions(self):
        return sorted(self.failures)

    def totals(self):
        return f"{len(self.plans)} region(s)"


class Syncer:
    """The watcher's protocol: records its calls; ``down`` regions fail."""

    def __init__(self, regions=("master:RegionA", "master:RegionB")) -> None:
        self.regions = list(regions)
        self.down: set[str] = set()
        self.master_down = False
        self.calls: list[tuple] = []

    def _result(self, regions):
        if self.master_down:
            raise ServiceError("the master does not answer")
        covered = [r for r in self.regions if not regions or r in regions]
        return Result(plans={r: None for r in covered if r not in self.down},
                      failures={r: ServiceError("down") for r in covered if r in self.down})

    def sync(self, regions=()):
        self.calls.append(("sync", tuple(regions)))
        return self._result(regions)

    def sync_images(self, image_ids, regions=()):
        self.calls.append(("sync_images", tuple(image_ids), tuple(regions)))
        return self._result(regions)


class Leader:
    def __init__(self) -> None:
        self.leading = True
        self.closed = False

    def is_leader(self) -> bool:
        return self.leading


def _watcher(syncer, **kw):
    settings = WatchSettings("rabbit://u:p@127.0.0.1:1/", listen=None, retry_wait=0.0)
    return Watcher(syncer, [], settings, **kw)


def _batch(*ids, activated=()):
    return Batch(events={i: 1 for i in ids}, activated={i: 0.0 for i in activated})


def test_a_region_down_is_retried_and_the_lag_measured_when_it_is_back():
    syncer = Syncer()
    watcher = _watcher(syncer)
    syncer.down = {"master:RegionB"}
    assert not watcher.sync_batch(_batch(ID, activated=[ID]))
    assert watcher.metrics.registry.get_sample_value(
        "glancesync_watch_propagation_lag_seconds_count") == 0
    syncer.down = set()
    watcher._retry_due()
    assert syncer.calls[-1] == ("sync_images", (ID,), ("master:RegionB",))
    assert watcher._retries.work == {}
    assert watcher.metrics.registry.get_sample_value(
        "glancesync_watch_propagation_lag_seconds_count") == 1


def test_the_master_down_retries_the_images_everywhere():
    syncer = Syncer()
    watcher = _watcher(syncer)
    syncer.master_down = True
    assert not watcher.sync_batch(_batch(ID))
    syncer.master_down = False
    watcher._retry_due()
    assert syncer.calls[-1] == ("sync_images", (ID,), ())
    assert watcher._retries.work == {}


def test_a_follower_drops_events_and_reconciles_when_it_leads():
    syncer, leader = Syncer(), Leader()
    watcher = _watcher(syncer, leadership=leader)
    leader.leading = False
    watcher.on_event("image.update", {"id": ID})
    assert not watcher._lead() and len(watcher.pending) == 0
    assert watcher.metrics.registry.get_sample_value(
        "glancesync_watch_events_ignored_total", {"reason": "not_leader"}) == 1
    leader.leading = True
    assert watcher._lead() and watcher._reconcile_wanted.is_set()


def test_the_bus_back_asks_for_a_reconciliation():
    watcher = _watcher(Syncer())
    watcher.on_bus_state(True)
    assert not watcher._reconcile_wanted.is_set(), "the first connection: start reconciles"
    watcher.on_bus_state(False)
    watcher.on_bus_state(True)
    assert watcher._reconcile_wanted.is_set()
    assert watcher.metrics.registry.get_sample_value("glancesync_watch_bus_outages_total") == 1


@pytest.mark.parametrize("listen", ["0.0.0.0:9465", "10.0.0.1:80", "example.org:9465",
                                    "127.0.0.1", "127.0.0.1:99999", ":9465", "[::]:1"])
def test_only_a_loopback_host_and_port_is_served(listen):
    with pytest.raises(UsageError, match="watch_listen"):
        parse_listen(listen)


def test_loopback_addresses_are_accepted():
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:9465") == ("::1", 9465)
    assert parse_listen("localhost:9465") == ("localhost", 9465)


CONFIG = """[main]
master_region = Master
{extra}
[master]
type = local
path = {path}
"""


def test_watching_without_a_notifications_url_is_a_configuration_error(tmp_path):
    config = load_config(io.StringIO(CONFIG.format(extra="", path=tmp_path)))
    with pytest.raises(ConfigError, match="notifications_url"):
        GlanceSync(config).watcher()


def test_the_password_of_the_notifications_url_is_masked(tmp_path):
    extra = "notifications_url = rabbit://watcher:S%%40cret-pw@127.0.0.1:5672,w2:Other-pw@h2:5672/"
    config = load_config(io.StringIO(CONFIG.format(extra=extra.replace("%%", "%"),
                                                   path=tmp_path)))
    assert {"S%40cret-pw", "S@cret-pw", "Other-pw"} <= set(config.secrets())
    GlanceSync(config)
    assert "S@cret-pw" not in REDACTOR.redact("login S@cret-pw failed")


def test_images_retried_while_a_region_is_down_stay_bounded():
    syncer = Syncer()
    watcher = _watcher(syncer)
    syncer.down = {"master:RegionB"}
    for _ in range(3):
        watcher.sync_batch(_batch(*(str(uuid.uuid4()) for _ in range(400))))
    assert watcher._retries.work == {"master:RegionB": None}, "a whole reconciliation"
    syncer.down = set()
    watcher._retry_due()
    assert syncer.calls[-1] == ("sync", ("master:RegionB",))
    assert watcher._retries.work == {}


@pytest.fixture
def restore_signals():
    import signal
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


@pytest.mark.parametrize("extra, fragment", [
    ("", "notifications_url"),
    ("notifications_url = rabbit://u:p@127.0.0.1:1/\nwatch_listen = 0.0.0.0:9465",
     "only a loopback address"),
    ("notifications_url = rabbit://u:p@127.0.0.1:1/\nwatch_listen = 127.0.0.1",
     "expected HOST:PORT"),
])
def test_the_script_refuses_a_bad_configuration_in_one_line(tmp_path, capsys, restore_signals,
                                                             extra, fragment):
    from glancesync_scripts import watch as script
    config = tmp_path / "glancesync.conf"
    config.write_text(CONFIG.format(extra=extra, path=tmp_path / "m"))
    config.chmod(0o600)
    status = script.main(["--config-file", str(config)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("glancesync-watch: error:")]
    assert status == 2, err
    assert len(lines) == 1 and fragment in lines[0], err
    assert "Traceback" not in err and "p@127" not in err


class Transferring(Syncer):
    """A syncer whose first reconciliation is a transfer that only a stop ends (as
    GlanceSync's would: aborted at its next chunk); records why it was stopped."""

    def __init__(self) -> None:
        super().__init__()
        import threading
        self.in_flight = threading.Event()
        self.stopped = threading.Event()
        self.reasons: list[str] = []

    def sync(self, regions=()):
        self.calls.append(("sync", tuple(regions)))
        self.in_flight.set()
        self.stopped.wait(60)  # the upload would go on that long: a bound, not a delay
        result = self._result(regions)
        result.stopped = "stopped" if self.stopped.is_set() else None
        return result

    def stop(self, reason="a stop was requested"):
        self.reasons.append(reason)
        self.stopped.set()


def test_the_watchers_stop_event_stops_the_sync_in_progress():
    import threading
    syncer = Transferring()
    stop = threading.Event()  # what GlanceSync.watch(stop=...) and the script set
    watcher = _watcher(syncer, stop=stop)
    runner = threading.Thread(target=watcher.run, daemon=True)
    runner.start()
    assert syncer.in_flight.wait(60)
    stop.set()
    assert syncer.stopped.wait(30), "the transfer under way was not stopped"
    runner.join(60)
    assert not runner.is_alive()
    assert syncer.reasons == ["the watcher is stopping"]
    assert watcher._retries.work == {}, "a stopped sync is not retried"
    assert watcher.metrics.registry.get_sample_value(
        "glancesync_watch_reconciliations_total", {"outcome": "failed"}) in (None, 0)


def test_a_watcher_that_ends_without_a_stop_does_not_stop_its_syncer():
    syncer = Transferring()
    syncer.stopped.set()  # its syncs return at once
    watcher = _watcher(syncer, leadership=Leader())
    watcher.leadership.is_leader = lambda: (_ for _ in ()).throw(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        watcher.run()
    assert syncer.reasons == []
