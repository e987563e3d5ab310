"""Malformed configurations: one clean line, exit 2, no secret echoed (issue 15, case 8).

Numbers that are not finite, secrets in lines the parser cannot read,
spaces around a password, and files that are not configuration files at
all (``/dev/zero``, a FIFO, a folder, a huge file), given with
``--config-file`` or ``$GLANCESYNC_CONFIG``.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from glancesync.config import MAX_CONFIG_SIZE, load_config
from glancesync.errors import ConfigError

BIN = Path(sys.executable).parent
SECRET = "S3cret-Hunter2"

VALID = textwrap.dedent("""\
    [main]
    master_region = Master

    [master]
    auth_url = http://127.0.0.1:9/v3
    username = admin
    password = s3cret
    project_name = admin
    """)


def load(text: str, overrides=()):
    return load_config(io.StringIO(text), overrides, {})


def with_line(line: str, section: str = "master") -> str:
    return VALID.replace(f"[{section}]\n", f"[{section}]\n{line}\n")


def run(argv: list[str], env: dict[str, str] | None = None,
        timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("OS_", "GLANCESYNC_"))}
    environment.update(env or {})
    return subprocess.run([str(BIN / "glancesync-sync"), *argv, "--show-regions"],
                          capture_output=True, text=True, env=environment, timeout=timeout,
                          cwd=cwd)


def assert_clean_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("glancesync-sync: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert SECRET not in done.stderr + done.stdout


# --- numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "1e308"])
@pytest.mark.parametrize("section, option", [
    ("main", "stalled_upload_age"), ("main", "retry_wait"),
    ("master", "list_images_timeout"), ("DEFAULT", "list_images_timeout")])
def test_numbers_must_be_finite(section, option, value):
    text = with_line(f"{option} = {value}", section) if section != "DEFAULT" else \
        "[DEFAULT]\n" + f"{option} = {value}\n" + VALID
    with pytest.raises(ConfigError, match=f"{option}: invalid value .*finite number"):
        load(text)
    with pytest.raises(ConfigError, match="finite number"):
        load(VALID, [f"{section}.{option}={value}"])


def test_a_large_finite_number_is_still_accepted():
    assert load(VALID, ["main.stalled_upload_age=86400000"]).main.stalled_upload_age == 86400000


# --- secrets never echoed ---------------------------------------------------------------

@pytest.mark.parametrize("line", [
    f"password {SECRET}",  # the case as reported: a typo for "password = ..."
    f"pasword {SECRET}", f"PASSWORD {SECRET}", f"passwd {SECRET}",
    f"application_credential_secret {SECRET}", f"credential admin,{SECRET},x,y",
    f"os_password {SECRET}", f"token {SECRET}",
])
def test_a_line_the_parser_cannot_read_never_shows_a_secret(line):
    with pytest.raises(ConfigError) as info:
        load(with_line(line))
    message = str(info.value)
    assert SECRET not in message
    assert "not INI syntax" in message and "***" in message
    assert line.split()[0] in message  # the line is still found: its first word


def test_a_password_alone_on_the_next_line_is_not_shown():
    with pytest.raises(ConfigError) as info:
        load(VALID.replace("password = s3cret", f"password =\n{SECRET}"))
    assert SECRET not in str(info.value) and "line 8: '***'" in str(info.value)


def test_other_malformed_lines_are_still_quoted():
    with pytest.raises(ConfigError, match="line 5: 'metadata_set nid type'"):
        load(with_line("metadata_set nid type"))


def test_a_secret_before_any_section_is_not_shown():
    with pytest.raises(ConfigError, match="header before 'password = \\*\\*\\*'") as info:
        load(f"password = {SECRET}\n" + VALID)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("override", [f"master.password {SECRET}", f"password:{SECRET}",
                                      f".password={SECRET}"])
def test_a_malformed_override_never_shows_a_secret(override):
    with pytest.raises(ConfigError, match="invalid override") as info:
        load(VALID, [override])
    assert SECRET not in str(info.value)


def test_the_script_prints_one_line_without_the_secret(tmp_path):
    path = tmp_path / "typo.conf"
    path.write_text(with_line(f"password {SECRET}"))
    path.chmod(0o600)
    assert_clean_error(run(["--config-file", str(path)]), "not INI syntax", "password ***")
    debug = run(["--config-file", str(path), "--debug"])  # a traceback, masked
    assert debug.returncode == 2 and SECRET not in debug.stderr + debug.stdout


# --- spaces around a secret -----------------------------------------------------------

@pytest.mark.parametrize("written, meant", [
    ('" s3cret "', " s3cret "),  # quoted: the spaces are part of it
    ('"s3cret"', "s3cret"),
    ('""quoted""', '"quoted"'),  # a secret that is itself in quotes: one more pair
    ("  s3cret  ", "s3cret"),  # unquoted: INI drops the spaces around a value
    ('s3"cr"et', 's3"cr"et'),  # quotes inside are kept
    ('"', '"'),
])
def test_secrets_keep_their_spaces_when_quoted(written, meant):
    config = load(VALID.replace("password = s3cret", f"password = {written}"))
    assert config.target("master").settings.auth["password"] == meant
    config = load(VALID, [f"master.password={written}"])
    assert config.target("master").settings.auth["password"] == meant


def test_quotes_are_kept_in_options_that_are_not_secret():
    config = load(VALID.replace("username = admin", 'username = " admin "'))
    assert config.target("master").settings.auth["username"] == '" admin "'


def test_an_application_credential_secret_keeps_its_spaces_when_quoted():
    text = VALID.replace("username = admin\npassword = s3cret\nproject_name = admin\n",
                         'application_credential_id = id\n'
                         'application_credential_secret = " x "\n')
    auth = load(text).target("master").settings.auth
    assert auth["application_credential_secret"] == " x "


# --- files that are no configuration --------------------------------------------------

@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "fifo.conf"
    os.mkfifo(path)
    return path


@pytest.mark.timeout(120)  # /dev/zero and a FIFO hung for ever
@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "folder", "huge", "/dev/null"])
@pytest.mark.parametrize("how", ["--config-file", "GLANCESYNC_CONFIG"])
def test_a_file_that_is_no_configuration_is_refused_without_hanging(tmp_path, fifo, kind, how):
    if kind == "fifo":
        path = fifo
    elif kind == "folder":
        path = tmp_path
    elif kind == "huge":
        path = tmp_path / "huge.conf"
        path.write_text(VALID + "# " + "x" * MAX_CONFIG_SIZE + "\n")
    else:
        path = Path(kind)
    argv, env = ((["--config-file", str(path)], {}) if how == "--config-file"
                 else ([], {"GLANCESYNC_CONFIG": str(path)}))
    done = run(argv, env, timeout=30)
    expected = {"fifo": "not a regular file (a FIFO, a device or a socket)",
                "/dev/zero": "not a regular file (a FIFO, a device or a socket)",
                "/dev/null": "not a regular file (a FIFO, a device or a socket)",
                "folder": "Is a directory",
                "huge": f"more than the {MAX_CONFIG_SIZE} allowed"}[kind]
    assert_clean_error(done, "cannot read the configuration file", expected, str(path))


def test_a_stream_larger_than_a_configuration_is_refused():
    with pytest.raises(ConfigError, match="at most"):
        load(VALID + "#" * MAX_CONFIG_SIZE)
    with pytest.raises(ConfigError, match="at most"):
        load_config(io.BytesIO(b"#" * (MAX_CONFIG_SIZE + 1)), (), {})


def test_a_path_with_a_nul_is_a_clean_error():
    done = run([], {"GLANCESYNC_CONFIG": "x"}, timeout=30)  # sanity: missing file
    assert_clean_error(done, "No such file")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(None, (), {"GLANCESYNC_CONFIG": "a\0b"})


# --- files a credential names: clouds.yaml, CA bundle, client certificate --------------

@pytest.fixture
def listening() -> str:
    """An https Keystone URL on a loopback port that accepts connections and never
    answers: the client gets as far as loading its CA bundle."""
    import socket
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"https://127.0.0.1:{server.getsockname()[1]}/v3"
    server.close()


def clouds_yaml(path: Path, auth_url: str, **settings: str) -> Path:
    import json
    path.write_text(json.dumps({"clouds": {"c": {
        "auth": {"auth_url": auth_url, "username": "admin", "password": SECRET,
                 "project_name": "admin"}, **settings}}}))
    return path


@pytest.mark.timeout(180)  # each of them blocked for ever
@pytest.mark.parametrize("case", [
    "clouds.yaml FIFO", "secure.yaml FIFO", "FIFO after a broken clouds.yaml", "cacert FIFO", "cacert /dev/zero",
    "cloud cacert FIFO", "OS_CACERT FIFO", "REQUESTS_CA_BUNDLE FIFO", "cloud cert FIFO"])
def test_a_credential_file_that_would_block_is_refused(tmp_path, fifo, listening, case):
    """A FIFO (or a device) named as clouds.yaml or as a TLS file: one clean error."""
    conf = tmp_path / "glancesync.conf"
    env: dict[str, str] = {}
    master = f"auth_url = {listening}\nusername = admin\npassword = {SECRET}\nproject_name = a\n"
    cloud = "cloud = c\n"
    expected = f"{fifo} is a FIFO, not a regular file"
    if case == "clouds.yaml FIFO":
        env["OS_CLIENT_CONFIG_FILE"], master = str(fifo), cloud
        fragments = ("cannot read the clouds.yaml file ($OS_CLIENT_CONFIG_FILE)", expected)
    elif case == "FIFO after a broken clouds.yaml":
        # openstacksdk skips a file it cannot parse and opens the next one it finds:
        # ./clouds.yaml in the working folder of the run.
        broken = tmp_path / "broken.yaml"
        broken.write_text("clouds: [unclosed\n")
        env["OS_CLIENT_CONFIG_FILE"], master = str(broken), cloud
        os.mkfifo(tmp_path / "clouds.yaml")
        fifo = tmp_path / "clouds.yaml"
        expected = f"{fifo} is a FIFO, not a regular file"
        fragments = ("cannot read the clouds.yaml file", expected)
    elif case == "secure.yaml FIFO":
        env["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml(tmp_path / "c.yaml", listening))
        env["OS_CLIENT_SECURE_FILE"], master = str(fifo), cloud
        fragments = ("cannot read the clouds.yaml file ($OS_CLIENT_SECURE_FILE)", expected)
    elif case == "cacert FIFO":
        master += f"cacert = {fifo}\n"
        fragments = ("cannot use the TLS file of cacert", expected)
    elif case == "cacert /dev/zero":
        master += "cacert = /dev/zero\n"
        fragments = ("cannot use the TLS file of cacert", "/dev/zero is a device")
    elif case == "cloud cacert FIFO":
        env["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml(tmp_path / "c.yaml", listening,
                                                       cacert=str(fifo)))
        master, fragments = cloud, ("cannot use the TLS file of cacert", expected)
    elif case == "OS_CACERT FIFO":  # openstacksdk's cloud of the OS_* variables
        env.update(OS_CLOUD="envvars", OS_AUTH_URL=listening, OS_USERNAME="admin",
                   OS_PASSWORD=SECRET, OS_PROJECT_NAME="admin", OS_CACERT=str(fifo),
                   OS_CLIENT_CONFIG_FILE=str(tmp_path / "none.yaml"))
        master, fragments = "", ("cannot use the TLS file of cacert", expected)
    elif case == "REQUESTS_CA_BUNDLE FIFO":
        env["REQUESTS_CA_BUNDLE"] = str(fifo)
        fragments = ("cannot use the TLS file of $REQUESTS_CA_BUNDLE", expected)
    else:
        cert, _ = tmp_path / "cert.pem", tmp_path / "key.pem"
        cert.write_text("not used\n")
        env["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml(tmp_path / "c.yaml", listening,
                                                       cert=str(cert), key=str(fifo)))
        master, fragments = cloud, ("cannot use the TLS file of cert", expected)
    conf.write_text(f"[main]\nmaster_region = Master\n[master]\n{master}")
    conf.chmod(0o600)
    done = run(["--config-file", str(conf)], env, timeout=90, cwd=tmp_path)
    assert_clean_error(done, *fragments, "[master]")


@pytest.mark.timeout(120)  # it blocked for ever, waiting for a reader
def test_a_log_file_that_is_a_fifo_nobody_reads_is_refused(fifo, tmp_path):
    done = run(["--log-file", str(fifo)], {"GLANCESYNC_CONFIG": str(tmp_path / "none")},
               timeout=60)
    assert_clean_error(done, f"cannot write the log file {fifo}", "a FIFO that nobody reads")
    # A device (/dev/null) still takes the log, as before.
    done = run(["--log-file", "/dev/null"], {"GLANCESYNC_CONFIG": str(tmp_path / "none")},
               timeout=60)
    assert "cannot write the log file" not in done.stderr
