"""A backend added from the tests (tests/memory_backend.py) works through GlanceSync.

Nothing of the library knows it: it is registered here, for the duration
of each test, and used with ``type = memory`` in a configuration, for a
sync, a status, secrets masking and errors naming it; alone or with a local
target.
"""
from __future__ import annotations

import hashlib
import io

import pytest

from glancesync import ExitStatus, GlanceSync, RegionRef, Status
from glancesync import backends
from glancesync.config import load_config, target_options
from glancesync.errors import ConfigError
from glancesync.redaction import REDACTOR
from tests import memory_backend
from tests.memory_backend import SPACES, MemoryRegionAdapter

TOKEN = "t0p-s3cret-t0ken"


@pytest.fixture
def memory_backend_registered():
    backends.register(memory_backend.BACKEND)
    SPACES.clear()
    yield memory_backend.BACKEND
    backends.unregister("memory")
    SPACES.clear()


def config_text(tmp_path, extra: str = "") -> str:
    return memory_backend.config_text(tmp_path, extra, token=TOKEN)


def put(gs: GlanceSync, region: str, name: str, data: bytes) -> None:
    adapter = gs.adapter(region)
    image = adapter.create_image(name, visibility="public", disk_format="raw",
                                 container_format="bare", properties={"os_distro": "x"})
    adapter.upload_data(image.id, [data], len(data))


@pytest.fixture
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))


def test_sync_and_status_through_a_backend_of_the_tests(memory_backend_registered,
                                                          tmp_path, lock_dir):
    data = b"memory image " * 1000
    with GlanceSync(io.StringIO(config_text(tmp_path)), progress=False) as gs:
        assert gs.get_regions() == ["RegionA", "RegionB"]
        put(gs, "Master", "cirros", data)
        assert gs.status().exit_status == ExitStatus.PENDING
        result = gs.sync()
        assert result.exit_status == ExitStatus.OK, result.failures
        assert result.results["master:RegionA"].uploaded == 1
        assert {s.status for s in gs.status().statuses} == {Status.OK}
        (copy,) = gs.adapter("RegionB").list_images()
        assert copy.checksum == hashlib.md5(data).hexdigest()
        assert gs.lock_name("RegionA") == "RegionA@memory:cloud1"
        assert isinstance(gs.target("master").adapter(RegionRef("master", "Master")),
                          MemoryRegionAdapter)


def test_a_memory_master_feeds_a_local_mirror(memory_backend_registered, tmp_path, lock_dir):
    mirror = f"""
        [mirror]
        type = local
        path = {tmp_path / 'mirror'}
        regions = USB
    """
    with GlanceSync(io.StringIO(config_text(tmp_path, mirror)), progress=False) as gs:
        put(gs, "Master", "debian", b"d" * 5000)
        assert gs.sync(["mirror:USB"]).exit_status == ExitStatus.OK
        (copy,) = gs.adapter("mirror:USB").list_images()
        assert copy.name == "debian" and copy.size == 5000


def test_its_secret_option_is_a_secret_of_the_configuration(memory_backend_registered,
                                                             tmp_path):
    config = load_config(io.StringIO(config_text(tmp_path)), environ={})
    assert config.secrets() == [TOKEN]
    assert TOKEN not in repr(config)
    GlanceSync(config).close()
    assert REDACTOR.redact(f"the token is {TOKEN}") == "the token is ***"


def test_its_options_are_checked_like_the_others(memory_backend_registered, tmp_path):
    assert {"space", "space_regions", "token"} <= {o.name for o in target_options()}
    with pytest.raises(ConfigError) as info:
        load_config(io.StringIO(config_text(tmp_path).replace(
            "space_regions = Master, RegionA, RegionB", "")), environ={})
    assert info.value.option == "space_regions"
    with pytest.raises(ConfigError, match="keystone, local, memory"):
        load_config(io.StringIO(config_text(tmp_path).replace("type = memory",
                                                              "type = swift")), environ={})


def test_unregistered_it_is_an_unknown_type(tmp_path):
    assert "memory" not in backends.names()
    with pytest.raises(ConfigError) as info:
        load_config(io.StringIO(config_text(tmp_path)), environ={})
    assert info.value.option == "space" and "unknown option" in str(info.value)


def test_a_name_is_registered_once(memory_backend_registered):
    with pytest.raises(ValueError, match="memory"):
        backends.register(memory_backend.Backend(
            name="memory", options=(), settings=memory_backend.read_settings,
            make_target=memory_backend.MemoryTarget))
