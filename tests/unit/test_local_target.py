"""Local targets: their settings, regions, projects and adapters (issue 27's survivors)."""
from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from glancesync.backends import get_backend
from glancesync.backends.base import ProjectName
from glancesync.backends.local import DEFAULT_PROJECT, LocalSettings
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.backends.local.target import LocalTarget
from glancesync.config import TargetConfig, load_config
from glancesync.errors import ConfigError, RegionNotFoundError, UsageError
from glancesync.executor.validation import cloud_environment
from glancesync.regions import RegionRef


def target_config(section: str, name: str = "other") -> TargetConfig:
    text = ("[main]\nmaster_region = Master\n[master]\ntype = local\npath = /nowhere\n"
            + textwrap.dedent(section))
    return load_config(io.StringIO(text), environ={}).target(name)


def local_target(folder: Path, extra: str = "") -> LocalTarget:
    config = target_config(f"[other]\ntype = local\npath = {folder}\n{extra}")
    target = get_backend(config.backend).make_target(config)
    assert isinstance(target, LocalTarget)
    return target


def test_settings_read_every_option(tmp_path):
    target = local_target(tmp_path, "regions = RegionA, RegionB\nproject = p7\n"
                                    "projects = p7, p8\n")
    assert target.settings == LocalSettings(path=tmp_path, regions=["RegionA", "RegionB"],
                                            project="p7", projects=["p7", "p8"])
    assert target.settings.option_values() == {
        "path": tmp_path, "regions": ["RegionA", "RegionB"], "project": "p7",
        "projects": ["p7", "p8"]}
    assert (target.name, target.project_id) == ("other", "p7")


def test_settings_defaults(tmp_path):
    settings = local_target(tmp_path).settings
    assert settings == LocalSettings(path=tmp_path, regions=[], project=DEFAULT_PROJECT,
                                     projects=[])
    assert DEFAULT_PROJECT == "local-project"


def test_a_command_run_for_a_local_target_gets_its_folder_and_project(tmp_path):
    settings = local_target(tmp_path, "project = p7\n").settings
    assert cloud_environment(settings, "RegionA") == {
        "OS_REGION_NAME": "RegionA", "GLANCESYNC_TARGET_PATH": str(tmp_path),
        "GLANCESYNC_TARGET_PROJECT": "p7"}


def test_missing_path_names_the_option_and_the_fix():
    with pytest.raises(ConfigError) as caught:
        target_config("[other]\ntype = local\n")
    assert caught.value.option == "path"
    assert caught.value.section == "other"
    assert caught.value.message == ("missing: a local target needs the folder holding its"
                                    " regions (path = FOLDER)")


def test_a_path_that_is_not_a_folder_is_a_config_error(tmp_path):
    (tmp_path / "file").write_text("")
    target = local_target(tmp_path / "file")
    with pytest.raises(ConfigError) as caught:
        target.region_names()
    assert (caught.value.section, caught.value.option) == ("other", "path")
    assert caught.value.message == f"cannot list the regions in {tmp_path / 'file'}: Not a directory"


def test_region_names_declared_first_then_found(tmp_path):
    for name in ("RegionC", "RegionB", "Plain"):
        (tmp_path / name).mkdir()
    (tmp_path / "RegionC" / "images.db").write_bytes(b"")
    (tmp_path / "RegionB" / "images.db").write_bytes(b"")
    target = local_target(tmp_path, "regions = RegionZ, RegionC\n")
    assert target.region_names() == ["RegionZ", "RegionC", "RegionB"]


def test_project_name_of_any_project_without_a_list(tmp_path):
    target = local_target(tmp_path)
    assert target.project_name("anyone") == ProjectName("anyone", "Default")


def test_project_name_only_of_listed_projects(tmp_path):
    target = local_target(tmp_path, "projects = p7, p8\n")
    assert target.project_name("p8") == ProjectName("p8", "Default")
    assert target.project_name("p9") is None


def test_find_project_in_domain_default_whatever_its_case(tmp_path):
    target = local_target(tmp_path)
    for domain in ("Default", "default", "DEFAULT"):
        assert target.find_project(ProjectName("anyone", domain)) == "anyone"
    assert target.find_project(ProjectName("anyone", "Other")) is None


def test_find_project_only_listed_projects(tmp_path):
    target = local_target(tmp_path, "projects = p7, p8\n")
    assert target.find_project(ProjectName("p8", "Default")) == "p8"
    assert target.find_project(ProjectName("p9", "Default")) is None
    assert target.find_project(ProjectName("p8", "Other")) is None


def test_adapter_of_a_declared_region_creates_it(tmp_path):
    target = local_target(tmp_path, "regions = RegionA\nlist_images_timeout = 7\n")
    adapter = target.adapter(RegionRef("other", "RegionA"))
    assert isinstance(adapter, LocalRegionAdapter)
    assert (adapter.name, adapter.path, adapter.list_timeout) == (
        "other:RegionA", tmp_path / "RegionA", 7)
    adapter.ensure_exists()
    assert (tmp_path / "RegionA" / "images.db").is_file()
    adapter.close()


def test_adapter_of_an_undeclared_region_creates_nothing(tmp_path):
    adapter = local_target(tmp_path, "regions = RegionA\n").adapter(RegionRef("other", "Typo"))
    with pytest.raises(RegionNotFoundError):
        adapter.ensure_exists()
    assert not (tmp_path / "Typo").exists()


def test_adapter_sees_every_project_like_an_admin(tmp_path):
    owner = LocalRegionAdapter("x", tmp_path / "RegionA", "someone-else", is_admin=False)
    image = owner.create_image("private-one", visibility="private")
    owner.close()
    adapter = local_target(tmp_path, "project = p7\n").adapter(RegionRef("other", "RegionA"))
    assert [found.id for found in adapter.list_images()] == [image.id]
    adapter.close()


def test_a_region_folder_linked_elsewhere_is_used_as_is(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "regions").mkdir()
    (tmp_path / "regions" / "RegionA").symlink_to(elsewhere)
    adapter = local_target(tmp_path / "regions", "regions = RegionA\n").adapter(
        RegionRef("other", "RegionA"))
    assert adapter.path == tmp_path / "regions" / "RegionA"
    adapter.ensure_exists()
    assert (elsewhere / "images.db").is_file()
    adapter.close()


@pytest.mark.parametrize("name", ["..", "a/b", ""])
def test_adapter_refuses_a_region_name_that_is_not_a_folder_name(tmp_path, name):
    with pytest.raises(UsageError, match="invalid local region name"):
        local_target(tmp_path).adapter(RegionRef("other", name))
