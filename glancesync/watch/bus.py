"""The master Glance's notifications through oslo.messaging, and the bus's state.

An oslo.messaging notification listener of its own pool (its own queue:
a second watcher, of another pool, sees every event too) on Glance's
exchange (``glance``; an oslo.messaging ``Target`` without an exchange
listens on ``openstack`` and receives nothing) and the configured topic,
priority ``info``. oslo.messaging reconnects by itself, with a growing
wait (``rabbit_retry_interval``, ``rabbit_retry_backoff``,
``rabbit_interval_max``), and declares the queue again. A probe logs in
to the broker every few seconds (``amqp``, for ``rabbit://`` URLs) to
tell whether the bus is up: the watcher reports it and reconciles when
the bus comes back (events sent while it was down are lost by Glance).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import warnings

import amqp

# Imported with the module (it is heavy, and warns about eventlet): only the
# watcher imports this module. Not from a thread started before: the import
# of eventlet there leaves that thread unjoinable.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import oslo_messaging
    from oslo_config import cfg

from glancesync.errors import ConfigError

LOG = logging.getLogger(__name__)

#: Glance's exchange (``oslo_messaging.set_transport_defaults('glance')``).
EXCHANGE = "glance"
#: Seconds between probes while the bus is up; the longest wait between
#: probes while it is down (the wait doubles from 1 s).
PROBE_INTERVAL = 5.0
MAX_PROBE_WAIT = 30.0
#: Seconds the teardown of the listener may take (it can hang while the
#: broker is unreachable: oslo.messaging keeps reconnecting).
STOP_TIMEOUT = 10.0


class _Endpoint:
    """oslo.messaging's endpoint: every ``info`` notification goes to ``on_event``."""

    def __init__(self, on_event: Callable[[Any, Any], None]) -> None:
        self._on_event = on_event

    def info(self, ctxt: Any, publisher_id: Any, event_type: Any, payload: Any,
             metadata: Any) -> Any:
        self._on_event(event_type, payload)
        return oslo_messaging.NotificationResult.HANDLED


class Bus:
    """Listen on ``url`` (an oslo.messaging transport URL) and ``topic`` as ``pool``.

    ``on_event(event_type, payload)`` is called from the listener's threads
    (it must not raise); ``on_state(up)`` from the probe's thread when the
    bus's state changes (first call: the state found at start).

    :raises ConfigError: ``url`` is not a transport URL oslo.messaging knows.
    """

    def __init__(self, url: str, topic: str, pool: str,
                 on_event: Callable[[Any, Any], None],
                 on_state: Callable[[bool], None]) -> None:
        self._conf = cfg.ConfigOpts()
        try:
            self._url = oslo_messaging.TransportURL.parse(self._conf, url)
            self._transport = oslo_messaging.get_notification_transport(self._conf, url=url)
        except (oslo_messaging.InvalidTransportURL, oslo_messaging.DriverLoadFailure,
                ValueError) as error:
            raise ConfigError(f"notifications_url: not a transport URL oslo.messaging"
                              f" can use ({type(error).__name__})", section="main",
                              option="notifications_url") from None
        for option, value in (("rabbit_retry_interval", 1), ("rabbit_retry_backoff", 2),
                              ("rabbit_interval_max", 30)):
            self._conf.set_override(option, value, group="oslo_messaging_rabbit")
        targets = [oslo_messaging.Target(exchange=EXCHANGE, topic=topic)]
        self._listener = oslo_messaging.get_notification_listener(
            self._transport, targets, [_Endpoint(on_event)], executor="threading",
            pool=pool)
        self._on_state = on_state
        self._stop = threading.Event()
        self._probe: threading.Thread | None = None
        self._listening = threading.Event()
        self.up: bool | None = None

    def start(self) -> None:
        """Start listening and probing (returns at once)."""
        self._probe = threading.Thread(target=self._probe_loop, daemon=True,
                                       name="glancesync-watch-probe")
        self._probe.start()
        threading.Thread(target=self._start_listener, daemon=True,
                         name="glancesync-watch-listen").start()

    def _start_listener(self) -> None:
        self._listener.start()  # returns once connected: it may wait for the broker
        self._listening.set()

    def stop(self) -> None:
        """Stop listening; bounded by :data:`STOP_TIMEOUT` (a broker that does not answer
        leaves a daemon thread trying)."""
        self._stop.set()
        if self._probe is not None:
            self._probe.join(timeout=STOP_TIMEOUT)
        if not self._listening.is_set():
            # Still waiting for the broker: oslo.messaging's stop would wait for
            # the start (for ever); the daemon thread dies with the process.
            LOG.info("the notification listener never connected; leaving it")
            return
        done = threading.Event()

        def teardown() -> None:
            try:
                self._listener.stop()
                self._listener.wait()
                self._transport.cleanup()
            finally:
                done.set()
        threading.Thread(target=teardown, daemon=True, name="glancesync-watch-stop").start()
        if not done.wait(STOP_TIMEOUT):
            LOG.warning("the notification listener did not stop within %.0f s (the bus"
                        " does not answer); leaving it", STOP_TIMEOUT)

    def probe(self) -> bool | None:
        """Whether one of the URL's brokers accepts a login now (None: not a
        ``rabbit://`` URL, the state is unknown)."""
        if self._url.transport not in ("rabbit", "amqp"):
            return None
        for host in self._url.hosts:
            connection = amqp.Connection(
                host=f"{host.hostname}:{host.port or 5672}", userid=host.username or "guest",
                password=host.password or "guest",
                virtual_host=self._url.virtual_host or "/", connect_timeout=5)
            try:
                connection.connect()
                return True
            except (OSError, amqp.AMQPError):
                continue
            finally:
                try:
                    connection.close()
                except (OSError, amqp.AMQPError, AttributeError):
                    pass
        return False

    def _probe_loop(self) -> None:
        down_wait = 0.5
        while not self._stop.is_set():
            up = self.probe()
            if up is None:
                return
            if up != self.up:
                self.up = up
                self._on_state(up)
            if up:
                down_wait, wait = 0.5, PROBE_INTERVAL
            else:  # 1, 2, 4 ... 30 s: a broker down for long is not hammered
                down_wait = wait = min(down_wait * 2, MAX_PROBE_WAIT)
            self._stop.wait(wait)
