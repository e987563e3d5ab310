"""Progress bars for long transfers, shown only to a human watching.

A thin layer over :mod:`tqdm`: a bar is drawn on stderr when stderr is a
terminal, and costs nothing otherwise (cron, logs, tests). The per-region
summary is logged elsewhere, always.
"""
from __future__ import annotations

import sys
from typing import IO, Iterable, Iterator, Protocol

from tqdm import tqdm

from glancesync.safenames import printable

__all__ = ["Progress", "NullProgress", "progress_bar", "wrap_chunks", "ask"]


class Progress(Protocol):
    """What callers of :func:`progress_bar` may do with a bar."""

    enabled: bool

    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    """A bar that draws nothing: used when nobody is watching."""

    enabled = False

    def update(self, n: int) -> None:
        """Ignore ``n``."""

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "NullProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TqdmProgress:
    """A tqdm bar counting bytes."""

    enabled = True

    def __init__(self, description: str, total: int | None, file: IO[str]) -> None:
        self._bar = tqdm(total=total, desc=description, unit="B", unit_scale=True,
                         unit_divisor=1024, file=file, leave=False,
                         dynamic_ncols=True, mininterval=0.5)

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "_TqdmProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(description: str, total: int | None, enabled: bool | None = None,
                 *, file: IO[str] | None = None) -> Progress:
    """A byte-counting bar titled ``description`` for ``total`` bytes.

    ``enabled=None`` draws the bar only when ``file`` (default stderr) is a
    terminal; ``False`` returns a :class:`NullProgress`. ``description``
    is shown with its control characters escaped.
    """
    stream = sys.stderr if file is None else file
    # An image name may hold escape sequences (an OSC title, a cursor move).
    description = printable(description)
    if enabled is None:
        enabled = _is_terminal(stream)
    if not enabled:
        return NullProgress()
    return _TqdmProgress(description, total, stream)


def wrap_chunks(chunks: Iterable[bytes], description: str, total: int | None,
                enabled: bool | None = None, *, file: IO[str] | None = None
                ) -> Iterator[bytes]:
    """Yield ``chunks`` unchanged, advancing a bar by each chunk's length.

    The bar is closed when the iteration ends, fails or is abandoned.
    """
    bar = progress_bar(description, total, enabled, file=file)
    try:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))
    finally:
        bar.close()


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def ask(question: str, stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> str:
    """Ask ``question`` on stderr and read one line of answer from stdin.

    Never on stdout: a script whose output is redirected still shows its
    question to the person at the terminal (``input()`` would write it into
    the redirected output and wait without a question). End of input is an
    empty answer.
    """
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    stderr.write(question)
    stderr.flush()
    return stdin.readline().rstrip("\n")
