"""Region locks and leader election of several hosts, through tooz.

A host is one process of one machine; several hosts synchronising one
federation share a coordination service named by ``coordination_url``
(``[main]``): any tooz URL, ``etcd3+http://HOST:PORT`` (tooz's ``etcd3gw``
driver, etcd's JSON gateway) being the documented choice. tooz's locks on
etcd live on a lease of ``lock_ttl`` seconds: the holder renews it
(:meth:`CoordinatedLock.heartbeat`, every third of the time to live, from
:func:`~glancesync.lock.base.hold`'s keep-alive thread); a holder that dies
(``kill -9``, a crash, a lost machine) stops renewing it and the lock is
gone ``lock_ttl`` seconds later at most. Sources: tooz's
``tooz/drivers/etcd3gw.py`` (``Etcd3Lock``: a key created in a
transaction, bound to a lease) and etcd's lease API
(https://etcd.io/docs/v3.5/learning/api/#lease-api).

Names: a region's lock name (``Region@<Keystone URL>``) is text from a
catalog and a configuration; it never becomes a key as it is. tooz gets
``glancesync.region.<sha256 of the name>`` (on etcd, the key
``/tooz/locks/glancesync.region.<sha256>``): a name with ``/``, ``..``,
control characters or the prefix of another key cannot reach another lock
or another application's keys.

Holders: on etcd, the holder of a lock also writes who it is (host name and
pid) under ``/glancesync/glancesync.region-holder.<same hash>``, bound to
its own lease; any
other client of the etcd can write that key too, so what is read back is
shown escaped and bounded, and is never trusted for anything else.

Errors of the coordination service (unreachable, timed out, refused) are
:class:`~glancesync.errors.CoordinationError`: the region is not changed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import urllib.parse
import uuid
import warnings
from typing import Any, Callable

from glancesync.errors import CoordinationError, LockedError
from glancesync.lock.files import WAIT_POLL
from glancesync.safenames import printable

__all__ = ["DEFAULT_TTL", "CoordinatedLock", "Coordination", "ToozLeadership",
           "coordination", "lock_key", "member_id"]

LOG = logging.getLogger("glancesync.lock")

#: Seconds a lock outlives its last heartbeat (``lock_ttl``'s default).
DEFAULT_TTL = 30
#: The longest holder description shown (a hostile one may be long).
_HOLDER_MAX = 200
#: Reads of the holder's name when a lock is found taken (it comes just after).
_HOLDER_READS = 5


def lock_key(kind: str, name: str) -> str:
    """The tooz name of lock ``name`` of ``kind`` (``region``, ``leader``, ``holder``):
    ``glancesync.<kind>.<sha256 hex of name>``, whatever characters ``name`` holds
    (letters, digits and dots only: a file name for tooz's file driver, the end
    of the key ``/tooz/locks/glancesync...`` on etcd)."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"glancesync.{kind}.{digest}"


def member_id() -> str:
    """Who this process is, as other hosts see it: ``host pid N (random)``."""
    return f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:8]})"


def with_ttl(url: str, ttl: int) -> str:
    """``url`` with tooz's lock and membership time to live set to ``ttl`` seconds,
    unless the URL sets them itself (``?lock_timeout=...``)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    given = {key for key, _ in query}
    for key in ("lock_timeout", "membership_timeout"):
        if key not in given:
            query.append((key, str(ttl)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _shown_url(url: str) -> str:
    """``url`` without its user information and query (a password may be there)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class Coordination:
    """One started tooz coordinator of this process for ``url`` (``ttl`` seconds).

    Started on first use; :meth:`call` runs a tooz call and translates its
    errors into :class:`CoordinationError`.
    """

    def __init__(self, url: str, ttl: int = DEFAULT_TTL) -> None:
        self.url = url
        self.ttl = ttl
        self.member = member_id()
        self.shown = _shown_url(url)
        self._guard = threading.Lock()
        self._coordinator: Any = None

    def coordinator(self) -> Any:
        """The started tooz coordinator.

        :raises CoordinationError: the URL names no tooz driver, or the service
            cannot be reached.
        """
        with self._guard:
            if self._coordinator is None:
                # tooz's executor (futurist) imports eventlet, which warns that it
                # is deprecated: not GlanceSync's users' concern.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from tooz import coordination as tooz_coordination
                    coordinator = self.call("connect to", tooz_coordination.get_coordinator,
                                            with_ttl(self.url, self.ttl),
                                            self.member.encode("utf-8"))
                    self.call("connect to", coordinator.start, start_heart=False)
                self._coordinator = coordinator
            return self._coordinator

    def call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``, tooz's and its clients' errors translated.

        :raises CoordinationError: naming ``what`` was being done and the service.
        """
        from tooz import ToozError
        try:
            return function(*args, **kwargs)
        except (ToozError, OSError, ValueError, RuntimeError) as exc:
            raise CoordinationError(
                f"the coordination service {self.shown} (coordination_url) could not "
                f"{what}: {printable(exc) or type(exc).__name__}; nothing was changed in "
                f"that region; check that the service runs and answers") from exc
        except Exception as exc:  # etcd3gw and requests errors outside tooz's translation
            if type(exc).__module__.split(".")[0] in ("etcd3gw", "requests", "urllib3"):
                raise CoordinationError(
                    f"the coordination service {self.shown} (coordination_url) could not "
                    f"{what}: {printable(exc) or type(exc).__name__}") from exc
            raise

    def client(self) -> Any:
        """The etcd3gw client of an etcd coordinator (to name holders), else None."""
        return getattr(self.coordinator(), "client", None) if "etcd3" in self.url else None

    def close(self) -> None:
        """Stop the coordinator (its locks are released by tooz); errors are logged."""
        with self._guard:
            coordinator, self._coordinator = self._coordinator, None
        if coordinator is not None:
            try:
                self.call("stop", coordinator.stop)
            except CoordinationError as error:
                LOG.warning("%s", error)


_sessions: dict[tuple[str, int], Coordination] = {}
_sessions_guard = threading.Lock()


def coordination(url: str, ttl: int = DEFAULT_TTL) -> Coordination:
    """This process's :class:`Coordination` for ``url`` and ``ttl`` (one per pair)."""
    with _sessions_guard:
        session = _sessions.get((url, ttl))
        if session is None:
            session = _sessions[(url, ttl)] = Coordination(url, ttl)
        return session


class CoordinatedLock:
    """The lock of one region in a coordination service (tooz), for several hosts.

    Implements :class:`~glancesync.lock.base.Lock`: :meth:`acquire` waits by
    trying again every ``WAIT_POLL`` seconds (as the file lock does),
    :meth:`heartbeat` renews the lock (every ``ttl / 3`` seconds), a holder
    that stops renewing it loses it after ``ttl`` seconds.
    """

    def __init__(self, session: Coordination, name: str, kind: str = "region", *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.session = session
        self._name = name
        self.key = lock_key(kind, name)
        self.holder_key = "/glancesync/" + lock_key(f"{kind}-holder", name)
        self.heartbeat_interval: float | None = max(session.ttl / 3.0, 0.5)
        #: Seconds the lock outlives its last heartbeat (``lock_ttl``).
        self.ttl: float = session.ttl
        #: True once a heartbeat found the lock lost (expired: another host may hold it).
        self.lost = False
        self._tooz: Any = None
        self._lease: Any = None
        self._held = False
        self._clock = clock
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self._name

    @property
    def locked(self) -> bool:
        return self._held

    def _lock(self) -> Any:
        if self._tooz is None:
            coordinator = self.session.coordinator()
            # etcd's key is tooz's prefix /tooz/locks followed by the name.
            name = f"/{self.key}" if self.session.url.startswith("etcd3") else self.key
            self._tooz = self.session.call(f"lock {self._name}", coordinator.get_lock,
                                           name.encode("ascii"))
        return self._tooz

    def acquire(self, timeout: float | None = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (0: not at all; None: as
        long as it takes).

        :raises LockedError: another holder has it (still, after ``timeout``).
        :raises CoordinationError: the coordination service cannot be used.
        """
        if self._held:
            raise CoordinationError(f"the lock of {self._name} is already held by this object")
        deadline = None if timeout is None else self._clock() + timeout
        tooz_lock = self._lock()
        while not self.session.call(f"lock {self._name}", tooz_lock.acquire, blocking=False):
            left = None if deadline is None else deadline - self._clock()
            if left is not None and left <= 0:
                holder = self._holder_soon()
                by = f" (held by {holder})" if holder else ""
                raise LockedError(f"another host or run is synchronising "
                                  f"{printable(self._name)}{by}; "
                                  f"coordination service {self.session.shown}",
                                  holder=holder)
            self._sleep(WAIT_POLL if left is None else min(WAIT_POLL, left))
        self._held = True
        self.lost = False
        self._write_holder()

    def _write_holder(self) -> None:
        """Say who holds the lock (etcd only); a failure only costs the name."""
        try:
            client = self.session.client()
            if client is None:
                return
            self._lease = self.session.call("name the holder", client.lease, self.session.ttl)
            self.session.call("name the holder", client.put, self.holder_key,
                              self.session.member, lease=self._lease)
        except CoordinationError as error:
            LOG.warning("%s", error)

    def _holder_soon(self) -> str | None:
        """:meth:`holder`, read again a few times: a holder names itself just after
        it takes the lock, in a second request."""
        for attempt in range(_HOLDER_READS):
            holder = self.holder()
            if holder is not None or self.session.client() is None:
                return holder
            if attempt + 1 < _HOLDER_READS:
                self._sleep(0.2)
        return None

    def holder(self) -> str | None:
        """``host pid N (id)`` of the holder, as it wrote it (escaped, bounded); None
        when free, unknown or on another service than etcd."""
        try:
            client = self.session.client()
            if client is None:
                return None
            values = self.session.call("read the holder", client.get, self.holder_key)
        except CoordinationError:
            return None
        if not values:
            return None
        value = values[0]
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return printable(str(value)[:_HOLDER_MAX]) or None

    def release(self) -> None:
        """Release the lock (nothing if not held). If the service cannot be reached
        the lock expires by itself after ``ttl`` seconds: logged, not raised."""
        if not self._held:
            return
        self._held = False
        lease, self._lease = self._lease, None
        try:
            released = self.session.call(f"release the lock of {self._name}",
                                         self._tooz.release)
        except CoordinationError as error:
            LOG.error("%s; the lock expires by itself within %d s", error, self.session.ttl)
            return
        if released is False:
            LOG.warning("the lock of %s had expired before its release (no heartbeat for "
                        "%d s)", self._name, self.session.ttl)
        if lease is not None:
            try:
                self.session.call("forget the holder", lease.revoke)
            except CoordinationError as error:  # it expires with its lease
                LOG.debug("%s", error)

    def heartbeat(self) -> None:
        """Renew the lock for ``ttl`` more seconds.

        :raises CoordinationError: the service cannot be reached, or the lock was
            lost (it expired: another host may hold it now).
        """
        if not self._held:
            return
        # etcd's and redis's locks renew themselves; others through their coordinator.
        renew = getattr(self._tooz, "heartbeat", None) or self.session.coordinator().heartbeat
        renewed = self.session.call(f"renew the lock of {self._name}", renew)
        if renewed is False:
            self.lost = True
            raise CoordinationError(f"the lock of {self._name} was lost")
        if self._lease is not None:
            # The holder's lease has the lock's time to live and is renewed with
            # it: expired (-1) means the lock expired too.
            ttl = self.session.call("renew the holder's name", self._lease.refresh)
            if isinstance(ttl, int) and ttl < 0:
                self.lost = True
                raise CoordinationError(f"the lock of {self._name} expired (no heartbeat for"
                                        f" {self.session.ttl} s): another host may hold it")

    def __repr__(self) -> str:
        return f"<CoordinatedLock {self._name!r} {self.key} {self.session.shown}>"


class ToozLeadership:
    """One leader among the processes (watchers of several hosts) naming ``group``.

    The leader is the holder of a coordinated lock (key
    ``/glancesync/leader/<sha256 of group>``), kept alive by a thread every
    third of ``ttl``; when the leader dies, the lock expires after ``ttl``
    seconds and the next :meth:`is_leader` of another process takes it.
    The protocol of the watcher's leadership: :meth:`is_leader`, :meth:`close`.
    """

    def __init__(self, session: Coordination, group: str) -> None:
        self.session = session
        self.group = group
        self.lock = CoordinatedLock(session, group, kind="leader")
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self._lost = threading.Event()

    def is_leader(self) -> bool:
        """Whether this process leads now: it holds the lock, or takes it if free.

        A failure of the service is logged and answers False (a process that
        cannot reach it must not act as the leader).
        """
        if self.lock.locked and not self._lost.is_set():
            return True
        if self.lock.locked:  # lost: let it go before trying again
            self._stop_keeper()
            self.lock.release()
        try:
            self.lock.acquire(0)
        except LockedError:
            return False
        except CoordinationError as error:
            LOG.error("leader election of %s: %s", self.group, error)
            return False
        LOG.info("leader election of %s: this process (%s) leads", self.group,
                 self.session.member)
        self._lost.clear()
        self._stop.clear()
        self._keeper = threading.Thread(target=self._keep, daemon=True,
                                        name=f"leader {self.group}")
        self._keeper.start()
        return True

    def leader(self) -> str | None:
        """Who leads, as it named itself (escaped), if known."""
        return self.lock.holder()

    def _keep(self) -> None:
        interval = self.lock.heartbeat_interval or 1.0
        while not self._stop.wait(interval):
            try:
                self.lock.heartbeat()
            except CoordinationError as error:
                LOG.error("leader election of %s: leadership lost: %s", self.group, error)
                self._lost.set()
                return

    def _stop_keeper(self) -> None:
        self._stop.set()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join()
        self._keeper = None

    def close(self) -> None:
        """Stand down (release the lock) and stop keeping it alive."""
        self._stop_keeper()
        self.lock.release()
