"""Validation before visibility: an operator's command checks a new copy (``validate_command``).

A new copy is created private, carrying the mark ``glancesync.validation =
pending``, filled and verified; then the region's ``validate_command`` runs
(:class:`Validation`): exit status 0 and the copy is published (the mark
becomes ``passed``, with ``glancesync.validated_at``) and replaces the
previous one as configured; anything else, and the copy stays private
(mark ``failed``, with the command's last lines in
``glancesync.validation_output``), the previous copy stays in service, and
the image's status is ``error_validation`` (needs an operator).

The command is split with :func:`shlex.split` and run without a shell
(nothing of an image's name can become a command), with its standard input
closed, in a session of its own (a time limit stops it and all it started:
its process group is killed), its output read as it comes, logged to the
region's log line by line up to :data:`MAX_LOGGED` bytes, the last
:data:`TAIL_LINES` lines kept for the status. Its environment is this
process's, without any ``OS_*`` variable, plus the region's cloud
(:func:`cloud_environment`) and the copy (:meth:`Validation.environment`).
"""
from __future__ import annotations

import collections
import contextvars
import dataclasses
import os
import shlex
import signal
import subprocess
import threading
from typing import IO, Any, Mapping

from glancesync.errors import ConfigError, ExitStatus, GlanceSyncError
from glancesync.executor.actions import LOG
from glancesync.safenames import printable

#: Bytes of a command's output written to the region's log; the rest is counted only.
MAX_LOGGED = 256 * 1024
#: Lines of output kept for the status and the copy's mark, and their longest length.
TAIL_LINES = 10
LONGEST_LINE = 300
#: Seconds a stopped command's output may take to end (a process that left
#: the command's group may hold it open).
DRAIN_TIME = 5.0

#: Longest value of a mark (Glance's properties hold 255 characters).
MARK_LENGTH = 255


class ValidationError(GlanceSyncError):
    """The validation command refused a new copy (or could not run, or took too long)."""

    exit_status = ExitStatus.NEEDS_OPERATOR

    def __init__(self, message: str, tail: list[str], **where: Any) -> None:
        super().__init__(message, **where)
        self.tail = tail


def split_command(command: str) -> list[str]:
    """The words of ``validate_command`` (shell quoting rules, no shell).

    :raises ConfigError: unbalanced quotes, or no word at all.
    """
    try:
        words = shlex.split(command)
    except ValueError as error:
        raise ConfigError(f"validate_command cannot be split into words ({error}): check"
                          " its quotes") from None
    if not words:
        raise ConfigError("validate_command cannot be split into words (none): check"
                          " its quotes")
    return words


#: Option names of a target's settings and the variable of the openstack client
#: each becomes; other settings become ``GLANCESYNC_TARGET_<NAME>``.
_CLIENT_VARIABLES = {"cloud": "OS_CLOUD", "cacert": "OS_CACERT", "interface": "OS_INTERFACE"}


def cloud_environment(settings: Any, region: str) -> dict[str, str]:
    """The variables that let a command reach ``region`` as the target does.

    A ``clouds.yaml`` cloud is ``OS_CLOUD``; explicit Keystone credentials
    are ``OS_<OPTION>`` (``OS_AUTH_URL``, ``OS_PASSWORD``...); other
    backends' settings are ``GLANCESYNC_TARGET_<OPTION>``. ``OS_REGION_NAME``
    is always the region.
    """
    values = settings.option_values() if settings is not None else {}
    auth = getattr(settings, "auth", None) or {}
    env = {"OS_REGION_NAME": region}
    for name, value in values.items():
        if value in (None, "", False) or isinstance(value, (list, tuple)):
            continue
        if name in _CLIENT_VARIABLES:
            env[_CLIENT_VARIABLES[name]] = str(value)
        elif name == "insecure":
            env["OS_INSECURE"] = "true"
        elif name in auth:
            env[f"OS_{name.upper()}"] = str(value)
        else:
            env[f"GLANCESYNC_TARGET_{name.upper()}"] = str(value)
    if "application_credential_id" in auth or "application_credential_name" in auth:
        env["OS_AUTH_TYPE"] = "v3applicationcredential"
    return env


def _env_value(value: object) -> str:
    """A value an environment can carry (no NUL), else unchanged: never a shell."""
    return str(value).replace("\0", "\\x00")


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """How a command ended: ``returncode`` (None: stopped at its time limit), its
    last lines, the bytes it printed."""

    returncode: int | None
    tail: list[str]
    output_bytes: int

    @property
    def passed(self) -> bool:
        return self.returncode == 0


@dataclasses.dataclass(frozen=True)
class Validation:
    """A region's ``validate_command``: its words, time limit (seconds) and the
    variables of the region's cloud (:func:`cloud_environment`)."""

    words: tuple[str, ...]
    timeout: float
    cloud: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, command: str, timeout: float, cloud: Mapping[str, str]) -> "Validation":
        """:raises ConfigError: a command that cannot be split into words."""
        return cls(tuple(split_command(command)), timeout, dict(cloud))

    def environment(self, region: str, image_id: str, name: str,
                    master_id: str) -> dict[str, str]:
        """This process's variables but ``OS_*``, the cloud's, and the copy's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(self.cloud)
        env.update(GLANCESYNC_REGION=region, GLANCESYNC_IMAGE_ID=image_id,
                   GLANCESYNC_IMAGE_NAME=name, GLANCESYNC_MASTER_IMAGE_ID=master_id)
        return {key: _env_value(value) for key, value in env.items()}

    def run(self, env: Mapping[str, str], region: str) -> CommandResult:
        """Run the command; its output goes to the region's log (see the module).

        Never raises for the command's own failure (a command that cannot be
        started ends with return code 127 and says why in its tail).
        """
        try:
            process = subprocess.Popen(  # noqa: S603 - words, never a shell
                list(self.words), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=dict(env), start_new_session=True,
                close_fds=True)
        except OSError as error:
            return CommandResult(127, [f"cannot run {self.words[0]}: {error.strerror}"], 0)
        reader = OutputReader(process.stdout, region)
        reader.start()
        try:
            returncode: int | None = process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            returncode = None
            _stop(process)
        # A process that left the group may still hold the output open: closing
        # it here would wait on the blocked reader, so the reader (a daemon
        # thread) is left to it and what it read is taken now.
        reader.join(DRAIN_TIME)
        tail, total = reader.finish(
            None if returncode is not None
            else f"stopped after {self.timeout:g} s (validate_timeout)")
        return CommandResult(returncode, tail, total)


def _stop(process: subprocess.Popen) -> None:
    """Kill the command and every process of its session's group."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


class OutputReader(threading.Thread):
    """Reads a command's output as it comes: logged up to :data:`MAX_LOGGED` bytes,
    the last :data:`TAIL_LINES` lines kept (escaped, cut at :data:`LONGEST_LINE`)."""

    def __init__(self, stream: IO[bytes] | None, region: str) -> None:
        super().__init__(daemon=True)
        # The region's log is chosen by a context variable (glancesync.runlog).
        self.context = contextvars.copy_context()
        self.stream = stream
        self.region = region
        self.total = 0
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.lock = threading.Lock()
        self.finished = False

    def finish(self, last: str | None = None) -> tuple[list[str], int]:
        """The last lines (``last`` added) and the bytes read; later output is ignored."""
        with self.lock:
            self.finished = True
            if last is not None:
                self.tail.append(last)
            return list(self.tail), self.total

    def run(self) -> None:
        self.context.run(self._read)

    def _read(self) -> None:
        if self.stream is None:
            return
        try:
            while True:
                chunk = self.stream.readline(64 * 1024)
                if not chunk:
                    break
                self._line(chunk)
        except (OSError, ValueError):  # a stream closed or failing under it
            return

    def _line(self, chunk: bytes) -> None:
        with self.lock:
            if not self.finished:
                self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        before, self.total = self.total, self.total + len(chunk)
        line = printable(chunk.decode("utf-8", "replace").rstrip("\r\n"))[:LONGEST_LINE]
        self.tail.append(line)
        if self.total <= MAX_LOGGED:
            LOG.info("%s: validate_command: %s", self.region, line)
        elif before <= MAX_LOGGED:
            LOG.warning("%s: validate_command: output beyond %d bytes not logged",
                        self.region, MAX_LOGGED)


def mark_output(tail: list[str]) -> str:
    """The last lines as one mark value (the end kept, at most :data:`MARK_LENGTH`)."""
    return " | ".join(tail)[-MARK_LENGTH:]
