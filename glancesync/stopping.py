"""Stopping a run: :class:`StopRequest`, and the scripts' signal handlers.

A run checks one :class:`StopRequest` wherever it can stop safely: before
each region and each operation, at each chunk of data it sends or
downloads, in every wait (retries, server-side copies, a lock held
elsewhere). Once it is set, nothing new starts, transfers under way are
aborted at their next chunk, the images the run created and did not
finish are deleted, the locks released, and the run returns what it did
(``RunResult.stopped``). It is a :class:`threading.Event` with a reason:
any thread may set it (:meth:`GlanceSync.stop <glancesync.GlanceSync.stop>`
does); the library never installs signal handlers by itself.

:func:`signal_handlers` is for programs that want SIGINT and SIGTERM to
stop the run (the scripts, ``glancesync-watch``): the first signal sets
the request; later ones only say that the run is already stopping.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import weakref
from typing import Callable, Iterator

from glancesync.errors import ExitStatus, StoppedError

__all__ = ["STOP_SIGNALS", "StopRequest", "signal_handlers"]

#: The signals the scripts stop on: Ctrl-C, and what ``systemctl stop`` and
#: ``kill`` send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """A request that a run stop: set once, by any thread, and seen by all.

    ``reason`` says why (``"SIGTERM received"``); ``signum`` is the signal
    that set it (None: a program asked). Setting it again changes nothing.
    ``parent``: a request whose setting sets this one too (see :meth:`scoped`).
    """

    def __init__(self, parent: "StopRequest | None" = None) -> None:
        self._event = threading.Event()
        self._guard = threading.Lock()
        self._scoped: "weakref.WeakSet[StopRequest]" = weakref.WeakSet()
        self.reason = ""
        self.signum: int | None = None
        if parent is not None:
            parent._adopt(self)

    def scoped(self) -> "StopRequest":
        """A request of its own for part of the run (one region): set when this one is
        set (with its reason), or by itself, which stops only what obeys it."""
        return StopRequest(self)

    def _adopt(self, child: "StopRequest") -> None:
        with self._guard:
            if not self._event.is_set():
                self._scoped.add(child)
                return
        child.set(self.reason, self.signum)

    def set(self, reason: str = "a stop was requested", signum: int | None = None) -> bool:
        """Ask the run to stop; returns False when it was asked already (first reason kept)."""
        with self._guard:
            if self._event.is_set():
                return False
            self.reason, self.signum = reason, signum
            self._event.set()
            scoped = list(self._scoped)
        for child in scoped:
            child.set(reason, signum)
        return True

    def is_set(self) -> bool:
        """True once a stop was requested."""
        return self._event.is_set()

    @property
    def exit_status(self) -> ExitStatus:
        """:attr:`ExitStatus.TERMINATED` after SIGTERM, else :attr:`ExitStatus.INTERRUPTED`
        (128 + the signal's number, as shells report a process a signal ended)."""
        if self.signum == signal.SIGTERM:
            return ExitStatus.TERMINATED
        return ExitStatus.INTERRUPTED

    def error(self, region: str | None = None, image: str | None = None) -> StoppedError:
        """The :class:`StoppedError` that says why the run stops."""
        return StoppedError(f"stopped: {self.reason or 'a stop was requested'}",
                            region=region, image=image, exit_status=self.exit_status)

    def check(self, region: str | None = None, image: str | None = None) -> None:
        """Return at once, or raise :class:`StoppedError` when a stop was requested."""
        if self._event.is_set():
            raise self.error(region, image)

    def wait(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (None: until set), shorter if a stop is requested meanwhile;
        True when it was."""
        return self._event.wait(seconds)

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``; raise :class:`StoppedError` if a stop is (or gets) requested."""
        if self._event.wait(max(0.0, seconds)):
            raise self.error()

    def __repr__(self) -> str:
        return f"<StopRequest {'set: ' + self.reason if self.is_set() else 'not set'}>"


def _say(message: str) -> None:
    """Write one line on stderr from a signal handler (no buffered stream: the main
    thread may be writing on it when the signal comes)."""
    try:
        os.write(2, message.encode("utf-8", "replace") + b"\n")
    except OSError:
        pass


@contextlib.contextmanager
def signal_handlers(stop: StopRequest, prog: str = "glancesync",
                    signals: tuple[int, ...] = STOP_SIGNALS,
                    say: Callable[[str], None] = _say) -> Iterator[StopRequest]:
    """SIGINT and SIGTERM set ``stop`` while the block runs; the former handlers after.

    Only in the main thread (Python runs handlers there). The first signal
    sets the request and says so on stderr (``prog: SIGTERM received:
    stopping...``); the next one says the run is already stopping (it
    finishes deleting what it half made and releasing its locks), later
    ones say nothing.
    """
    later = []

    def handle(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        if stop.set(f"{name} received", signum):
            say(f"{prog}: {name} received: stopping (transfers under way aborted, images"
                " this run did not finish deleted, locks released)")
        elif not later:  # said once: a storm of signals does not flood stderr
            later.append(signum)
            say(f"{prog}: {name} received: already stopping, cleaning up ({stop.reason})")

    previous = {signum: signal.signal(signum, handle) for signum in signals}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
