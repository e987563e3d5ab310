"""The documentation stays true: examples run, options and statuses match the code.

Every programmer's guide example runs as a subprocess against a fresh demo
federation; every command-line option, configuration option, exit status
and error class named in the code must be documented (and nothing
documented that the code lacks); the docs build with warnings as errors.
"""
from __future__ import annotations

import argparse
import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from glancesync import cli, errors
from glancesync.condition import Condition
from glancesync.config import main_options, target_options
from glancesync.demo import build_federation
from glancesync.errors import ExitStatus
from glancesync.facade import GlanceSync
from glancesync_scripts import backup, printimages, sync, watch

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
MANUAL = DOCS / "manual"
SAMPLE = ROOT / "conf" / "glancesync.conf.sample"
#: The options of options.py and of the built-in backends, by name.
MAIN_OPTIONS = [option.name for option in main_options()]
TARGET_OPTIONS = [option.name for option in target_options()]

#: What each example must print (a regular expression searched in stdout).
EXPECTED_OUTPUT = {
    "example_constructor.py": r"master region: master:Master\n.*max_children: 2\n"
                              r"default max_children: 3",
    "example_get_regions.py": r"regions: \[('RegionA', )?'RegionB', 'RegionC'\]"
                              r".*with master: \['Master', ('RegionA', )?'RegionB'",
    "example_get_images_region.py": r"ubuntu-22\.04 +[0-9a-f-]{36} [0-9a-f]{32} public",
    "example_print_images_master_region.py": r"Master region Master.*cirros-machine",
    "example_print_images.py": r"\+ centos-7.*1 image\(s\) of RegionB are not in the master",
    "example_get_status.py": r"pending_rename +debian-12.*exit status would be 3"
                             r".*would upload cirros-kernel",
    "example_sync_region.py": r"dry run: .*5 uploaded.*sync: .*5 uploaded"
                              r".*in sync now: True",
    "example_sync.py": r"master:RegionC: 5 uploaded.*exit status: 0 \(OK\)",
    "example_backup.py": r"backup_master_RegionB\.jsonl: 2 image\(s\)"
                         r".*written: backup_master_RegionC\.jsonl",
    "example_restore_backup.py": r"dry run: 1 image\(s\) would be restored"
                                 r".*type is back to: baseimage",
    "example_update_metadata_image.py": r"before: nid = 100.*after: nid = 101 "
                                        r"os_distro = None min_ram = 512",
    "example_delete_image.py": r"deleted centos-7 .*True\nremaining in RegionB: "
                               r"\['ubuntu-22\.04'\]",
    "example_adapters.py": r"master:Master: 7 image\(s\).*read cirros-\w+: \d+ bytes",
    "example_whole_image.py": r"copy [0-9a-f-]{36}: tags \['lts'\], hidden True\n"
                              r"error_deactivated \(needs_operator\): regional copy .*"
                              r"after the sync: active, 0 uploaded",
    "example_json_status_report.py": r'"exit_status": 3.*"master:RegionA": \[.*"pending_upload"',
    "example_sync_one_image.py": r"master:RegionA: 1 uploaded, 0 updated; ubuntu-22\.04 is ok",
    "example_sync_images.py": r"master:RegionA: upload ubuntu-22\.04\n.*"
                              r"while the lock is held: another glancesync run",
    "example_custom_selection.py": r"RegionA: cirros-kernel, cirros-machine, cirros-ramdisk\n",
    "example_run_report.py": r"dry_run limited to \['ubuntu-\*'\]: dry run of 3 region"
                             r".*master:RegionA: upload ubuntu-22\.04: done, 3145728 bytes"
                             r".*master:RegionB: update_metadata ubuntu-22\.04: done, 0",
    "example_stop.py": r"stopped: stopped: shutting down\nmaster:RegionA: 0 uploaded, 5 "
                       r"operation\(s\) not done\n.*master:RegionC: not synchronised: stopped: "
                       r"shutting down\nexit status: 130 \(INTERRUPTED\)\n"
                       r"images left unfinished: \[\]",
    "example_watch.py": r"listener pool: glancesync-watch\nleader election: glancesync-watch\n"
                        r"after the first reconciliation: bus down, leader True\n"
                        r"stopped; RegionA: cirros-kernel.*ubuntu-22\.04",
    "example_errors.py": r"unknown region: .*Atlantis.*exit status: 2 USAGE"
                         r".*section: main option: max_children",
}


def _text(*parts: str) -> str:
    return (DOCS.joinpath(*parts)).read_text(encoding="utf-8")


# --- examples -----------------------------------------------------------------

def test_every_example_has_an_expectation():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs_against_demo_federation(name, tmp_path):
    config = build_federation(tmp_path / "demo")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    env.pop("GLANCESYNC_CONFIG", None)
    done = subprocess.run([sys.executable, str(EXAMPLES / name), str(config)],
                          capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(EXPECTED_OUTPUT[name], done.stdout, re.DOTALL), done.stdout


def test_every_example_is_shown_in_the_guide():
    guide = _text("programmer.rst")
    for path in EXAMPLES.glob("*.py"):
        assert f".. literalinclude:: examples/{path.name}" in guide, path.name


def _public_methods() -> list[str]:
    return sorted(name for name, value in vars(GlanceSync).items()
                  if not name.startswith("_") and (callable(value) or isinstance(value, property)))


def test_every_public_method_is_documented_and_exercised():
    guide = _text("programmer.rst")
    examples = "\n".join(p.read_text(encoding="utf-8") for p in EXAMPLES.glob("*.py"))
    for name in _public_methods():
        assert f"``{name}" in guide, f"{name} is not described in programmer.rst"
        assert re.search(rf"\.{name}\b", examples), f"no example uses {name}"


# --- commands -------------------------------------------------------------------

def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """The options ``--help`` shows (a hidden former name, like ``--output``, is not)."""
    return {s for action in parser._actions for s in action.option_strings
            if action.help != argparse.SUPPRESS}


def _common_options() -> set[str]:
    parser = argparse.ArgumentParser()
    cli.add_common_options(parser)
    return _option_strings(parser)


def _command_pages() -> str:
    """commands.rst (common options, exit statuses) and the page of each command."""
    pages = sorted((ROOT / "docs" / "manual" / "commands").glob("*.rst"))
    assert pages, "docs/manual/commands/ holds no page"
    return "\n".join([_text("manual", "commands.rst"),
                      *(page.read_text(encoding="utf-8") for page in pages)])


def _documented_options() -> dict[str, set[str]]:
    """Program name -> options of its ``.. option::`` directives in the command pages."""
    result: dict[str, set[str]] = {}
    program = None
    for line in _command_pages().splitlines():
        match = re.match(r"\.\. program:: (\S+)", line)
        if match:
            program = match.group(1)
            result.setdefault(program, set())
            continue
        match = re.match(r"\.\. option:: (.*)", line)
        if match:
            assert program is not None, line
            result[program] |= set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", match.group(1)))
    return result


@pytest.mark.parametrize("module", [sync, printimages, backup, watch], ids=lambda m: m.PROG)
def test_command_options_match_the_parser(module):
    documented = _documented_options()
    parser = module.build_parser()
    own = _option_strings(parser) - _common_options()
    assert documented.get(module.PROG) == own
    assert _common_options() <= _option_strings(parser)
    for action in parser._actions:
        if not action.option_strings:
            assert f".. option:: {action.metavar}" in _command_pages()


def test_common_options_are_documented():
    assert _documented_options()["common"] == _common_options()


def test_console_commands_are_documented():
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    commands = re.findall(r'"(glancesync-[a-z]+) = ', setup)
    assert len(commands) == 4
    text = _command_pages()
    for command in commands:
        assert f".. program:: {command}" in text


# --- exit statuses and errors ------------------------------------------------------

def test_exit_statuses_match_the_enum():
    text = _text("manual", "commands.rst")
    rows = re.findall(r"^(\d+)\s+``([A-Z_]+)``\s+\S", text, re.MULTILINE)
    assert {(int(v), n) for v, n in rows} == {(s.value, s.name) for s in ExitStatus}
    assert len(rows) == len(ExitStatus)


def test_exit_statuses_match_the_help_text():
    help_rows = set(re.findall(r"^  (\d+)  ", cli.EXIT_STATUS_HELP, re.MULTILINE))
    assert help_rows == {str(s.value) for s in ExitStatus}


def test_error_table_matches_the_classes():
    rows = re.findall(r"^``(\w+Error|\w+Failure)``\s+(\d+)\s", _text("programmer.rst"),
                      re.MULTILINE)
    assert rows
    documented = {name: int(status) for name, status in rows}
    classes = {name: cls for name, cls in vars(errors).items()
               if isinstance(cls, type) and issubclass(cls, errors.GlanceSyncError)}
    assert set(documented) == set(classes)
    for name, status in documented.items():
        assert classes[name].exit_status == status, name


# --- configuration reference ----------------------------------------------------------

def _reference_entries() -> dict[str, str]:
    """Option -> text of its entry in configuration.rst (definition lists)."""
    text = _text("manual", "configuration.rst")
    entries = {}
    for match in re.finditer(r"^``(\w+)``\n((?:   .*\n|\n)+)", text, re.MULTILINE):
        assert match.group(1) not in entries, f"{match.group(1)} documented twice"
        entries[match.group(1)] = match.group(2)
    return entries


def test_every_option_has_one_reference_entry_with_a_default():
    entries = _reference_entries()
    assert set(entries) == set(MAIN_OPTIONS) | set(TARGET_OPTIONS)
    for option, body in entries.items():
        assert "Default:" in body, option


def test_every_option_declares_a_help_text():
    for option in (*main_options(), *target_options()):
        assert option.help, option.name


def test_main_options_are_under_the_main_section():
    text = _text("manual", "configuration.rst")
    main = text[text.index("The ``[main]`` section"):text.index("Target sections")]
    for option in MAIN_OPTIONS:
        assert f"\n``{option}``\n" in main, option


def test_reference_defaults_match_the_sample():
    entries = _reference_entries()
    defaults = {}
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("[") and line.strip() not in ("[main]", "[DEFAULT]"):
            break  # the target sections below hold examples, not defaults
        # "# option = value": one token; longer values are prose or examples.
        match = re.match(r"^#\s*(\w+)\s*=\s*(\S+)\s*$", line)
        if match and match.group(1) in entries:
            defaults[match.group(1)] = match.group(2)
    assert len(defaults) >= 8  # the sample shows its defaults this way
    for option, value in defaults.items():
        body = " ".join(entries[option].split())
        assert f"Default: ``{value}``" in body, f"{option}: sample says {value}"


def _declared_default(option) -> str:
    """How the sample and the manual write an option's declared default ('' for none)."""
    value = option.default
    if value is None or (isinstance(value, (list, frozenset, set)) and not value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if option.kind == "size" and isinstance(value, int) and value % 1024 ** 3 == 0:
        return f"{value // 1024 ** 3}G"  # as one writes it, not in bytes
    return str(value)


def _sample_lines() -> dict[str, str]:
    """``# option = value`` lines of the sample's [main] and [DEFAULT], first ones."""
    found: dict[str, str] = {}
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("[") and line.strip() not in ("[main]", "[DEFAULT]"):
            break
        match = re.match(r"^#\s*(\w+)\s*=\s*(.*?)\s*$", line)
        if match:
            found.setdefault(match.group(1), match.group(2))
    return found


def test_sample_and_reference_state_each_declared_default():
    """The option table is the one description: each default is stated as declared."""
    sample, entries = _sample_lines(), _reference_entries()
    active = set(re.findall(r"^(\w+)\s*=", SAMPLE.read_text(encoding="utf-8"), re.MULTILINE))
    for option in (*main_options(), *target_options()):
        expected = _declared_default(option)
        if option.name not in sample and option.name in active and not expected:
            continue  # required, set in the sample (master_region)
        assert sample.get(option.name) == expected, \
            f"{option.name}: the sample shows {sample.get(option.name)!r}, the option" \
            f" table declares {expected!r}"
        if expected:
            body = " ".join(entries[option.name].split())
            assert f"Default: ``{expected}``" in body, option.name


def test_user_documents_name_no_developer_only_text():
    """Users have the manual and the sample, not the project's specification."""
    texts = [SAMPLE.read_text(encoding="utf-8"),
             *(path.read_text(encoding="utf-8") for path in MANUAL.glob("*.rst"))]
    for text in texts:
        assert not re.search(r"\bSPEC\b", text)


def test_no_page_mentions_the_former_output_option():
    """``--output`` is a hidden former name of ``--format`` (issue 22)."""
    pages = [*MANUAL.rglob("*.rst"), DOCS / "programmer.rst", ROOT / "README.rst"]
    for path in pages:
        text = path.read_text(encoding="utf-8").replace("qemu-img info --output=json", "")
        assert "--output" not in text, path


def test_sample_options_are_all_in_the_reference():
    parser = configparser.ConfigParser(interpolation=None)
    text = SAMPLE.read_text(encoding="utf-8")
    commented = set(re.findall(r"^#\s*(\w+)\s*=", text, re.MULTILINE))
    parser.read_string(text)
    active = {k for s in parser.sections() for k in parser[s]}
    known = set(MAIN_OPTIONS) | set(TARGET_OPTIONS)
    assert (commented | active) & known == known


def test_condition_examples_are_valid():
    text = _text("manual", "selection.rst")
    expressions = re.findall(r"^   metadata_condition = (.+)$", text, re.MULTILINE)
    assert len(expressions) >= 5
    for expression in expressions:
        Condition(expression)  # raises ConfigError if the docs show a broken one


def test_statuses_table_lists_every_status():
    from glancesync.plan import Status
    text = _text("manual", "synchronisation.rst")
    documented = set(re.findall(r"^   \* - ``(\w+)``$", text, re.MULTILINE))
    assert documented == {s.value for s in Status}


# --- build ---------------------------------------------------------------------------

def test_docs_build_without_warnings(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", "-d",
         str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr + done.stdout
    assert (tmp_path / "html" / "programmer.html").is_file()
    assert (tmp_path / "html" / "manual" / "configuration.html").is_file()
    # The reference cites no document users do not have (issue 22), and shows
    # every parameter of the backup method.
    api = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    assert not re.search(r"\bSPEC\b", api)
    assert re.search(r"backup_glancemetadata_region.{0,400}folder", api, re.DOTALL)


def test_version_is_the_changelogs_first_entry():
    version = re.search(r'version="([^"]+)"', (ROOT / "setup.py").read_text()).group(1)
    changelog = (ROOT / "CHANGELOG.rst").read_text(encoding="utf-8")
    first = re.search(r"^(\d+\.\d+\.\d+) ", changelog, re.MULTILINE)
    assert first and first.group(1) == version
