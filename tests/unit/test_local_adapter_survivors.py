"""The local adapter's state changes, members and checks, pinned (issue 27's survivors)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.backends.local.store import LocalStore, RequestContext
from glancesync.errors import (ConflictError, ImageNotFoundError, RegionNotFoundError,
                               ServiceError, UsageError)


@pytest.fixture
def region(tmp_path):
    with LocalRegionAdapter("local:Spain", tmp_path / "Spain", "tenant") as adapter:
        yield adapter


def active_image(region: LocalRegionAdapter, name: str = "img", **kwargs) -> str:
    image = region.create_image(name, disk_format="raw", container_format="bare", **kwargs)
    region.upload_data(image.id, [b"data"], size=4)
    return image.id


def test_deactivate_then_reactivate(region):
    image_id = active_image(region)
    assert region.deactivate_image(image_id).status == "deactivated"
    assert region.get_image(image_id).status == "deactivated"
    assert region.deactivate_image(image_id).status == "deactivated"  # stays so
    assert region.reactivate_image(image_id).status == "active"
    assert region.get_image(image_id).status == "active"
    assert region.reactivate_image(image_id).status == "active"  # stays so


def test_a_queued_image_is_neither_deactivated_nor_reactivated(region):
    image_id = region.create_image("queued").id
    with pytest.raises(ConflictError) as caught:
        region.deactivate_image(image_id)
    assert caught.value.message == "image is queued: only an active image can become deactivated"
    assert caught.value.status_code == 400
    assert (caught.value.region, caught.value.image) == ("local:Spain", image_id)
    with pytest.raises(ConflictError) as caught:
        region.reactivate_image(image_id)
    assert caught.value.message == "image is queued: only an deactivated image can become active"
    assert caught.value.status_code == 400
    assert region.get_image(image_id).status == "queued"


def test_state_change_of_a_missing_image(region):
    region.ensure_exists()
    missing = "00000000-0000-4000-8000-000000000000"
    for change in (region.deactivate_image, region.reactivate_image):
        with pytest.raises(ImageNotFoundError) as caught:
            change(missing)
        assert (caught.value.region, caught.value.image) == ("local:Spain", missing)


def test_members_added_listed_and_removed(region):
    image_id = active_image(region, visibility="shared")
    other = active_image(region, "other", visibility="shared")
    assert region.list_members(image_id) == []
    region.add_member(image_id, "p1")
    region.add_member(image_id, "p2")
    region.add_member(other, "p3")
    assert region.list_members(image_id) == ["p1", "p2"]
    assert region.store.image_member_find(region.context, image_id=image_id,
                                          member="p1")[0]["status"] == "pending"
    region.remove_member(image_id, "p1")
    assert region.list_members(image_id) == ["p2"]
    assert region.list_members(other) == ["p3"]
    region.remove_member(image_id, "p2")
    assert region.list_members(image_id) == []


def test_only_shared_images_take_members(region):
    image_id = active_image(region, visibility="private")
    with pytest.raises(ConflictError) as caught:
        region.add_member(image_id, "p1")
    assert caught.value.message == "only shared images have members (this one is private)"
    assert caught.value.status_code == 403
    assert (caught.value.region, caught.value.image) == ("local:Spain", image_id)
    assert region.list_members(image_id) == []


def test_removing_a_project_that_is_not_a_member(region):
    image_id = active_image(region, visibility="shared")
    other = active_image(region, "other", visibility="shared")
    region.add_member(other, "p1")
    region.add_member(image_id, "p2")
    with pytest.raises(ImageNotFoundError) as caught:
        region.remove_member(image_id, "p1")
    assert caught.value.message == "project p1 is not a member"
    assert caught.value.status_code == 404
    assert (caught.value.region, caught.value.image) == ("local:Spain", image_id)
    assert region.list_members(other) == ["p1"]
    assert region.list_members(image_id) == ["p2"]


def test_members_of_a_missing_image(region):
    region.ensure_exists()
    missing = "00000000-0000-4000-8000-000000000000"
    for call in (region.list_members, lambda i: region.add_member(i, "p1")):
        with pytest.raises(ImageNotFoundError) as caught:
            call(missing)
        assert (caught.value.region, caught.value.image) == ("local:Spain", missing)


def test_tags_are_set_through_update_image(region):
    image_id = region.create_image("a").id
    updated = region.update_image(image_id, {"tags": ["b", "a"]})
    assert updated.tags == ["b", "a"]
    assert region.get_image(image_id).tags == ["b", "a"]
    renamed = region.update_image(image_id, {"name": "renamed"})  # tags untouched
    assert (renamed.name, renamed.tags) == ("renamed", ["b", "a"])
    assert region.update_image(image_id, {"tags": []}).tags == []
    assert region.get_image(image_id).tags == []


@pytest.mark.parametrize("tags", ["abc", ["ok", ""], ["x" * 256], [5]])
def test_invalid_tags_are_refused_by_update_image(region, tags):
    image_id = region.create_image("a").id
    region.update_image(image_id, {"tags": ["kept"]})
    with pytest.raises(UsageError) as caught:
        region.update_image(image_id, {"tags": tags})
    assert caught.value.message == ("tags must be a list of strings of 1 to 255 characters,"
                                    f" not {tags!r}")
    assert (caught.value.region, caught.value.image) == ("local:Spain", image_id)
    assert region.get_image(image_id).tags == ["kept"]


def test_an_invalid_change_names_the_image(region):
    image_id = region.create_image("a").id
    with pytest.raises(UsageError) as caught:
        region.update_image(image_id, {"min_ram": -1})
    assert (caught.value.region, caught.value.image) == ("local:Spain", image_id)


def test_a_core_field_is_not_removed(region):
    image_id = region.create_image("a").id
    with pytest.raises(UsageError) as caught:
        region.update_image(image_id, {}, remove=["name"])
    assert caught.value.message == "'name' is a core field, it cannot be removed"


def test_a_protected_image_is_not_deleted(region):
    image_id = region.create_image("a", protected=True).id
    with pytest.raises(ConflictError) as caught:
        region.delete_image(image_id)
    assert (caught.value.message, caught.value.status_code) == (
        "image is protected; unprotect it before deleting it", 403)
    assert region.get_image(image_id).protected is True


def test_a_listing_past_its_time_says_so(tmp_path):
    with LocalRegionAdapter("local:R", tmp_path / "R", "tenant", page_size=1,
                            list_timeout=-1) as adapter:
        adapter.create_image("a")
        adapter.create_image("b")
        with pytest.raises(ServiceError) as caught:
            adapter.list_images()
    assert caught.value.message == "listing images took more than -1 s"


def test_a_listing_asks_one_page_at_a_time(tmp_path):
    with LocalRegionAdapter("local:R", tmp_path / "R", "tenant", page_size=2) as adapter:
        for index in range(5):
            adapter.create_image(f"img-{index}")
        statements: list[str] = []
        adapter.store._connection().set_trace_callback(statements.append)
        assert len(adapter.list_images()) == 5
    limits = [s for s in statements if s.startswith("SELECT * FROM images") and "LIMIT" in s]
    assert len(limits) == 3
    assert all(s.endswith("LIMIT 2") for s in limits)


def test_errors_of_an_unreadable_region_name_the_image(tmp_path):
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "images.db").write_bytes(b"this is not a database" * 100)
    adapter = LocalRegionAdapter("local:R", tmp_path / "R", "tenant")
    image_id = "00000000-0000-4000-8000-000000000000"
    for call in (adapter.get_image, adapter.download_data):
        with pytest.raises(ServiceError) as caught:
            call(image_id)
        assert (caught.value.region, caught.value.image) == ("local:R", image_id)
    adapter.close()


def test_a_tag_of_255_characters_is_taken(region):
    image_id = region.create_image("a").id
    assert region.update_image(image_id, {"tags": ["x" * 255, "y"]}).tags == ["x" * 255, "y"]


@pytest.mark.parametrize("kwargs, message", [
    ({"visibility": "world"},
     "visibility must be one of public, community, shared, private, not 'world'"),
    ({"disk_format": "floppy"}, "unknown disk_format 'floppy'; one of ami, ari, aki, vhd, vhdx,"
                                " vmdk, raw, qcow2, vdi, iso, ploop"),
    ({"container_format": "box"}, "unknown container_format 'box'; one of ami, ari, aki, bare,"
                                  " ovf, ova, docker, compressed"),
    ({"min_ram": -1}, "min_ram must be an integer >= 0, not -1"),
    ({"min_disk": -2}, "min_disk must be an integer >= 0, not -2"),
    ({"min_disk": True}, "min_disk must be an integer >= 0, not True"),
    ({"protected": 1}, "protected must be a boolean, not 1"),
    ({"properties": {5: "x"}}, "invalid property name 5"),
    ({"properties": {"": "x"}}, "invalid property name ''"),
    ({"properties": {"os_glance_x": "1"}}, "'os_glance_x' is reserved, it cannot be set as a"
                                           " property"),
    ({"properties": {"name": "1"}}, "'name' is reserved, it cannot be set as a property"),
    ({"properties": {"n": 1}}, "property 'n' must be a string, not 1"),
    ({"image_id": "not-a-uuid"}, "image id 'not-a-uuid' is not a UUID"),
])
def test_create_says_what_is_wrong(region, kwargs, message):
    with pytest.raises(UsageError) as caught:
        region.create_image("bad", **kwargs)
    assert caught.value.message == message
    assert region.list_images() == []


@pytest.mark.parametrize("changes, message", [
    ({"os_hidden": 1}, "os_hidden must be a boolean, not 1"),
    ({"min_ram": "2"}, "min_ram must be an integer >= 0, not '2'"),
    ({"name": "x" * 256}, f"name must be a string of at most 255 characters, not {'x' * 256!r}"),
])
def test_update_says_what_is_wrong(region, changes, message):
    image_id = region.create_image("a").id
    with pytest.raises(UsageError) as caught:
        region.update_image(image_id, changes)
    assert caught.value.message == message


def test_create_defaults(region):
    image = region.create_image("plain")
    assert (image.min_ram, image.min_disk, image.protected, image.visibility) == (
        0, 0, False, "private")


def test_an_invalid_creation_with_an_id_names_it(region):
    image_id = "00000000-0000-4000-8000-000000000001"
    with pytest.raises(UsageError) as caught:
        region.create_image("bad", visibility="world", image_id=image_id)
    assert (caught.value.region, caught.value.image) == ("local:Spain", image_id)


@pytest.mark.parametrize("formats", [{"disk_format": "raw"}, {"container_format": "bare"}, {}])
def test_no_data_without_both_formats(region, formats):
    image_id = region.create_image("a", **formats).id
    with pytest.raises(UsageError) as caught:
        region.upload_data(image_id, [b"abc"])
    assert caught.value.message == ("disk_format and container_format must be set before the"
                                    " image takes data (Glance refuses it too)")
    assert (caught.value.region, caught.value.image) == ("local:Spain", image_id)
    assert region.get_image(image_id).status == "queued"


def test_signed_data_is_refused_for_want_of_a_key_manager(region):
    signature = {"img_signature": "c2ln", "img_signature_hash_method": "SHA-256",
                 "img_signature_key_type": "RSA-PSS",
                 "img_signature_certificate_uuid": "cert-1"}
    image_id = region.create_image("a", disk_format="raw", container_format="bare",
                                   properties=signature).id
    with pytest.raises(ServiceError) as caught:
        region.upload_data(image_id, [b"abc"])
    assert caught.value.message == (
        "signature verification failed: a local region has no key manager to retrieve"
        " certificate cert-1 from (Glance refuses such data too when its key manager lacks"
        " the certificate)")
    assert (caught.value.status_code, caught.value.image) == (400, image_id)
    assert region.get_image(image_id).status == "queued"
    partial = dict(signature, img_signature="")
    other = region.create_image("b", disk_format="raw", container_format="bare",
                                properties=partial).id
    assert region.upload_data(other, [b"abc"]).status == "active"


def test_times_are_given_in_the_api_form(region):
    image_id = region.create_image("a").id
    data = region.store.image_get(region.context, image_id)
    image = region.get_image(image_id)
    assert image.created_at == data["created_at"][:19] + "Z"
    assert image.updated_at == data["updated_at"][:19] + "Z"
    assert len(image.updated_at) == 20


def test_a_row_without_update_time_is_read(region):
    image_id = region.create_image("a").id
    with region.writable_store._transaction() as conn:  # a database made elsewhere
        conn.execute("UPDATE images SET updated_at = NULL WHERE id = ?", (image_id,))
    assert region.get_image(image_id).updated_at is None


def test_a_closed_adapter_opens_its_region_again(region):
    image_id = region.create_image("a").id
    region.close()
    assert region.get_image(image_id).id == image_id
    region.close()
    assert region.update_image(image_id, {"name": "b"}).name == "b"


def test_the_visibility_is_checked_first(region):
    with pytest.raises(UsageError) as caught:
        region.create_image("bad", visibility="world", disk_format="floppy")
    assert caught.value.message.startswith("visibility must be one of ")
    image_id = region.create_image("a").id
    with pytest.raises(UsageError) as caught:
        region.update_image(image_id, {"visibility": "world", "min_ram": -1})
    assert caught.value.message.startswith("visibility must be one of ")


def test_a_name_of_255_characters_is_taken(region):
    assert region.create_image("x" * 255).name == "x" * 255
    with pytest.raises(UsageError):
        region.create_image("x" * 256)


def test_members_of_an_unreadable_region_name_the_image(tmp_path):
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "images.db").write_bytes(b"this is not a database" * 100)
    adapter = LocalRegionAdapter("local:R", tmp_path / "R", "tenant")
    image_id = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(ServiceError) as caught:
        adapter.list_members(image_id)
    assert (caught.value.region, caught.value.image) == ("local:R", image_id)
    adapter.close()


@pytest.mark.parametrize("change, source", [("deactivate_image", "active"),
                                            ("reactivate_image", "deactivated")])
def test_a_state_change_raced_by_another_writer_is_refused(region, change, source):
    """Another process kills the image between the adapter's read and its write."""
    image_id = active_image(region)
    if source == "deactivated":
        region.deactivate_image(image_id)
    other = LocalStore(region.path)
    fired = []

    def meanwhile(statement: str) -> None:
        # SQLite traces a statement before running it: the write lock is not taken yet.
        if statement == "BEGIN IMMEDIATE" and not fired:
            fired.append(statement)
            other.image_update(RequestContext("admin", True), image_id, {"status": "killed"})

    region.writable_store._connection().set_trace_callback(meanwhile)
    with pytest.raises(ConflictError) as caught:
        getattr(region, change)(image_id)
    region.writable_store._connection().set_trace_callback(None)
    other.close()
    assert fired
    assert caught.value.message == f"image is killed, not {source}"
    assert region.get_image(image_id).status == "killed"


def test_adapter_defaults(tmp_path):
    adapter = LocalRegionAdapter("local:R", tmp_path / "R", "tenant")
    assert (adapter.list_timeout, adapter.page_size, adapter.create) == (30, 100, True)
    assert adapter.context == RequestContext("tenant", True)
    with pytest.raises(UsageError) as caught:
        LocalRegionAdapter("local:R", tmp_path / "R", "tenant", page_size=0)
    assert caught.value.message == "page_size must be >= 1, not 0"


def test_an_undeclared_region_without_a_store_is_unknown(tmp_path):
    adapter = LocalRegionAdapter("local:R", tmp_path / "R", "tenant", create=False)
    for call in (adapter.ensure_exists, adapter.list_images, lambda: adapter.create_image("a")):
        with pytest.raises(RegionNotFoundError) as caught:
            call()
        assert caught.value.message == (f"region local:R: {tmp_path / 'R'} holds no local"
                                        " region (no images.db); declare it in its target's"
                                        " regions to create it")
        assert caught.value.region == "local:R"
    assert not (tmp_path / "R").exists()


def test_a_region_on_read_only_media_is_not_changed(tmp_path):
    folder = tmp_path / "R"
    with LocalRegionAdapter("local:R", folder, "tenant") as adapter:  # in this process too
        adapter.create_image("a")
    code = ("import sys\n"
            "from glancesync.backends.local.adapter import LocalRegionAdapter\n"
            "from glancesync.errors import ServiceError\n"
            "adapter = LocalRegionAdapter('local:R', sys.argv[1], 'tenant')\n"
            "print([image.name for image in adapter.list_images()])\n"
            "for change in (adapter.ensure_exists, lambda: adapter.create_image('b')):\n"
            "    try:\n"
            "        change()\n"
            "    except ServiceError as exc:\n"
            "        print(exc.region, exc.message, sep='|')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    command = [sys.executable, "-c", code, str(folder)]
    if os.geteuid() == 0:
        command = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'set -e; mount --bind "$1" "$1"; mount -o remount,bind,ro "$1"; shift;'
                   ' exec "$@"', "sh", str(folder), *command]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    else:
        folder.chmod(0o555)
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        finally:
            folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    refusal = f"local:R|{folder} is not writable (read-only media?): the region can be read,"
    assert done.stdout.splitlines() == ["['a']", refusal + " not changed",
                                        refusal + " not changed"]
