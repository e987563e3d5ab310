"""Fuzz of the configuration loader and of the sync script (issue 15).

Property-based (hypothesis), derandomized so that every run tries the same
inputs, and bounded (a number of examples per test, a hang guard per test).
The inputs: INI texts built from the options' grammar with hostile values,
mutations of a valid file, random bytes (mostly not UTF-8), random
``--config`` overrides and ``OS_*`` environments. The only outcomes allowed:

* :func:`glancesync.config.load_config` returns a configuration or raises a
  :class:`~glancesync.errors.GlanceSyncError` (a ``ConfigError`` mostly);
* ``glancesync-sync`` (``main(argv)``) with ``--show-regions`` or
  ``--dry-run`` on local regions exits with a documented status, with no
  traceback and at most one error line.

Each test prints the counts: inputs tried, clean errors, tracebacks and
hangs (an input taking more than :data:`HANG_SECONDS`); the last two must
be 0.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glancesync.config import load_config
from glancesync.demo import build_federation
from glancesync.errors import GlanceSyncError
from glancesync.redaction import REDACTOR
from glancesync_scripts import sync

#: An input that takes longer is counted as a hang (normal inputs take ms).
HANG_SECONDS = 10.0
#: Exit statuses documented for the scripts (0 to 5).
DOCUMENTED_STATUSES = set(range(6))

MAIN_OPTIONS = ["master_region", "preferable_order", "max_children", "images_dir",
                "cache_dir", "cache_max_size", "stalled_upload_age", "run_dir", "retries",
                "retry_wait"]
TARGET_OPTIONS = [
    "type", "path", "regions", "project", "cloud", "auth_url", "username", "password",
    "project_name", "project_id", "user_domain_name", "project_domain_name",
    "application_credential_id", "application_credential_secret", "user", "credential",
    "cacert", "insecure", "interface", "forcesyncs", "metadata_condition", "metadata_set",
    "replace", "rename", "dontupdate", "ignore_regions", "only_tenant_images",
    "support_obsolete_images", "obsolete_syncprops", "list_images_timeout",
]
SECTIONS = ["main", "DEFAULT", "master", "other", "Main", "MASTER", "default", "x y",
            "main.sub", "", " "]

HOSTILE_EXPRESSIONS = [
    "image.is_public", "image.user_properties.get('type') == 'baseimage'",
    "not " * 2000 + "True", "1" + "+1" * 3000, "(" * 300 + "1" + ")" * 300,
    "len('%*d' % (4000000000, 0)) > 0", "len(str([[0] * 100000] * 100000)) > 0",
    "('a' * 100000).replace('', 'b' * 100000) == ''", "image.name.format(1)",
    "len(metadata_set).bit_length()", "image.name.split('-')[9] == 'x'",
    "int(1e999) > 0", "1 / 0", "lambda: 1", "__import__('os')", "image.__class__",
    "[c for c in metadata_set]", "f'{image}'", "image.name\x00", "x := 1", "image.name +",
    "-" * 20000 + "1",
]
HOSTILE_VALUES = [
    "", " ", "nan", "NaN", "inf", "-inf", "1e999", "-1e999", "-1", "0", "-0", "0.0",
    "9" * 400, "9" * 5000, "0x10", "1_000", "\uff11\uff12", "10G", "10GiB", "1.5T",
    "999999999999999P", "1e3", "true", "yes", "on", "maybe", "local", "keystone",
    "public", "admin", "a,b,,c", ", ,", "any", "d41d8cd98f00b204e9800998ecf8427e", "%",
    "%(x)s", "${x}", "\\", "'", '"', "[", "]", "=", ":", ";", "#", "\t", "\u202e", "a\x00b",
    "\x1b[31m", "x" * 100_000, "\u00fc" * 5000, "a\rb", "master:RegionA", "Master",
    "RegionA, RegionB", "http://127.0.0.1:9/v3", "admin,cGFzcw==,http://127.0.0.1:9/v3,demo",
    "admin,not base64!,x,y", "a,b,c", *HOSTILE_EXPRESSIONS,
]

SMALL_TEXT = st.text(max_size=30)
VALUES = st.one_of(st.sampled_from(HOSTILE_VALUES), SMALL_TEXT,
                   st.from_regex(r"-?[0-9]{1,30}(\.[0-9]{0,10})?([eE][-+]?[0-9]{1,4})?"
                                 r"[kKmMgGtTpP]?(i?[bB])?", fullmatch=True))
KEYS = st.one_of(st.sampled_from(MAIN_OPTIONS + TARGET_OPTIONS),
                 st.sampled_from(MAIN_OPTIONS + TARGET_OPTIONS).map(str.upper), SMALL_TEXT)


@st.composite
def ini_lines(draw) -> list[str]:
    """Lines of one section: options, comments, continuations, garbage."""
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        key, value = draw(KEYS), draw(VALUES)
        lines.append(draw(st.sampled_from([
            f"{key} = {value}", f"{key}={value}", f"{key}: {value}", f"{key} {value}",
            f"{key} =", f"  {value}", f"# {value}", f"; {key}", "", f"{value}",
        ])))
    return lines


@st.composite
def ini_texts(draw) -> str:
    """A configuration written from the grammar of the options, values hostile."""
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.one_of(st.sampled_from(SECTIONS), SMALL_TEXT))
        lines.append(draw(st.sampled_from([f"[{name}]", f"[ {name} ]", f"[{name}",
                                           f"{name}]", f"[[{name}]]"])))
        lines.extend(draw(ini_lines()))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


def valid_text(path: Path | str = "/nonexistent/regions") -> str:
    """A complete configuration: a local master target and a Keystone one."""
    return (f"[main]\nmaster_region = Master\npreferable_order = RegionA, RegionB\n"
            f"max_children = 2\ncache_max_size = 10G\nstalled_upload_age = 3600\n\n"
            f"[DEFAULT]\nmetadata_set = nid, type\n\n"
            f"[master]\ntype = local\npath = {path}\nproject = demo-project\n"
            f"metadata_condition = image.is_public and 'nid' in image.user_properties\n"
            f"rename = any\n\n"
            f"[other]\nauth_url = http://127.0.0.1:9/v3\nusername = admin\n"
            f"password = s3cret-pass\nproject_name = demo\nonly_tenant_images = false\n")


@st.composite
def mutated_texts(draw, base: str) -> str:
    """``base`` after a few random edits: cuts, insertions, line swaps, hostile values."""
    text = base
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["cut", "insert", "duplicate", "swap", "value"]))
        lines = text.split("\n")
        if kind == "cut" and text:
            start = draw(st.integers(0, len(text) - 1))
            text = text[:start] + text[start + draw(st.integers(1, 40)):]
        elif kind == "insert":
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.one_of(VALUES, st.sampled_from(
                ["\n", "[", "]", "=", "\n[main]\n", "\n[master]\n", "\n  continued"]))) + text[at:]
        elif kind == "duplicate":
            line = draw(st.integers(0, len(lines) - 1))
            lines.insert(line, lines[line])
            text = "\n".join(lines)
        elif kind == "swap":
            first = draw(st.integers(0, len(lines) - 1))
            second = draw(st.integers(0, len(lines) - 1))
            lines[first], lines[second] = lines[second], lines[first]
            text = "\n".join(lines)
        else:
            line = draw(st.integers(0, len(lines) - 1))
            key = lines[line].partition("=")[0].strip() or draw(KEYS)
            lines[line] = f"{key} = {draw(VALUES)}"
            text = "\n".join(lines)
    return text


def with_option(text: str, section: str, key: str, value: str) -> str:
    """``text`` with ``key = value`` set in ``[section]`` (replaced or added)."""
    lines = text.split("\n")
    header = f"[{section}]"
    if header not in lines:
        lines += ["", header]
    start = lines.index(header) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    kept = [line for line in lines[start:end] if line.partition("=")[0].strip() != key]
    return "\n".join(lines[:start] + [f"{key} = {value}"] + kept + lines[end:])


#: The valid configuration with one option (of its section or not) set to a
#: hostile value: every option meets every kind of value.
ONE_HOSTILE_OPTION = st.builds(
    lambda section, key, value: with_option(valid_text(), section, key,
                                            value.replace("\n", " ").replace("\r", " ")),
    st.sampled_from(["main", "master", "other", "DEFAULT"]),
    st.sampled_from(MAIN_OPTIONS + TARGET_OPTIONS), VALUES)

OVERRIDES = st.lists(st.one_of(
    st.builds(lambda section, key, value: f"{section}.{key}={value}",
              st.sampled_from(SECTIONS), KEYS, VALUES),
    st.builds(lambda key, value: f"{key}={value}", KEYS, VALUES),
    st.sampled_from(["=", ".=", "a.=b", ".a=b", "a.b.c=d", "noequal", "main.=x", " = ",
                     "\x00glancesync-no-default.x=1", "DEFAULT.password=x"]),
    SMALL_TEXT,
), max_size=4)

ENVIRONMENTS = st.sampled_from([
    {},
    {"OS_AUTH_URL": "http://127.0.0.1:9/v3", "OS_USERNAME": "u", "OS_PASSWORD": "p4ss",
     "OS_PROJECT_NAME": "p", "OS_REGION_NAME": "Master"},
    {"OS_AUTH_URL": "http://127.0.0.1:9/v3", "OS_USERNAME": "u"},
    {"OS_CLOUD": "nowhere", "OS_REGION_NAME": "Master"},
    {"OS_APPLICATION_CREDENTIAL_ID": "id", "OS_AUTH_URL": "x"},
    {"OS_REGION_NAME": "\x00"},
])


@st.composite
def loader_inputs(draw) -> tuple[object, list[str], dict[str, str]]:
    """(content, overrides, environment): content is text, bytes, or None."""
    content = draw(st.one_of(
        ini_texts(),
        ONE_HOSTILE_OPTION,
        ONE_HOSTILE_OPTION,
        mutated_texts(valid_text()),
        st.binary(max_size=400),
        mutated_texts(valid_text()).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.builds(lambda text, junk, at: (lambda data: data[:at] + junk + data[at:])(
            text.encode()), st.just(valid_text()), st.binary(min_size=1, max_size=8),
            st.integers(0, 400)),
        st.none(),
    ))
    return content, draw(OVERRIDES), dict(draw(ENVIRONMENTS))


class Tally:
    """Counts of a fuzz run, printed at the end of the test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []

    def time(self, started: float, what: str) -> None:
        elapsed = time.monotonic() - started
        if elapsed > HANG_SECONDS:
            self.counts["hangs"] += 1
            self.failures.append(f"hang ({elapsed:.0f} s): {what}")

    def script_exit(self, status: int, error_lines: int, what: str) -> None:
        """Count a script's documented exit ``status``; 2 (a clean error) prints one line."""
        self.counts[f"exit {status}"] += 1
        if status == 2:
            self.counts["clean errors"] += 1
            if error_lines != 1:
                self.failures.append(f"not one error line for {what}")
        else:
            self.counts["accepted"] += 1

    def finish(self, request: pytest.FixtureRequest, minimum_inputs: int) -> None:
        """Report; no failure, enough inputs, and both sides reached (accepted, refused)."""
        self.report(request)
        assert not self.failures, "\n".join(self.failures[:10])
        assert self.counts["inputs"] >= minimum_inputs
        assert self.counts["clean errors"] and self.counts["accepted"]

    def report(self, request: pytest.FixtureRequest) -> str:
        counts = self.counts
        details = ", ".join(f"{key}: {value}" for key, value in sorted(counts.items())
                            if key not in ("inputs", "clean errors", "accepted", "tracebacks",
                                           "hangs"))
        line = (f"fuzz {self.name}: {counts['inputs']} inputs tried, "
                f"{counts['clean errors']} clean errors, {counts['accepted']} accepted, "
                f"{counts['tracebacks']} tracebacks, {counts['hangs']} hangs"
                + (f" ({details})" if details else ""))
        for key, value in sorted(counts.items()):
            request.node.user_properties.append((f"fuzz {key}", value))
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None:
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                reporter.write_line("")
                reporter.write_line(line)
        return line


def fuzz_settings(examples: int) -> settings:
    """Fixed seed, no example database, no per-example deadline (the tally times them)."""
    return settings(derandomize=True, database=None, deadline=None, max_examples=examples,
                    suppress_health_check=list(HealthCheck))


@pytest.mark.timeout(600)  # a hang guard for the whole run (about 20 s)
def test_fuzz_configuration_loader(tmp_path, request):
    tally = Tally("load_config")
    file = tmp_path / "glancesync.conf"

    @fuzz_settings(1500)
    @given(loader_inputs())
    def run(case):
        check(*case)

    def check(content, overrides, environ):
        case = (content, overrides, environ)
        tally.counts["inputs"] += 1
        started = time.monotonic()
        try:
            if content is None:  # the file named by $GLANCESYNC_CONFIG
                file.write_bytes(valid_text().encode())
                os.chmod(file, 0o600)
                config = load_config(None, overrides, {**environ, "GLANCESYNC_CONFIG": str(file)})
            elif isinstance(content, bytes):
                stream = io.BytesIO(content)
                stream.name = str(file)
                config = load_config(stream, overrides, environ)
            else:
                config = load_config(io.StringIO(content), overrides, environ)
            assert config.main.master_region and config.targets
            tally.counts["accepted"] += 1
        except GlanceSyncError as error:
            tally.counts["clean errors"] += 1
            # The scripts print it on one line (checked below); counted here.
            tally.counts["messages of several lines"] += "\n" in str(error)
        except Exception as error:  # noqa: BLE001 - any other is a finding
            tally.counts["tracebacks"] += 1
            tally.failures.append(f"{type(error).__name__}: {error} for {case!r:.300}")
        finally:
            tally.time(started, repr(case)[:300])

    run()
    # And a sweep: every option, in its own section and in another, meets
    # every hostile value, in the file and as an override.
    for key in MAIN_OPTIONS + TARGET_OPTIONS:
        sections = ["main", "master"] if key in MAIN_OPTIONS else ["master", "DEFAULT", "main"]
        for section in sections:
            for value in HOSTILE_VALUES:
                flat = value.replace("\n", " ").replace("\r", " ")
                check(with_option(valid_text(), section, key, flat), [], {})
                check(valid_text(), [f"{section}.{key}={value}"], {})
    tally.report(request)
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert tally.counts["inputs"] >= 10_000


@pytest.fixture
def isolated_process_state(tmp_path, monkeypatch):
    """Undo what ``main()`` changes in this process: logging, redactor, environment."""
    for key in list(os.environ):
        if key.startswith(("OS_", "GLANCESYNC_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    manager = logging.Logger.manager
    saved = (list(root.handlers), root.level, logging.getLogRecordFactory(),
             {name: logger.level for name, logger in manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}, list(REDACTOR.secrets))

    def restore() -> None:
        handlers, level, factory, levels, secrets = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.setLogRecordFactory(factory)
        for name, logger in manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))
        logging.captureWarnings(False)
        REDACTOR.secrets[:] = secrets

    yield restore
    restore()


#: Options a script run may be given: everything but the paths (a dry run of
#: a mutated path could read any folder of the machine) and the Keystone URLs
#: (only a closed loopback port, never another host).
SCRIPT_KEYS = st.sampled_from([k for k in MAIN_OPTIONS + TARGET_OPTIONS
                               if k not in ("path", "images_dir", "cache_dir", "run_dir",
                                            "cacert", "auth_url")])
SCRIPT_VALUES = VALUES.filter(lambda value: "://" not in value or "127.0.0.1:9/" in value)


@st.composite
def script_inputs(draw, text: str) -> tuple[bytes, list[str]]:
    """(file content, argv after --config-file FILE), from the configuration ``text``."""
    family = draw(st.sampled_from(["bytes", "as is", "options", "options", "condition"]))
    if family == "bytes":
        data = draw(st.one_of(st.binary(max_size=300), st.builds(
            lambda junk, at: text.encode()[:at] + junk + text.encode()[at:],
            st.binary(min_size=1, max_size=8), st.integers(0, len(text)))))
    else:
        lines = text.split("\n")
        edits = {"as is": 0, "condition": 1}.get(family, draw(st.integers(1, 3)))
        for _ in range(edits):
            section = draw(st.sampled_from(["[main]", "[master]", "[DEFAULT]"]))
            if section not in lines:
                lines.append(section)
            if family == "condition":
                line = f"metadata_condition = {draw(st.sampled_from(HOSTILE_EXPRESSIONS))}"
            else:
                key, value = draw(SCRIPT_KEYS), draw(SCRIPT_VALUES)
                line = draw(st.sampled_from([f"{key} = {value}", f"{key} {value}",
                                             f"  {value}", draw(SMALL_TEXT)]))
            lines.insert(lines.index(section) + 1, line.replace("\n", " ").replace("\r", " "))
        data = "\n".join(lines).encode("utf-8", "surrogatepass")
    overrides = draw(st.lists(st.builds(
        lambda section, key, value: f"{section}{key}={value}",
        st.sampled_from(["", "main.", "master.", "DEFAULT.", "other."]), SCRIPT_KEYS,
        SCRIPT_VALUES), max_size=2))
    action = draw(st.sampled_from(["--show-regions", "--dry-run", "--dry-run"]))
    regions = draw(st.lists(st.sampled_from(["RegionA", "master:RegionB", "master:",
                                             "Nowhere", "other:", "RegionC"]), max_size=2))
    argv = [action, "--no-progress", *regions]
    for override in overrides:
        argv += ["--config", override]
    return data, argv


@pytest.mark.timeout(900)  # a hang guard for the whole run (about 1 min)
def test_fuzz_sync_script_entry_point(tmp_path, request, isolated_process_state):
    federation = build_federation(tmp_path / "demo").read_text()
    tally = Tally("glancesync-sync main()")
    file = tmp_path / "fuzzed.conf"

    @fuzz_settings(500)
    @given(script_inputs(federation))
    def run(case):
        data, argv = case
        tally.counts["inputs"] += 1
        file.write_bytes(data)
        os.chmod(file, 0o600)
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = sync.main(["--config-file", str(file), *argv])
        except SystemExit as exit_:  # argparse's own usage errors
            status = exit_.code
        except Exception as error:  # noqa: BLE001 - escaped main(): a finding
            status = f"{type(error).__name__}: {error}"
        finally:
            isolated_process_state()
            tally.time(started, f"{argv!r} {data[:200]!r}")
        stderr = err.getvalue()
        # A note (targets left out of the run) is no error line.
        errors = [line for line in stderr.splitlines()
                  if line.startswith("glancesync-sync: error: ")]
        if status not in DOCUMENTED_STATUSES or "Traceback" in stderr:
            tally.counts["tracebacks"] += 1
            tally.failures.append(f"status {status!r} for {argv!r} {data[:300]!r}:"
                                  f" {stderr[-1500:]}")
            return
        tally.script_exit(status, len(errors), f"{argv!r} {data[:300]!r}: {stderr[-1500:]}")

    run()
    # The inputs reach both sides: runs that work and configurations refused.
    tally.finish(request, 400)


# --- what the fuzz found, kept as plain regressions ------------------------------

def run_sync(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` in this process: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = sync.main(argv)
    return status, err.getvalue()


def test_a_config_file_that_is_not_utf8_is_one_error_line(tmp_path, isolated_process_state):
    file = tmp_path / "latin1.conf"
    file.write_bytes("[main]\nmaster_region = R\u00e9gion\n".encode("latin-1"))
    status, stderr = run_sync(["--config-file", str(file), "--show-regions"])
    assert status == 2
    assert stderr == (f"glancesync-sync: error: {file}: the file is not UTF-8 text"
                      " (invalid continuation byte at byte 24)\n")


def test_an_error_quoting_a_newline_is_printed_on_one_line(tmp_path, isolated_process_state):
    file = tmp_path / "ok.conf"
    file.write_text(valid_text(tmp_path))
    file.chmod(0o600)  # a readable file is warned even under cron: one line more
    status, stderr = run_sync(["--config-file", str(file), "--config", "main.a\nb=1",
                               "--show-regions"])
    assert status == 2
    assert stderr.count("\n") == 1 and "[main] a\\nb: unknown option" in stderr


@pytest.mark.parametrize("overrides, words", [
    (["main.cache_max_size=" + "9" * 400], "invalid size"),
    (["\x00glancesync-no-default.x=1"], "invalid override"),
])
def test_values_that_crashed_the_loader(overrides, words):
    with pytest.raises(GlanceSyncError, match=words):
        load_config(io.StringIO(valid_text()), overrides, {})
