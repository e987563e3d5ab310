"""The retry layer: what is transient, how often, how long between, which calls."""
from __future__ import annotations

import logging

import pytest

from glancesync.errors import (AuthenticationError, ConflictError, ConnectionFailure,
                               GlanceSyncError, ImageNotFoundError, ServiceError, TLSError)
from glancesync.backends.base import RegionAdapter
from glancesync.backends.local.adapter import LocalRegionAdapter
from glancesync.retry import RetryingAdapter, RetryPolicy


def retrying(fn, *, attempts=4, what="operation", initial_wait=1.0, max_wait=30.0,
             sleep=None):
    """``fn()`` under a policy of ``attempts`` attempts."""
    policy = RetryPolicy(retries=attempts - 1, initial_wait=initial_wait, max_wait=max_wait,
                         sleep=sleep or (lambda _: None))
    return policy.call(fn, what)


class Flaky:
    """Fails with the given errors in turn, then returns ``result``."""

    def __init__(self, errors, result="done"):
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


@pytest.mark.parametrize("exc, transient", [
    (ConnectionFailure("reset"), True),
    (ServiceError("unavailable", status_code=503), True),
    (ServiceError("internal", status_code=500), True),
    (ServiceError("gateway timeout", status_code=504), True),
    (ServiceError("not implemented", status_code=501), False),
    (ConflictError("image not in queued state", status_code=409), False),
    (ImageNotFoundError("gone", status_code=404), False),
    (ServiceError("no status"), False),
    (AuthenticationError("bad password"), False),
    (TLSError("untrusted certificate"), False),
    (ServiceError("told so", status_code=400, transient=True), True),
    (ConnectionFailure("told so", transient=False), False),
])
def test_errors_say_whether_they_are_transient(exc, transient):
    assert exc.transient is transient
    assert RetryPolicy().retriable(exc) is transient


def test_only_our_errors_are_retried():
    assert RetryPolicy().retriable(ValueError("bug")) is False


def test_retry_after_lengthens_a_wait_and_a_longer_one_ends_the_retries():
    policy = RetryPolicy(initial_wait=1, max_wait=30)
    assert policy.wait(1, ServiceError("busy", status_code=503, retry_after=7)) == 7
    assert policy.wait(4, ServiceError("busy", status_code=503, retry_after=2)) == 8
    assert policy.wait(1, ServiceError("busy", status_code=503)) == 1
    assert policy.retriable(ServiceError("busy", status_code=503, retry_after=30))
    assert not policy.retriable(ServiceError("busy", status_code=503, retry_after=31))


def test_retry_after_is_honoured_by_call():
    delays = []
    fn = Flaky([ServiceError("busy", status_code=503, retry_after=5),
                ConnectionFailure("reset")])
    assert retrying(fn, attempts=4, initial_wait=1, sleep=delays.append) == "done"
    assert delays == [5, 2]


def test_a_retry_after_beyond_max_wait_raises_at_once():
    delays = []
    later = ServiceError("come back tomorrow", status_code=503, retry_after=86400)
    fn = Flaky([later])
    with pytest.raises(ServiceError) as info:
        retrying(fn, attempts=4, max_wait=30, sleep=delays.append)
    assert info.value is later and fn.calls == 1 and delays == []


def test_every_error_has_the_retry_attributes():
    error = GlanceSyncError("plain")
    assert error.transient is False and error.retry_after is None


def test_transient_errors_are_retried_with_exponential_backoff(caplog):
    delays = []
    fn = Flaky([ConnectionFailure("reset"), ServiceError("busy", status_code=503),
                ConnectionFailure("reset")])
    with caplog.at_level(logging.WARNING, logger="glancesync.retry"):
        assert retrying(fn, attempts=4, what="upload of cirros", initial_wait=1,
                        sleep=delays.append) == "done"
    assert fn.calls == 4
    assert delays == [1, 2, 4]
    assert caplog.text.count("upload of cirros failed") == 3
    assert "attempt 1 of 4" in caplog.text


def test_waits_are_capped():
    delays = []
    fn = Flaky([ConnectionFailure("x")] * 5)
    retrying(fn, attempts=6, initial_wait=2, max_wait=5, sleep=delays.append)
    assert delays == [2, 4, 5, 5, 5]


def test_gives_up_after_attempts_and_raises_the_last_error():
    last = ServiceError("still down", status_code=503)
    fn = Flaky([ConnectionFailure("a"), ConnectionFailure("b"), last, ConnectionFailure("d")])
    with pytest.raises(ServiceError) as info:
        retrying(fn, attempts=3, sleep=lambda _: None)
    assert info.value is last
    assert fn.calls == 3


def test_permanent_errors_are_raised_at_once():
    conflict = ConflictError("image not in queued state", status_code=409)
    fn = Flaky([conflict])
    delays = []
    with pytest.raises(ConflictError) as info:
        retrying(fn, sleep=delays.append)
    assert info.value is conflict
    assert fn.calls == 1 and delays == []


def test_success_first_time_does_not_wait():
    delays = []
    assert retrying(Flaky([], result=42), sleep=delays.append) == 42
    assert delays == []


def test_retries_must_not_be_negative():
    with pytest.raises(ValueError):
        RetryPolicy(retries=-1)


# --- the adapter wrapper ------------------------------------------------------

class Flickering(LocalRegionAdapter):
    """A local region whose calls fail as scripted in ``faults`` (call -> kinds).

    ``"503"`` refuses the call; ``"lost"`` does the work, then loses the answer.
    """

    def __init__(self, path) -> None:
        super().__init__("t:R", path, "p1")
        self.faults: dict[str, list[str]] = {}
        self.calls: list[str] = []

    def _do(self, call: str, work):
        self.calls.append(call)
        fault = self.faults.get(call, []).pop(0) if self.faults.get(call) else None
        if fault == "503":
            raise ServiceError("unavailable", status_code=503, region=self.name)
        result = work()
        if fault == "lost":
            raise ConnectionFailure("answer lost", region=self.name)
        return result

    def list_images(self):
        return self._do("list", super().list_images)

    def create_image(self, name, **kwargs):
        return self._do("create", lambda: super(Flickering, self).create_image(name, **kwargs))

    def upload_data(self, image_id, chunks, size=None):
        return self._do("upload", lambda: super(Flickering, self).upload_data(
            image_id, chunks, size))

    def download_data(self, image_id):
        return self._do("download", lambda: super(Flickering, self).download_data(image_id))

    def delete_image(self, image_id):
        return self._do("delete", lambda: super(Flickering, self).delete_image(image_id))

    def add_member(self, image_id, project_id):
        return self._do("share", lambda: super(Flickering, self).add_member(
            image_id, project_id))

    def remove_member(self, image_id, project_id):
        return self._do("unshare", lambda: super(Flickering, self).remove_member(
            image_id, project_id))

    def reactivate_image(self, image_id):
        return self._do("reactivate", lambda: super(Flickering, self).reactivate_image(
            image_id))


@pytest.fixture
def flickering(tmp_path):
    region = Flickering(tmp_path / "R")
    delays = []
    yield region, RetryingAdapter(region, RetryPolicy(sleep=delays.append)), delays
    region.close()


IMAGE_ID = "0b8a3f52-5c36-4a8e-8d5e-2f1f5c0e9d11"
FORMATS = {"disk_format": "raw", "container_format": "bare"}


def test_wrapper_is_an_adapter_with_the_inner_names(flickering):
    region, wrapped, _ = flickering
    assert isinstance(wrapped, RegionAdapter)
    assert (wrapped.name, wrapped.project_id) == ("t:R", "p1")


def test_listing_is_retried(flickering):
    region, wrapped, delays = flickering
    region.faults["list"] = ["503", "503"]
    assert wrapped.list_images() == []
    assert region.calls == ["list"] * 3 and delays == [1, 2]


def test_creation_with_an_id_whose_answer_was_lost_gives_that_image(flickering):
    region, wrapped, _ = flickering
    region.faults["create"] = ["lost"]
    image = wrapped.create_image("img", image_id=IMAGE_ID, **FORMATS)
    assert image.id == IMAGE_ID and image.status == "queued"
    assert region.calls == ["create", "create"]
    assert [i.id for i in region.list_images()] == [IMAGE_ID]


def test_a_conflict_on_the_first_attempt_is_raised(flickering):
    region, wrapped, _ = flickering
    region.create_image("img", image_id=IMAGE_ID, **FORMATS)
    with pytest.raises(ConflictError):
        wrapped.create_image("img", image_id=IMAGE_ID, **FORMATS)


def test_a_conflict_with_an_image_that_is_not_ours_or_not_empty_is_raised(flickering, tmp_path):
    region, wrapped, _ = flickering
    made = region.create_image("img", image_id=IMAGE_ID, **FORMATS)
    region.upload_data(made.id, [b"data"], 4)  # active: not the lost attempt's
    region.faults["create"] = ["503"]
    with pytest.raises(ConflictError):
        wrapped.create_image("img", image_id=IMAGE_ID, **FORMATS)
    assert region.calls.count("create") == 3  # the scripted one, then 503, then 409


def test_creation_without_an_id_and_uploads_are_called_once(flickering):
    region, wrapped, _ = flickering
    region.faults["create"] = ["lost"]
    with pytest.raises(ConnectionFailure):
        wrapped.create_image("img", **FORMATS)
    image = region.list_images()[0]
    region.faults["upload"] = ["503"]
    with pytest.raises(ServiceError):
        wrapped.upload_data(image.id, [b"data"], 4)
    assert region.calls.count("create") == 1 and region.calls.count("upload") == 1


def test_download_request_is_retried(flickering):
    region, wrapped, _ = flickering
    made = region.create_image("img", **FORMATS)
    region.upload_data(made.id, [b"data"], 4)
    region.faults["download"] = ["503"]
    assert b"".join(wrapped.download_data(made.id)) == b"data"
    assert region.calls.count("download") == 2


def test_delete_whose_answer_was_lost_is_done(flickering):
    region, wrapped, _ = flickering
    made = region.create_image("img", **FORMATS)
    region.faults["delete"] = ["lost"]
    wrapped.delete_image(made.id)
    assert region.calls.count("delete") == 2 and region.list_images() == []
    with pytest.raises(ImageNotFoundError):  # gone at the first attempt: an error
        wrapped.delete_image(made.id)


def test_sharing_whose_answer_was_lost_is_done(flickering):
    region, wrapped, _ = flickering
    made = region.create_image("img", visibility="shared", **FORMATS)
    region.faults["share"] = ["lost"]
    wrapped.add_member(made.id, "alpha")
    assert region.calls.count("share") == 2 and region.list_members(made.id) == ["alpha"]
    with pytest.raises(ConflictError):  # a member at the first attempt: an error
        wrapped.add_member(made.id, "alpha")
    region.faults["unshare"] = ["lost"]
    wrapped.remove_member(made.id, "alpha")
    assert region.calls.count("unshare") == 2 and region.list_members(made.id) == []
    with pytest.raises(ImageNotFoundError):
        wrapped.remove_member(made.id, "alpha")


def test_reactivation_is_retried(flickering):
    region, wrapped, delays = flickering
    made = region.create_image("img", **FORMATS)
    region.upload_data(made.id, [b"data"])
    region.deactivate_image(made.id)
    region.faults["reactivate"] = ["503", "lost"]
    assert wrapped.reactivate_image(made.id).status == "active"
    assert region.calls.count("reactivate") == 3 and len(delays) == 2
