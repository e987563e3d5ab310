"""Configuration loading: variants, overrides, environment, every error."""
from __future__ import annotations

import io
import logging
import os
import re
import textwrap
from pathlib import Path

import pytest

from glancesync.config import Config, load_config, main_options, target_options
from glancesync.errors import ConfigError, ExitStatus, RegionNotFoundError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "conf" / "glancesync.conf.sample"
MAIN_OPTIONS = [option.name for option in main_options()]
TARGET_OPTIONS = [option.name for option in target_options()]

MASTER_OK = """
[main]
master_region = Master

[master]
auth_url = http://127.0.0.1:5000
username = admin
password = s3cret
project_name = admin
"""


def write(tmp_path: Path, text: str, name: str = "glancesync.conf", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    os.chmod(path, mode)
    return path


def load_text(text: str, overrides=(), environ=None) -> Config:
    stream = io.StringIO(textwrap.dedent(text))
    return load_config(stream, overrides=overrides, environ=environ or {})


def load_file(path: Path, overrides=(), environ=None) -> Config:
    with open(path) as handle:
        return load_config(handle, overrides=overrides, environ=environ or {})


def config_error(path: Path, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_file(path, **kwargs)
    error = info.value
    assert error.exit_status == ExitStatus.USAGE
    assert str(path) in str(error)
    return error


# -- variants ----------------------------------------------------------------

def test_explicit_credentials_and_defaults():
    config = load_text(MASTER_OK)
    assert config.main.master_region == "Master"
    assert config.main.max_children == 1
    assert config.main.stalled_upload_age == 3600
    assert config.main.cache_max_size is None
    master = config.target("master")
    assert master.backend == "keystone"
    assert master.settings.auth == {
        "auth_url": "http://127.0.0.1:5000", "username": "admin",
        "password": "s3cret", "project_name": "admin",
        "user_domain_name": "Default", "project_domain_name": "Default"}
    assert master.settings.interface == "public"
    assert master.settings.insecure is False
    assert master.only_tenant_images is True
    assert master.support_obsolete_images is True
    assert master.list_images_timeout == 30
    assert master.metadata_condition is None
    assert master.metadata_set == frozenset()


def test_user_alias_project_id_and_domains():
    config = load_text("""
        [main]
        master_region = Master
        [master]
        auth_url = http://127.0.0.1:5000/v3
        user = alice
        password = pw
        project_id = 0123abcd
        user_domain_name = Users
    """)
    assert config.target("master").settings.auth == {
        "auth_url": "http://127.0.0.1:5000/v3", "username": "alice",
        "password": "pw", "project_id": "0123abcd", "user_domain_name": "Users"}


def test_application_credential():
    config = load_text("""
        [main]
        master_region = Master
        [master]
        auth_url = http://127.0.0.1:5000/v3
        application_credential_id = appid
        application_credential_secret = appsecret
    """)
    assert config.target("master").settings.auth == {
        "auth_url": "http://127.0.0.1:5000/v3",
        "application_credential_id": "appid",
        "application_credential_secret": "appsecret"}


def test_cloud_is_kept_for_lazy_resolution():
    config = load_text("""
        [main]
        master_region = Master
        [master]
        cloud = mycloud
        cacert = /etc/ssl/ca.pem
        insecure = yes
        interface = internal
    """)
    master = config.target("master")
    assert (master.settings.cloud, master.settings.auth) == ("mycloud", None)
    assert master.settings.cacert == "/etc/ssl/ca.pem"
    assert master.settings.insecure is True
    assert master.settings.interface == "internal"


def test_legacy_credential_is_decoded():
    config = load_text("""
        [main]
        master_region = Master
        [master]
        credential = bob, cGFzcyB3b3Jk, http://127.0.0.1:5000/v3, projB
    """)
    assert config.target("master").settings.auth == {
        "auth_url": "http://127.0.0.1:5000/v3", "username": "bob",
        "password": "pass word", "project_name": "projB",
        "user_domain_name": "Default", "project_domain_name": "Default"}


def test_all_main_options_and_target_policies(tmp_path):
    config = load_text(f"""
        [main]
        master_region = Master
        preferable_order = RegionB,RegionA,  other:RegionC
        max_children = 4
        images_dir = {tmp_path}/images
        cache_dir = {tmp_path}/cache
        cache_max_size = 500M
        stalled_upload_age = 90.5
        run_dir = {tmp_path}/run

        [DEFAULT]
        metadata_set = nid, type
        only_tenant_images = false
        list_images_timeout = 12

        [master]
        cloud = c1
        forcesyncs = id-1 id-2
        metadata_condition = image.user_properties.get('type') == 'baseimage'

        [other]
        cloud = c2
        metadata_set = sdc_aware
        replace = any
        rename = 0123456789ABCDEF0123456789abcdef
        dontupdate = aaaa, bbbb
        ignore_regions = RegionTest, RegionOld
        support_obsolete_images = off
        obsolete_syncprops = nid
        list_images_timeout = 2.5
    """)
    main = config.main
    assert main.preferable_order == ["RegionB", "RegionA", "other:RegionC"]
    assert main.max_children == 4
    assert main.images_dir == tmp_path / "images"
    assert main.cache_dir == tmp_path / "cache"
    assert main.cache_max_size == 500 * 1024 ** 2
    assert main.stalled_upload_age == 90.5
    assert main.run_dir == tmp_path / "run"
    master, other = config.target("master"), config.target("other")
    assert master.metadata_set == {"nid", "type"}  # from DEFAULT
    assert master.only_tenant_images is False and other.only_tenant_images is False
    assert master.list_images_timeout == 12
    assert master.forcesyncs == {"id-1", "id-2"}
    assert master.metadata_condition is not None
    assert other.metadata_set == {"sdc_aware"}  # section beats DEFAULT
    assert other.replace == {"any"}
    assert other.rename == {"0123456789abcdef0123456789abcdef"}
    assert other.dontupdate == {"aaaa", "bbbb"}
    assert other.ignore_regions == ["RegionTest", "RegionOld"]
    assert other.support_obsolete_images is False
    assert other.obsolete_syncprops == {"nid"}
    assert other.list_images_timeout == 2.5
    assert list(config.targets) == ["master", "other"]


@pytest.mark.parametrize("text, expected", [
    ("1024", 1024), ("10G", 10 * 1024 ** 3), ("500m", 500 * 1024 ** 2),
    ("2K", 2048), ("1.5G", int(1.5 * 1024 ** 3)), ("3GiB", 3 * 1024 ** 3),
    ("1 T", 1024 ** 4),
])
def test_cache_max_size_suffixes(text, expected):
    config = load_text(MASTER_OK, overrides=[f"cache_max_size={text}"])
    assert config.main.cache_max_size == expected


def test_local_target(tmp_path):
    config = load_text(f"""
        [main]
        master_region = Master
        [master]
        type = local
        path = {tmp_path}
        project = p1
    """)
    master = config.target("master")
    assert master.backend == "local"
    assert master.settings.path == tmp_path
    assert master.settings.project == "p1"
    assert master.settings.option_values() == {"path": tmp_path, "regions": [],
                                               "project": "p1", "projects": []}  # no credentials


def test_local_project_default(tmp_path):
    config = load_text(MASTER_OK + f"[mirror]\ntype = local\npath = {tmp_path}\n")
    assert config.target("mirror").settings.project == "local-project"


def test_interpolation_is_off():
    config = load_text(MASTER_OK.replace("s3cret", "50%off%(x)s"))
    assert config.target("master").settings.auth["password"] == "50%off%(x)s"


def test_unknown_target_lists_targets():
    config = load_text(MASTER_OK + "[other]\ncloud = x\n")
    with pytest.raises(RegionNotFoundError, match="master, other"):
        config.target("nope")


# -- overrides -----------------------------------------------------------------

def test_overrides_section_default_and_main():
    config = load_text(MASTER_OK + "[other]\ncloud = x\n", overrides=[
        "master_region=RegionZ",          # a main option: goes to [main]
        "metadata_set=a,b",               # a target option: goes to [DEFAULT]
        "other.ignore_regions = R1, R2",
        "master.password=newpw",
        "main.max_children=7",
        "extra.cloud=c3",                 # creates a new target
    ])
    assert config.main.master_region == "RegionZ"
    assert config.main.max_children == 7
    assert config.target("other").metadata_set == {"a", "b"}
    assert config.target("master").metadata_set == {"a", "b"}
    assert config.target("other").ignore_regions == ["R1", "R2"]
    assert config.target("master").settings.auth["password"] == "newpw"
    assert config.target("extra").settings.cloud == "c3"


@pytest.mark.parametrize("override", ["novalue", "=x", "master.=x"])
def test_malformed_override(override):
    with pytest.raises(ConfigError, match="section.key=value") as info:
        load_text(MASTER_OK, overrides=[override])
    assert "--config" in str(info.value)


def test_override_with_unknown_option_is_an_error():
    with pytest.raises(ConfigError, match="unknown option") as info:
        load_text(MASTER_OK, overrides=["master.colour=blue"])
    assert info.value.section == "master" and info.value.option == "colour"


# -- lookup and environment --------------------------------------------------

def test_glancesync_config_variable(tmp_path):
    path = write(tmp_path, MASTER_OK)
    config = load_config(environ={"GLANCESYNC_CONFIG": str(path)})
    assert config.path == str(path)
    assert config.main.master_region == "Master"


def test_missing_file_named_by_variable(tmp_path):
    missing = tmp_path / "nowhere.conf"
    with pytest.raises(ConfigError, match="GLANCESYNC_CONFIG") as info:
        load_config(environ={"GLANCESYNC_CONFIG": str(missing)})
    assert str(missing) in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, MASTER_OK, mode=0o000)
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_config(environ={"GLANCESYNC_CONFIG": str(path)})
    assert str(path) in str(info.value)


def test_stream_name_is_the_path(tmp_path):
    path = write(tmp_path, MASTER_OK)
    assert load_file(path).path == str(path)
    assert load_text(MASTER_OK).path is None


def test_binary_stream_is_decoded():
    config = load_config(io.BytesIO(MASTER_OK.encode()), environ={})
    assert config.main.master_region == "Master"


@pytest.mark.skipif(os.path.exists("/etc/glancesync.conf"),
                    reason="a real /etc/glancesync.conf would be read")
def test_environment_only_password():
    config = load_config(environ={
        "OS_AUTH_URL": "http://127.0.0.1:5000/v3", "OS_USERNAME": "u",
        "OS_PASSWORD": "p", "OS_PROJECT_NAME": "proj",
        "OS_USER_DOMAIN_NAME": "UD", "OS_REGION_NAME": "RegionOne"})
    assert config.path is None
    assert config.main.master_region == "RegionOne"
    assert list(config.targets) == ["master"]
    assert config.target("master").settings.auth == {
        "auth_url": "http://127.0.0.1:5000/v3", "username": "u", "password": "p",
        "project_name": "proj", "user_domain_name": "UD",
        "project_domain_name": "Default"}


@pytest.mark.skipif(os.path.exists("/etc/glancesync.conf"),
                    reason="a real /etc/glancesync.conf would be read")
def test_environment_only_cloud():
    config = load_config(environ={"OS_CLOUD": "devstack", "OS_REGION_NAME": "R"})
    assert config.target("master").settings.cloud == "devstack"
    assert config.main.master_region == "R"


@pytest.mark.skipif(os.path.exists("/etc/glancesync.conf"),
                    reason="a real /etc/glancesync.conf would be read")
def test_environment_only_incomplete_names_missing_variables():
    with pytest.raises(ConfigError) as info:
        load_config(environ={"OS_AUTH_URL": "http://127.0.0.1:5000/v3",
                             "OS_USERNAME": "u", "OS_REGION_NAME": "R"})
    message = str(info.value)
    assert "OS_PASSWORD" in message and "OS_PROJECT_NAME" in message
    assert "OS_AUTH_URL" not in message


@pytest.mark.skipif(os.path.exists("/etc/glancesync.conf"),
                    reason="a real /etc/glancesync.conf would be read")
def test_environment_only_nothing_at_all():
    with pytest.raises(ConfigError, match="OS_CLOUD") as info:
        load_config(environ={})
    assert info.value.section == "master"


@pytest.mark.skipif(os.path.exists("/etc/glancesync.conf"),
                    reason="a real /etc/glancesync.conf would be read")
def test_environment_only_without_region():
    with pytest.raises(ConfigError, match="OS_REGION_NAME") as info:
        load_config(environ={"OS_CLOUD": "c"})
    assert info.value.option == "master_region"


#: Password credentials from the environment, without a file (issue 23, case 11).
ENV = {"OS_AUTH_URL": "https://keystone.example:5000/v3", "OS_USERNAME": "u",
       "OS_PASSWORD": "p", "OS_PROJECT_NAME": "proj", "OS_REGION_NAME": "R"}


def env_settings(**extra: str):
    """The master's settings read from ENV and ``extra`` (a file that gives none)."""
    return load_text("[main]\n", environ={**ENV, **extra}).target("master").settings


def test_environment_tls_interface_and_time_out_as_the_openstack_client_takes_them():
    settings = env_settings(OS_CACERT="/etc/ca.pem", OS_CERT="/etc/c.pem",
                            OS_KEY="/etc/k.pem", OS_INTERFACE="internal",
                            OS_API_TIMEOUT="12.5")
    assert (settings.cacert, settings.cert, settings.key) == ("/etc/ca.pem", "/etc/c.pem",
                                                              "/etc/k.pem")
    assert settings.interface == "internal" and settings.timeout == 12.5
    assert env_settings(OS_ENDPOINT_TYPE="internalURL").interface == "internal"
    assert env_settings(OS_INSECURE="true").insecure is True
    assert env_settings().interface == "public" and env_settings().cacert is None


@pytest.mark.skipif(os.path.exists("/etc/glancesync.conf"),
                    reason="a real /etc/glancesync.conf would be read")
def test_environment_connection_settings_apply_to_os_cloud_too():
    settings = load_config(environ={"OS_CLOUD": "c", "OS_REGION_NAME": "R",
                                    "OS_CACERT": "/etc/ca.pem", "OS_INTERFACE": "admin",
                                    "OS_TOKEN": "ignored: the cloud says how"}
                           ).target("master").settings
    assert (settings.cloud, settings.cacert, settings.interface) == ("c", "/etc/ca.pem",
                                                                     "admin")


def test_environment_users_and_domains_by_id():
    auth = env_settings(OS_USERNAME="", OS_USER_ID="uid", OS_PROJECT_DOMAIN_ID="pd").auth
    assert auth == {"auth_url": ENV["OS_AUTH_URL"], "user_id": "uid", "password": "p",
                    "project_name": "proj", "project_domain_id": "pd"}
    auth = env_settings(OS_DEFAULT_DOMAIN="dom").auth
    assert (auth["user_domain_id"], auth["project_domain_id"]) == ("dom", "dom")
    auth = env_settings(OS_DEFAULT_DOMAIN_ID="did").auth
    assert (auth["user_domain_id"], auth["project_domain_id"]) == ("did", "did")
    auth = env_settings(OS_DEFAULT_DOMAIN_NAME="Dom").auth
    assert (auth["user_domain_name"], auth["project_domain_name"]) == ("Dom", "Dom")
    auth = env_settings(OS_AUTH_TYPE="v3password", OS_USER_DOMAIN_ID="ud").auth
    assert (auth["auth_type"], auth["user_domain_id"]) == ("v3password", "ud")


def test_environment_application_credential_by_name():
    auth = load_text("[main]\n", environ={
        "OS_AUTH_URL": "http://k:5000/v3", "OS_APPLICATION_CREDENTIAL_NAME": "sync",
        "OS_APPLICATION_CREDENTIAL_SECRET": "s", "OS_USERNAME": "u",
        "OS_REGION_NAME": "R"}).target("master").settings.auth
    assert auth == {"auth_url": "http://k:5000/v3", "application_credential_name": "sync",
                    "application_credential_secret": "s", "username": "u",
                    "user_domain_name": "Default"}


@pytest.mark.parametrize("name, value, expected", [
    ("OS_INTERFACE", "private", "OS_INTERFACE='private': expected one of public, internal"),
    ("OS_ENDPOINT_TYPE", "x", "OS_ENDPOINT_TYPE='x': expected one of"),
    ("OS_INSECURE", "maybe", "OS_INSECURE='maybe': expected true or false"),
    ("OS_API_TIMEOUT", "soon", "OS_API_TIMEOUT='soon': expected seconds > 0"),
    ("OS_API_TIMEOUT", "0", "OS_API_TIMEOUT='0': expected seconds > 0"),
    ("OS_AUTH_TYPE", "v3oidcpassword", "OS_AUTH_TYPE='v3oidcpassword' is not supported:"
                                       " without a configuration file"),
    ("OS_IDENTITY_API_VERSION", "2", "GlanceSync speaks Keystone v3 only"),
    ("OS_IMAGE_API_VERSION", "1", "Image API v2 only"),
    ("OS_SYSTEM_SCOPE", "all", "needs a project-scoped token"),
    ("OS_DOMAIN_NAME", "d", "needs a project-scoped token"),
    ("OS_TOKEN", "gAAAA-secret", "OS_TOKEN (set) is not supported: a token expires"),
    ("OS_PASSCODE", "123456", "set OS_CLOUD"),
    ("OS_AUTH_PLUGIN", "v3oidcpassword", "the former name of OS_AUTH_TYPE"),
    ("OS_URL", "http://k:5000/v3", "finds every endpoint in the catalog"),
    ("OS_ENDPOINT", "http://g:9292", "from the catalog (OS_INTERFACE chooses which)"),
])
def test_environment_variables_glancesync_cannot_honour_are_refused(name, value, expected):
    with pytest.raises(ConfigError) as caught:
        env_settings(**{name: value})
    assert expected in caught.value.message
    assert name in caught.value.message
    if name in ("OS_TOKEN", "OS_PASSCODE"):
        assert value not in caught.value.message, "a secret is never shown"


def test_environment_variables_honoured_with_their_accepted_values():
    for name, value in (("OS_IDENTITY_API_VERSION", "3"), ("OS_IMAGE_API_VERSION", "2"),
                        ("OS_AUTH_TYPE", "password"), ("OS_COMPUTE_API_VERSION", "2.1")):
        assert env_settings(**{name: value}).auth["username"] == "u"


def test_environment_fills_master_without_credentials_in_file(tmp_path):
    path = write(tmp_path, "[main]\nmaster_region = M\n[master]\nmetadata_set = nid\n")
    config = load_file(path, environ={
        "OS_AUTH_URL": "http://127.0.0.1:5000/v3",
        "OS_APPLICATION_CREDENTIAL_ID": "i",
        "OS_APPLICATION_CREDENTIAL_SECRET": "s"})
    master = config.target("master")
    assert master.settings.auth == {"auth_url": "http://127.0.0.1:5000/v3",
                           "application_credential_id": "i",
                           "application_credential_secret": "s"}
    assert master.metadata_set == {"nid"}


def test_environment_is_not_used_when_section_has_credentials():
    config = load_text(MASTER_OK, environ={"OS_CLOUD": "ignored"})
    assert config.target("master").settings.cloud is None


def test_environment_never_fills_other_targets(tmp_path):
    path = write(tmp_path, MASTER_OK + "[other]\nmetadata_set = x\n")
    error = config_error(path, environ={"OS_CLOUD": "c"})
    assert error.section == "other"
    assert "no credentials" in error.message


# -- secrets -------------------------------------------------------------------

#: Secrets of every kind: a password, an application credential secret, a
#: legacy credential line holding a base64 password.
WITH_SECRETS = MASTER_OK + textwrap.dedent("""
    [other]
    auth_url = http://127.0.0.1:5001
    application_credential_id = appid
    application_credential_secret = topsecret
    [legacy]
    credential = bob,bGVnYWN5cHc=,http://127.0.0.1:5000/v3,p
""")


def test_secrets_are_masked_in_repr():
    config = load_text(WITH_SECRETS)
    for text in (repr(config), str(config), repr(config.targets), str(config.target("master"))):
        assert "s3cret" not in text
        assert "topsecret" not in text
        assert "legacypw" not in text
        assert "bGVnYWN5cHc" not in text
    assert "appid" in repr(config)
    assert config.target("legacy").settings.auth["password"] == "legacypw"


def test_the_configuration_knows_its_secrets():
    config = load_text(WITH_SECRETS + "[mirror]\ntype = local\npath = /tmp/mirror\n",
                       overrides=["other.application_credential_secret=typed-in"])
    assert sorted(config.secrets()) == ["legacypw", "s3cret", "typed-in"]


@pytest.mark.skipif(os.path.exists("/etc/glancesync.conf"),
                    reason="the environment is used only without a file")
def test_secrets_from_the_environment():
    config = load_config(environ={"OS_AUTH_URL": "http://127.0.0.1:5000", "OS_USERNAME": "u",
                                  "OS_PASSWORD": "from-env", "OS_PROJECT_NAME": "p",
                                  "OS_REGION_NAME": "R"})
    assert config.secrets() == ["from-env"]


def test_permission_warning(tmp_path, caplog):
    path = write(tmp_path, MASTER_OK, mode=0o644)
    with caplog.at_level(logging.WARNING, logger="glancesync.config"):
        load_file(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "chmod 600" in warnings[0]


def test_no_permission_warning_for_a_password_given_on_the_command_line(tmp_path, caplog):
    path = write(tmp_path, "[main]\nmaster_region = M\n[master]\ncloud = c\n", mode=0o644)
    with caplog.at_level(logging.WARNING, logger="glancesync.config"):
        with open(path, encoding="utf-8") as stream:
            load_config(stream, overrides=["master.password=typed-in"], environ={})
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_permission_warning_only_when_needed(tmp_path, caplog, mode):
    private = write(tmp_path, MASTER_OK, name="private.conf", mode=0o600)
    no_secret = write(tmp_path, "[main]\nmaster_region = M\n[master]\ncloud = c\n",
                      name="nosecret.conf", mode=0o644)
    group = write(tmp_path, MASTER_OK, name="group.conf", mode=mode)
    with caplog.at_level(logging.WARNING, logger="glancesync.config"):
        load_file(private)
        load_file(no_secret)
        load_file(group)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == (1 if mode & 0o040 else 0)
    if warned:
        assert str(group) in warned[0]


# -- errors (file, section, option and what was expected) ----------------------

ERRORS = [
    # (file text, section, option, expected words)
    ("[main]\nmaster_region = M\ncolour = red\n[master]\ncloud = c\n",
     "main", "colour", "preferable_order"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\ncolour = red\n",
     "master", "colour", "metadata_condition"),
    ("[main]\nmaster_region = M\n[DEFAULT]\ncolour = red\n[master]\ncloud = c\n",
     "DEFAULT", "colour", "unknown option"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\ntype = swift\n",
     "master", "type", "keystone, local"),
    ("[main]\nmaster_region = M\nmax_children = many\n[master]\ncloud = c\n",
     "main", "max_children", "an integer"),
    ("[main]\nmaster_region = M\nmax_children = 0\n[master]\ncloud = c\n",
     "main", "max_children", ">= 1"),
    ("[main]\nmaster_region = M\ncache_max_size = lots\n[master]\ncloud = c\n",
     "main", "cache_max_size", "10G"),
    ("[main]\nmaster_region = M\nstalled_upload_age = soon\n[master]\ncloud = c\n",
     "main", "stalled_upload_age", "number of seconds"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\ninsecure = maybe\n",
     "master", "insecure", "true/false"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nonly_tenant_images = 2\n",
     "master", "only_tenant_images", "true/false"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nlist_images_timeout = 0\n",
     "master", "list_images_timeout", "> 0"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\ninterface = private\n",
     "master", "interface", "public, internal, admin"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nreplace = any, not-a-sum\n",
     "master", "replace", "hexadecimal"),
    ("[main]\n[master]\ncloud = c\n", "main", "master_region", "required"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n[other]\nmetadata_set = a\n",
     "other", None, "no credentials"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n[mirror]\ntype = local\n",
     "mirror", "path", "path = FOLDER"),
    ("[main]\nmaster_region = M\n[master]\nauth_url = http://k\nusername = u\n"
     "project_name = p\n", "master", "password", "password"),
    ("[main]\nmaster_region = M\n[master]\nauth_url = http://k\nusername = u\n"
     "password = p\n", "master", "project_name", "project_id"),
    ("[main]\nmaster_region = M\n[master]\nusername = u\npassword = p\n"
     "project_name = p\n", "master", "auth_url", "auth_url"),
    ("[main]\nmaster_region = M\n[master]\nauth_url = http://k\n"
     "application_credential_id = i\n", "master", "application_credential_secret",
     "application_credential_secret"),
    ("[main]\nmaster_region = M\n[master]\ncredential = u,not base64!,http://k,p\n",
     "master", "credential", "base64"),
    ("[main]\nmaster_region = M\n[master]\ncredential = u,cHc=,http://k\n",
     "master", "credential", "4 fields"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nmetadata_condition = image.is_public and\n",
     "master", "metadata_condition", "invalid expression"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nmetadata_condition = nid in props\n",
     "master", "metadata_condition", "unknown name"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n"
     "metadata_condition = image.__class__\n", "master", "metadata_condition", "not allowed"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\ntransfer = fast\n",
     "master", "transfer", "stream, glance-download, auto"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nconvert_to = iso\n",
     "master", "convert_to", "raw, qcow2"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nimport_timeout = 0\n",
     "master", "import_timeout", "> 0"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n[master:R]\nupload_method = put\n",
     "master:R", "upload_method", "auto, direct, glance-direct"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n[master:RegionB]\nreplace = any\n",
     "master:RegionB", "replace", "transfer, convert_to, region_bandwidth_limit, upload_method"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n[master:RegionB]\nconvert_to = x\n",
     "master:RegionB", "convert_to", "raw, qcow2"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n[europe:Berlin]\ntransfer = auto\n",
     "europe:Berlin", None, "unknown target 'europe'"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n[master:]\ntransfer = auto\n",
     "master:", None, "[target:Region]"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\n[:RegionB]\ntransfer = auto\n",
     ":RegionB", None, "[target:Region]"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nremoval_policy = purge\n",
     "master", "removal_policy", "keep, hide, deactivate, delete"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nremoval_grace_hours = -1\n",
     "master", "removal_grace_hours", "number of hours >= 0"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nremoval_grace_hours = a day\n",
     "master", "removal_grace_hours", "number of hours"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nkeep_old_copies = 2\n",
     "master", "keep_old_copies", "removal_policy = hide, deactivate or delete"),
    ("[main]\nmaster_region = M\n[master]\ncloud = c\nremoval_policy = hide\n"
     "keep_old_copies = -1\n", "master", "keep_old_copies", ">= 0"),
    ("[main]\nmaster_region = M\nmax_deletes = -3\n[master]\ncloud = c\n",
     "main", "max_deletes", ">= 0"),
]


@pytest.mark.parametrize("text, section, option, expected", ERRORS)
def test_configuration_errors(tmp_path, text, section, option, expected):
    path = write(tmp_path, text)
    error = config_error(path)
    message = str(error)
    assert error.path == str(path)
    assert error.section == section
    assert error.option == option
    assert f"[{section}]" in message
    if option:
        assert option in message
    assert expected in message


@pytest.mark.parametrize("text, expected", [
    ("master_region = M\n", "[section] header"),
    ("[main]\nmaster_region = M\njust some words\n", "line 3"),
    ("[main]\nmaster_region = M\n[main]\n", "section defined twice"),
    ("[main]\nmaster_region = M\nmaster_region = N\n", "option defined twice"),
])
def test_ini_syntax_errors(tmp_path, text, expected):
    path = write(tmp_path, text)
    assert expected in str(config_error(path))


def test_not_utf8(tmp_path):
    path = tmp_path / "bad.conf"
    path.write_bytes(b"[main]\nmaster_region = \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8") as info:
        load_config(environ={"GLANCESYNC_CONFIG": str(path)})
    assert str(path) in str(info.value)


def test_unknown_option_lists_valid_ones(tmp_path):
    path = write(tmp_path, "[main]\nmaster_region = M\nmaster_regoin = N\n[master]\ncloud = c\n")
    message = str(config_error(path))
    for option in MAIN_OPTIONS:
        assert option in message


# -- the sample cannot rot -----------------------------------------------------

def test_sample_loads_with_documented_defaults():
    with open(SAMPLE) as handle:
        config = load_config(handle, environ={})
    main = config.main
    assert main.master_region == "Master"
    assert main.preferable_order == []
    assert main.max_children == 1
    assert main.images_dir is None and main.cache_dir is None and main.run_dir is None
    assert main.cache_max_size is None
    assert main.stalled_upload_age == 3600
    assert list(config.targets) == ["master"]
    master = config.target("master")
    assert master.backend == "keystone" and master.settings.cloud == "master"
    # A cloud's own interface applies unless the section sets one.
    assert master.settings.interface is None and master.settings.insecure is False
    assert master.only_tenant_images is True
    assert master.support_obsolete_images is True
    assert master.list_images_timeout == 30
    for name in ("forcesyncs", "metadata_set", "replace", "rename", "dontupdate",
                 "obsolete_syncprops"):
        assert getattr(master, name) == frozenset(), name
    assert master.ignore_regions == []
    assert master.metadata_condition is None


def _documented_defaults() -> dict[str, str]:
    """``# option = value`` lines of the sample: the documented defaults."""
    documented = {}
    for line in SAMPLE.read_text().splitlines():
        match = re.match(r"^#\s*([a-z_]+)\s*=\s*(\S*)\s*$", line)
        if match:
            documented.setdefault(match.group(1), match.group(2))
    return documented


def test_sample_documents_every_option():
    documented = _documented_defaults()
    active = {m.group(1) for m in re.finditer(r"^([a-z_]+)\s*=", SAMPLE.read_text(), re.M)}
    mentioned = set(documented) | active
    accepted = {*MAIN_OPTIONS, *TARGET_OPTIONS}
    assert sorted(accepted - mentioned) == []  # every option is documented
    assert sorted(mentioned - accepted) == []  # the sample has no stale option


def test_sample_commented_defaults_are_the_real_defaults():
    """Uncommenting every '# option = default' line changes nothing."""
    documented = _documented_defaults()
    with open(SAMPLE) as handle:
        plain = load_config(handle, environ={})
    overrides = [f"{'main' if option in MAIN_OPTIONS else 'DEFAULT'}.{option}={value}"
                 for option, value in documented.items()
                 if value and option in (*MAIN_OPTIONS, *TARGET_OPTIONS)]
    assert len(overrides) >= 8
    with open(SAMPLE) as handle:
        explicit = load_config(handle, overrides=overrides, environ={})
    assert explicit.main == plain.main
    assert repr(explicit.target("master")) == repr(plain.target("master"))


def test_unreadable_path_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration file") as info:
        load_config(environ={"GLANCESYNC_CONFIG": str(tmp_path)})
    assert info.value.path == str(tmp_path)


# -- per-region sections -----------------------------------------------------------

def test_per_region_sections_override_the_target_for_their_region():
    config = load_text(MASTER_OK + textwrap.dedent("""
        transfer = auto
        convert_to = qcow2

        [DEFAULT]
        import_timeout = 60

        [master:RegionB]
        convert_to = raw

        [master:RegionC]
        transfer = stream
        convert_to =
    """))
    target = config.target("master")
    assert (target.transfer, target.convert_to, target.import_timeout) == ("auto", "qcow2", 60)
    assert target.for_region("RegionA") is target
    region_b = target.for_region("RegionB")
    assert (region_b.transfer, region_b.convert_to, region_b.import_timeout) == \
        ("auto", "raw", 60)
    region_c = target.for_region("RegionC")
    assert (region_c.transfer, region_c.convert_to) == ("stream", None)
    assert set(config.targets) == {"master"}  # a region section is no target


def test_transfer_options_default_to_streaming_in_the_master_format():
    target = load_text(MASTER_OK).target("master")
    assert (target.transfer, target.convert_to, target.import_timeout) == \
        ("stream", None, 1800.0)
    assert target.regions == {}


def test_per_region_override_on_the_command_line():
    config = load_text(MASTER_OK, overrides=["master:RegionB.transfer=glance-download"])
    assert config.target("master").for_region("RegionB").transfer == "glance-download"
    assert config.target("master").transfer == "stream"


def test_lifecycle_options_defaults_and_values():
    config = load_text(MASTER_OK)
    master = config.target("master")
    assert (master.removal_policy, master.removal_grace_hours, master.keep_old_copies) == (
        "keep", 24.0, None)
    assert config.main.max_deletes == 10
    config = load_text(MASTER_OK, overrides=[
        "removal_policy=Hide", "removal_grace_hours=0.5", "keep_old_copies=0",
        "max_deletes=0"])
    master = config.target("master")
    assert (master.removal_policy, master.removal_grace_hours, master.keep_old_copies) == (
        "hide", 0.5, 0)
    assert config.main.max_deletes == 0
