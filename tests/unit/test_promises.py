"""What the manual and the programmer's guide promise, as a newcomer meets it.

Each test is one place where the product once disagreed with its docs:
a configuration given by path, errors located where their values came
from, options that do not belong, retries of every command, the
readable-configuration warning under cron, the cache limit, the checksum
of printimages, the demo's folder, and smaller mismatches.
"""
from __future__ import annotations

import io
import logging
import os
import re
import textwrap
from pathlib import Path

import pytest

from glancesync.config import load_config
from glancesync.errors import ConfigError
from glancesync.facade import GlanceSync

LOCAL = """\
[main]
master_region = Master

[master]
type = local
path = {path}
"""


def local_config(tmp_path: Path, extra: str = "") -> Path:
    """A configuration file of one local target whose folder holds region Master."""
    (tmp_path / "regions" / "Master").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "glancesync.conf"
    path.write_text(LOCAL.format(path=tmp_path / "regions") + textwrap.dedent(extra))
    os.chmod(path, 0o600)
    return path


# --- case 7: a configuration given by path --------------------------------------

@pytest.mark.parametrize("as_type", [str, Path], ids=["str", "PathLike"])
def test_glancesync_takes_the_path_of_its_configuration(tmp_path, as_type):
    path = local_config(tmp_path)
    with GlanceSync(as_type(path), environ={}) as glancesync:
        assert glancesync.master_region == "master:Master"
        assert glancesync.config.path == str(path)


def test_a_missing_configuration_file_is_a_config_error(tmp_path):
    missing = tmp_path / "nowhere.conf"
    with pytest.raises(ConfigError) as caught:
        GlanceSync(str(missing), environ={})
    assert str(missing) in str(caught.value)
    assert "cannot read the configuration file" in str(caught.value)


def test_an_unreadable_configuration_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a configuration file|cannot read"):
        load_config(tmp_path)  # a folder


# --- case 6 and 11: the demo's folder and its help ------------------------------------

def _demo(*args: str, cwd: Path) -> "subprocess.CompletedProcess[str]":
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "glancesync.demo", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)


def test_the_demo_refuses_to_empty_a_folder_it_did_not_make(tmp_path):
    from glancesync.demo import main
    folder = tmp_path / "home"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    assert main(["--dir", str(folder)]) == 2
    assert (folder / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]


def test_the_demo_recreates_its_own_folder(tmp_path, capsys):
    from glancesync.demo import MARKER, main
    folder = tmp_path / "demo"
    assert main(["--dir", str(folder), ]) == 0
    assert (folder / MARKER).is_file()
    (folder / "leftover").write_text("from the first run")
    assert main(["--dir", str(folder)]) == 0
    assert not (folder / "leftover").exists()
    assert "(exit status 0)" in capsys.readouterr().out


def test_the_demo_refuses_a_file_as_its_folder(tmp_path, capsys):
    from glancesync.demo import main
    target = tmp_path / "a-file"
    target.write_text("kept")
    assert main(["--dir", str(target)]) == 2
    assert target.read_text() == "kept"
    assert "is not a folder" in capsys.readouterr().err


def test_the_demo_help_is_plain_text(tmp_path):
    done = _demo("--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "``" not in done.stdout and ":func:" not in done.stdout
    assert "--dir" in done.stdout


# --- case 4: cache_max_size -------------------------------------------------------------

def test_an_image_larger_than_cache_max_size_leaves_the_cache_after_the_run(tmp_path):
    from glancesync.demo import build_federation
    config = build_federation(tmp_path / "demo")
    with GlanceSync(config, overrides=["cache_max_size=1M"], environ={},
                    progress=False) as glancesync:
        result = glancesync.sync(["RegionA"])
    assert result.exit_status == 0
    assert result.bytes_downloaded >= 3 * 2 ** 20  # ubuntu-22.04 (3 MiB) went through it
    cached = [p for p in (tmp_path / "demo" / "cache").iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in cached) <= 2 ** 20, cached


def test_images_within_cache_max_size_stay_cached(tmp_path):
    from glancesync.demo import build_federation
    config = build_federation(tmp_path / "demo")
    with GlanceSync(config, overrides=["cache_max_size=100M"], environ={},
                    progress=False) as glancesync:
        glancesync.sync(["RegionA"])
    cached = [p for p in (tmp_path / "demo" / "cache").iterdir() if p.is_file()]
    assert sum(p.stat().st_size for p in cached) > 3 * 2 ** 20


# --- case 2: every command retries a refused Keystone -----------------------------------

KEYSTONE = "http://127.0.0.1:35357"


def _token_then(requests_mock, *failures: dict) -> None:
    """Keystone's token answers: ``failures`` first, then a token and its catalog."""
    from tests.unit.test_keystone import token_body
    requests_mock.post(f"{KEYSTONE}/v3/auth/tokens", [
        *failures, {"status_code": 201, "json": token_body(),
                    "headers": {"X-Subject-Token": "tok-1"}}])


KEYSTONE_CONF = f"""\
[main]
master_region = Master
retry_wait = 0

[master]
auth_url = {KEYSTONE}
username = admin
password = pw
project_name = admin
"""


def test_the_facade_retries_a_refused_keystone(requests_mock):
    import requests
    _token_then(requests_mock, {"exc": requests.exceptions.ConnectionError("refused")},
                {"status_code": 503, "json": {}})
    with GlanceSync(io.StringIO(KEYSTONE_CONF), environ={}) as glancesync:
        assert glancesync.get_regions() == ["RegionB", "RegionA"]
    assert requests_mock.call_count == 3


@pytest.mark.parametrize("command", ["sync", "printimages", "backup"])
def test_every_command_retries_a_refused_keystone(requests_mock, tmp_path, command, capsys):
    import importlib
    import requests
    module = importlib.import_module(f"glancesync_scripts.{command}")
    config = tmp_path / "ks.conf"
    config.write_text(KEYSTONE_CONF)
    os.chmod(config, 0o600)
    _token_then(requests_mock, {"exc": requests.exceptions.ConnectionError("refused")})
    # An unknown region: the catalog must be read (after the retry) to say so.
    status = module.main(["--config-file", str(config), "Atlantis"])
    assert "Atlantis" in capsys.readouterr().err
    assert status == 2
    assert requests_mock.call_count == 2


def test_a_refused_keystone_fails_after_the_retries(requests_mock):
    import requests
    from glancesync.errors import ConnectionFailure
    refused = {"exc": requests.exceptions.ConnectionError("refused")}
    _token_then(requests_mock, *[refused] * 5)
    with GlanceSync(io.StringIO(KEYSTONE_CONF), overrides=["retries=2"],
                    environ={}) as glancesync:
        with pytest.raises(ConnectionFailure, match="cannot connect to Keystone"):
            glancesync.get_regions()
    assert requests_mock.call_count == 3


# --- case 3: the readable-configuration warning reaches a cron mail --------------------

REMOTE = """
[remote]
auth_url = http://127.0.0.1:9/v3
username = sync
password = s3cret
project_name = images
"""


@pytest.mark.parametrize("quiet", [[], ["--quiet"]], ids=["cron", "quiet"])
@pytest.mark.parametrize("command", ["sync", "printimages", "backup"])
def test_a_readable_configuration_is_warned_once_even_under_cron(tmp_path, capsys, quiet,
                                                                 command):
    import importlib
    module = importlib.import_module(f"glancesync_scripts.{command}")
    config = local_config(tmp_path, REMOTE)
    os.chmod(config, 0o644)
    args = ["--show-regions"] if command == "sync" else []
    extra = ["--path", str(tmp_path)] if command == "backup" else []
    assert module.main(["--config-file", str(config), *quiet, *args, *extra]) == 0
    err = capsys.readouterr().err
    assert err.count("readable by other users") == 1, err
    assert f"chmod 600 {config}" in err
    assert "s3cret" not in err


def test_a_private_configuration_is_not_warned(tmp_path, capsys):
    from glancesync_scripts import sync
    config = local_config(tmp_path, REMOTE)
    # master: named: the run leaves no configured target out, so nothing to say.
    assert sync.main(["--config-file", str(config), "--show-regions", "master:"]) == 0
    assert capsys.readouterr().err == ""


def test_quiet_shows_entries_that_match_nothing(tmp_path, capsys):
    """Issue 22: an ignore_regions entry that matches no region means the
    configuration does not do what was meant: said under --quiet too."""
    from glancesync_scripts import sync
    config = local_config(tmp_path, "ignore_regions = Nowhere\n")
    assert sync.main(["--config-file", str(config), "--show-regions", "--quiet"]) == 0
    assert "ignore_regions of target master: 'Nowhere' matches no region" in \
        capsys.readouterr().err
    assert sync.main(["--config-file", str(config), "--show-regions", "-v"]) == 0
    assert "Nowhere" in capsys.readouterr().err


# --- case 5: printimages shows the checksum to copy -----------------------------------

def test_printimages_shows_the_checksum_of_a_conflicting_image(tmp_path, capsys):
    import hashlib
    import re
    from glancesync.demo import _data, build_federation
    from glancesync_scripts import printimages
    config = build_federation(tmp_path / "demo")
    assert printimages.main(["--config-file", str(config), "RegionC"]) == 0
    out = capsys.readouterr().out
    local_build = hashlib.md5(_data(8, 2 * 2 ** 20)).hexdigest()  # RegionC's debian-12
    line = next(line for line in out.splitlines() if "debian-12" in line)
    assert line.lstrip().startswith("!")
    assert re.search(rf"\s{local_build}$", line), line


# --- case 8: errors say where the value came from ---------------------------------------

def _error(tmp_path, extra: str = "", overrides=()) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(local_config(tmp_path, extra), overrides=overrides, environ={})
    return str(caught.value)


def test_an_override_making_a_section_is_blamed_on_the_override(tmp_path):
    message = _error(tmp_path, overrides=["mirror.path=/srv/mirror"])
    assert message.startswith("--config [mirror]"), message
    assert str(tmp_path) not in message.split(":")[0]


def test_a_bare_override_is_blamed_on_the_override(tmp_path):
    message = _error(tmp_path, overrides=["metadata_condition=image.size >"])
    assert message.startswith("--config metadata_condition:"), message


def test_a_sectioned_override_is_blamed_on_the_override(tmp_path):
    message = _error(tmp_path, overrides=["master.metadata_set=a", "main.retries=-1"])
    assert message.startswith("--config [main] retries:"), message


def test_a_default_of_the_file_is_blamed_on_default(tmp_path):
    text = "\n[DEFAULT]\nonly_tenant_images = perhaps\n"
    message = _error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'glancesync.conf'} [DEFAULT] only_tenant_images:")


def test_a_value_of_the_section_is_blamed_on_the_file(tmp_path):
    message = _error(tmp_path, "only_tenant_images = perhaps\n")
    assert message.startswith(f"{tmp_path / 'glancesync.conf'} [master] only_tenant_images:")


def test_a_shadowed_override_is_warned(tmp_path, caplog):
    path = local_config(tmp_path, "rename = abc123\n")
    with caplog.at_level(logging.WARNING, logger="glancesync"):
        config = load_config(path, overrides=["rename=def456"], environ={})
    assert config.targets["master"].rename == {"abc123"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("--config rename goes to [DEFAULT], but [master] sets its own rename"
               in w and "master.rename=VALUE" in w for w in warnings), warnings


def test_an_override_that_wins_is_not_warned(tmp_path, caplog):
    path = local_config(tmp_path, "rename = abc123\n")
    with caplog.at_level(logging.WARNING, logger="glancesync"):
        config = load_config(path, overrides=["master.rename=def456"], environ={})
    assert config.targets["master"].rename == {"def456"}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- case 9: options that do not belong ---------------------------------------------------

@pytest.mark.parametrize("option", ["path = /srv/images", "project = images",
                                    "regions = RegionA"])
def test_a_local_option_in_a_keystone_target_is_refused(tmp_path, option):
    message = _error(tmp_path, f"\n[other]\ncloud = prod\n{option}\n")
    name = option.split()[0]
    assert f"[other] {name}: an option of local targets" in message
    assert "type is keystone (the default)" in message


def test_path_without_type_local_gets_the_hint(tmp_path):
    message = _error(tmp_path, "\n[mirror]\npath = /srv/mirror\n")
    assert "[mirror] path:" in message and "add type = local" in message
    assert "no credentials" not in message


def test_a_keystone_option_in_a_local_target_is_refused(tmp_path):
    message = _error(tmp_path, "cloud = prod\n")
    assert "[master] cloud: an option of keystone targets" in message
    assert "type is local" in message and "(the default)" not in message


def test_another_backends_option_in_default_serves_its_targets(tmp_path):
    text = "\n[DEFAULT]\nproject = shared\n\n[other]\ncloud = prod\n"
    config = load_config(local_config(tmp_path, text), environ={})
    assert config.targets["master"].settings.project == "shared"
    assert config.targets["other"].backend == "keystone"


# --- case 11: smaller mismatches -------------------------------------------------------

def test_a_locked_region_is_reported_once(tmp_path, capsys):
    from glancesync.demo import build_federation
    from glancesync.lock import RegionLock
    from glancesync_scripts import sync
    config = build_federation(tmp_path / "demo")
    lock_dir = tmp_path / "locks"
    with GlanceSync(config, environ={}) as glancesync:
        name = glancesync.lock_name("RegionA")
    with RegionLock(lock_dir, name):
        status = sync.main(["--config-file", str(config), "--config",
                            f"lock_dir={lock_dir}", "RegionA"])
    out, err = capsys.readouterr()
    assert status == 5
    assert (out + err).count("another glancesync run is synchronising") == 1, out + err
    assert "master:RegionA: FAILED: another glancesync run" in out


def test_a_dry_run_summary_does_not_say_transferred(tmp_path, capsys):
    from glancesync.demo import build_federation
    from glancesync_scripts import sync
    config = build_federation(tmp_path / "demo")
    assert sync.main(["--config-file", str(config), "--dry-run", "RegionA"]) == 3
    out = capsys.readouterr().out
    assert "transferred" not in out
    assert re.search(r"master:RegionA: dry run done: .* [1-9]\d*\.\d MiB to transfer", out)
    assert sync.main(["--config-file", str(config), "RegionA"]) == 0
    assert re.search(r"master:RegionA: sync done: .* [1-9]\d*\.\d MiB transferred",
                     capsys.readouterr().out)


@pytest.mark.parametrize("text, size", [("1.5P", int(1.5 * 2 ** 50)), ("0.5K", 512),
                                        ("2TiB", 2 * 2 ** 40)])
def test_sizes_take_p_and_fractions_as_the_manual_says(tmp_path, text, size):
    config = load_config(local_config(tmp_path), overrides=[f"cache_max_size={text}"],
                         environ={})
    assert config.main.cache_max_size == size


def test_a_wrong_size_names_every_suffix(tmp_path):
    message = _error(tmp_path, overrides=["cache_max_size=10X"])
    assert "K, M, G, T or P" in message and "fractions" in message


def test_the_sample_and_the_manual_name_every_size_suffix():
    root = Path(__file__).resolve().parents[2]
    manual = (root / "docs" / "manual" / "configuration.rst").read_text()
    assert "``P``" in manual
    sample = (root / "conf" / "glancesync.conf.sample").read_text()
    assert "K, M, G, T or P" in sample


def test_region_not_found_error_names_the_region(tmp_path):
    from glancesync.errors import RegionNotFoundError
    with GlanceSync(local_config(tmp_path), environ={}) as glancesync:
        with pytest.raises(RegionNotFoundError) as caught:
            glancesync.get_images_region("Atlantis")
    assert caught.value.region == "master:Atlantis"


def test_the_installation_page_promises_nothing_to_come():
    root = Path(__file__).resolve().parents[2]
    assert "once ``bench/run.py`` is added" not in (
        root / "docs" / "manual" / "installation.rst").read_text()
    assert (root / "bench" / "run.py").is_file()


# --- one description of each option ------------------------------------------------------

def test_the_committed_sample_is_the_generators_output():
    import importlib.util
    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("options_doc", root / "docs" / "options_doc.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (root / "conf" / "glancesync.conf.sample").read_text() == generator.sample_text(), \
        "run: python docs/options_doc.py"
    table = generator.table_text()
    from glancesync.config import main_options, target_options
    for option in (*main_options(), *target_options()):
        assert f"   * - ``{option.name}``\n" in table, option.name
    secrets = sum(option.secret for option in (*main_options(), *target_options()))
    assert table.count("     - yes\n") == secrets


# --- the API reference ----------------------------------------------------------------------

def test_the_docs_fail_on_a_dead_reference():
    import ast
    root = Path(__file__).resolve().parents[2]
    tree = ast.parse((root / "docs" / "conf.py").read_text())
    values = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name)}
    assert ast.literal_eval(values["nitpicky"]) is True
    ignored = ast.literal_eval(values["nitpick_ignore"])
    assert all(not name.startswith("glancesync") for _, name in ignored), ignored


def test_every_public_name_has_an_api_entry():
    import glancesync
    root = Path(__file__).resolve().parents[2]
    api = (root / "docs" / "api.rst").read_text()
    for name in glancesync.__all__:
        assert re.search(rf"^\.\. auto(class|exception):: glancesync\.{name}$", api,
                         re.MULTILINE), name
    for name in ("plan.StatusCategory", "lock.RegionLock", "config.Config"):
        assert f":: glancesync.{name}\n" in api, name
