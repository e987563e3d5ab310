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
