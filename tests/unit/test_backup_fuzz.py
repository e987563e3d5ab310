"""Fuzz of backup files: restores and their dry runs (issue 15, case 9).

Property-based (hypothesis), derandomized so that every run tries the same
inputs, and bounded (a number of examples, a hang guard). The inputs: real
backup files mutated (bytes cut or inserted, lines swapped or repeated,
one value replaced by a hostile one), records built from the backup's
fields with hostile JSON values, and random bytes; recorded for the region
or for another, restored with and without ``force``. The only outcomes
allowed:

* ``GlanceSync.restore_backup`` returns the ids it changed or raises a
  :class:`~glancesync.errors.GlanceSyncError`, and when it raises nothing
  changed in the region;
* the dry run and the restore that follows it agree: the same ids, or the
  same error (a dry run never accepts what the restore refuses);
* ``glancesync-backup --restore`` exits with a documented status, with no
  traceback and at most one error line.

Each test prints its counts: inputs tried, clean errors, accepted,
tracebacks and hangs (the last two must be 0).
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glancesync import demo
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.errors import GlanceSyncError
from glancesync.facade import GlanceSync
from glancesync_scripts import backup as backup_script
from tests.unit.test_config_fuzz import (DOCUMENTED_STATUSES, Tally, fuzz_settings,
                                         isolated_process_state)

__all__ = ["isolated_process_state"]  # a fixture of the script test below

REGION = "master:RegionB"
FIELDS = ["region", "name", "id", "status", "size", "checksum", "owner", "is_public",
          "visibility", "min_ram", "min_disk", "protected", "properties"]
HOSTILE_STRINGS = ["", " ", "x" * 300, "\x00", "\x1b[31m", "a\nb", "\u202e", "=1+1",
                   "../../etc/passwd", "public", "private", "community", "shared", "bogus",
                   "master:RegionA", "master:RegionB", "other:RegionC", "id", "name",
                   "kernel_id", "ramdisk_id", "glancesync.master_image_id", "os_glance_x",
                   "stores", "owner_specified.openstack.md5", "nid", "type", "\ud800"]
HOSTILE_NUMBERS = [0, -1, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 63, 10 ** 30, 1.5, float("nan"),
                   float("inf"), -0.0]
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.sampled_from(HOSTILE_NUMBERS),
                        st.integers(), st.floats(), st.sampled_from(HOSTILE_STRINGS),
                        st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=10)),
                    inner, max_size=4)), max_leaves=12)


def dumps(value: object) -> bytes:
    """JSON as a careless tool writes it (NaN, lone surrogates)."""
    return json.dumps(value).encode("utf-8", "surrogatepass")


@st.composite
def records(draw, saved: list[dict]) -> dict:
    """A backup record: a saved one with some fields hostile, or one made up."""
    if saved and draw(st.booleans()):
        record = dict(draw(st.sampled_from(saved)))
    else:
        record = {}
    for _ in range(draw(st.integers(0, 4))):
        field = draw(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)))
        action = draw(st.sampled_from(["set", "set", "drop", "property"]))
        if action == "drop":
            record.pop(field, None)
        elif action == "property":
            properties = record.get("properties")
            properties = dict(properties) if isinstance(properties, dict) else {}
            key = draw(st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=10)))
            properties[key] = draw(st.one_of(st.sampled_from(HOSTILE_STRINGS), JSON_VALUES))
            record["properties"] = properties
        else:
            record[field] = draw(JSON_VALUES)
    return record


@st.composite
def backup_files(draw, saved: list[dict], text: bytes) -> bytes:
    family = draw(st.sampled_from(["records", "records", "mutated", "bytes", "json"]))
    if family == "records":
        lines = [dumps(draw(records(saved))) for _ in range(draw(st.integers(1, 4)))]
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), dumps(draw(st.sampled_from(saved))))
        return b"\n".join(lines) + draw(st.sampled_from([b"\n", b"", b"\n\n", b"\r\n"]))
    if family == "json":
        return dumps(draw(JSON_VALUES)) + b"\n"
    if family == "bytes":
        return draw(st.binary(max_size=300))
    data = text
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "insert", "swap", "duplicate"]))
        lines = data.split(b"\n")
        if kind == "cut" and data:
            start = draw(st.integers(0, len(data) - 1))
            data = data[:start] + data[start + draw(st.integers(1, 30)):]
        elif kind == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.one_of(st.binary(min_size=1, max_size=6), st.sampled_from(
                [b"\n", b",", b"{", b"}", b'"', b"null", b"NaN", b"\x00", b"\xff"]))) + data[at:]
        elif kind == "swap" and len(lines) > 1:
            first, second = (draw(st.integers(0, len(lines) - 1)) for _ in range(2))
            lines[first], lines[second] = lines[second], lines[first]
            data = b"\n".join(lines)
        else:
            line = draw(st.integers(0, len(lines) - 1))
            lines.insert(line, lines[line])
            data = b"\n".join(lines)
    return data


class Region:
    """RegionB of a synchronised demo federation, with a public image of another project."""

    def __init__(self, folder: Path, template: Path) -> None:
        shutil.copytree(template, folder)
        self.config = folder / "glancesync.conf"
        self.config.write_text(self.config.read_text().replace(str(template), str(folder)))
        self.path = folder / "federation" / "RegionB"

    def snapshot(self) -> list[tuple]:
        adapter = LocalRegionAdapter(REGION, self.path, demo.PROJECT)
        try:
            return sorted((i.id, i.name, i.visibility, i.min_ram, i.min_disk, i.protected,
                           tuple(sorted(i.properties.items()))) for i in adapter.list_images())
        finally:
            adapter.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("backup-fuzz")
    config = demo.build_federation(folder)
    theirs = LocalRegionAdapter(REGION, folder / "federation" / "RegionB", "someone-else",
                                is_admin=False)
    image = theirs.create_image("their-public", visibility="public", disk_format="raw",
                                container_format="bare")
    theirs.upload_data(image.id, [b"x"], 1)
    theirs.close()
    with pytest.MonkeyPatch.context() as patch, open(config) as stream, \
            GlanceSync(stream, progress=False) as gs:
        patch.setenv("GLANCESYNC_LOCK_DIR", str(folder / "locks"))
        assert gs.sync(["RegionA", "RegionB"]).exit_status == 0
        gs.backup_glancemetadata_region("RegionB", path=folder / "saved")
    return folder


def saved_backup(template: Path) -> tuple[list[dict], bytes]:
    [path] = (template / "saved").glob("*/backup_master_RegionB.jsonl")
    text = path.read_bytes()
    return [json.loads(line) for line in text.splitlines()], text


def outcome(call) -> tuple[str, object]:
    try:
        return "ok", sorted(call())
    except GlanceSyncError as error:
        return "error", f"{type(error).__name__}: {error}"


@pytest.mark.timeout(900)  # a hang guard for the whole run (about a minute)
def test_fuzz_restore_and_its_dry_run(tmp_path, template, request, monkeypatch):
    monkeypatch.setenv("GLANCESYNC_LOCK_DIR", str(tmp_path / "locks"))
    region = Region(tmp_path / "fed", template)
    saved, text = saved_backup(template)
    tally = Tally("restore_backup")
    file = tmp_path / "fuzzed.jsonl"
    gs = GlanceSync(open(region.config), progress=False)

    @fuzz_settings(700)
    @given(backup_files(saved, text), st.booleans())
    def run(data, force):
        tally.counts["inputs"] += 1
        file.write_bytes(data)
        before = region.snapshot()
        started = time.monotonic()
        try:
            dry = outcome(lambda: gs.restore_backup(REGION, file, dry_run=True, force=force))
            assert region.snapshot() == before, "a dry run changed the region"
            real = outcome(lambda: gs.restore_backup(REGION, file, force=force))
        except Exception as error:  # noqa: BLE001 - anything else is a finding
            tally.counts["tracebacks"] += 1
            tally.failures.append(f"{type(error).__name__}: {error} for {data[:300]!r}")
            return
        finally:
            tally.time(started, repr(data[:300]))
        if real[0] == "error":
            tally.counts["clean errors"] += 1
            if region.snapshot() != before:
                tally.failures.append(f"changed the region, then failed: {real[1]}")
        else:
            tally.counts["accepted"] += 1
            tally.counts["images restored"] += len(real[1])
        if dry != real:
            tally.failures.append(f"the dry run said {dry}, the restore {real}"
                                  f" for {data[:300]!r}")

    try:
        run()
    finally:
        gs.close()
    # The inputs reach both sides, restores done and files refused, and
    # some restores really change images.
    tally.finish(request, 600)
    assert tally.counts["images restored"]


@pytest.mark.timeout(900)
def test_fuzz_the_restore_script(tmp_path, template, request, isolated_process_state):
    region = Region(tmp_path / "fed", template)
    saved, text = saved_backup(template)
    tally = Tally("glancesync-backup --restore")
    file = tmp_path / "fuzzed.jsonl"

    @fuzz_settings(250)
    @given(backup_files(saved, text), st.sampled_from([[], ["--dry-run"], ["--force"]]))
    def run(data, extra):
        tally.counts["inputs"] += 1
        file.write_bytes(data)
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = backup_script.main(["--config-file", str(region.config), "--restore",
                                             str(file), "RegionB", "--quiet", *extra])
        except SystemExit as exit_:
            status = exit_.code
        except Exception as error:  # noqa: BLE001 - escaped main(): a finding
            status = f"{type(error).__name__}: {error}"
        finally:
            isolated_process_state()
            tally.time(started, repr(data[:300]))
        stderr = err.getvalue()
        if status not in DOCUMENTED_STATUSES or "Traceback" in stderr:
            tally.counts["tracebacks"] += 1
            tally.failures.append(f"status {status!r} for {data[:300]!r}: {stderr[-1500:]}")
            return
        tally.script_exit(status, len(stderr.splitlines()), f"{data[:300]!r}: {stderr}")

    run()
    tally.finish(request, 200)
