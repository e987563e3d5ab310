"""integrity: tests that kill surviving mutants of glancesync/integrity.py (issue 27);
each names the mutants it kills (mutmut 3.8.1 names, first run)."""
from __future__ import annotations

import errno
import hashlib
import io
import itertools
import logging
import os

import pytest

from glancesync.errors import ChecksumMismatchError, TransferError
from glancesync.image import Image
from glancesync.integrity import (CHUNK_SIZE, FileData, HashingStream, expected_hash,
                                  fsync_directory, label, open_regular_file,
                                  unlink_quietly, verify)

DATA = b"some image data"
MD5 = hashlib.md5(DATA).hexdigest()
SHA = hashlib.sha512(DATA).hexdigest()


def image(**kwargs) -> Image:
    fields = {"id": "i1", "name": "base", "status": "active", "size": len(DATA)}
    fields.update(kwargs)
    return Image(**fields)


def error(function, *args, **kwargs) -> TransferError:
    with pytest.raises(TransferError) as caught:
        function(*args, **kwargs)
    return caught.value


def test_an_image_without_hashes_cannot_be_verified_and_is_named():
    # kills expected_hash__mutmut_7, 8, 10..14 (the words and the image's label)
    caught = error(expected_hash, image())
    assert str(caught) == ("image base (i1): the image has neither os_hash_value nor"
                           " checksum; its data cannot be verified")
    assert caught.image == "base (i1)"


def test_an_algorithm_without_its_value_falls_back_to_the_checksum():
    # kills expected_hash__mutmut_1 ("and" made "or")
    img = image(os_hash_algo="sha512", checksum=MD5.upper())
    assert expected_hash(img) == ("md5", MD5)
    verify(img, MD5, None, size=len(DATA))


def test_an_unnamed_image_is_labelled_by_its_id():
    # kills label__mutmut_2 ("or True": "None (i1)")
    assert label(image(name=None)) == "i1"
    assert label(image()) == "base (i1)"


def test_a_missing_preferred_hash_and_a_wrong_size_name_the_image():
    # kills verify__mutmut_14, 15, 17 (no hash computed) and 25, 27 (size mismatch)
    img = image(checksum=MD5)
    caught = error(verify, img, None, None)
    assert str(caught) == "image base (i1): no md5 hash was computed; cannot verify"
    assert caught.image == "base (i1)"
    with pytest.raises(ChecksumMismatchError) as mismatch:
        verify(img, MD5, None, size=len(DATA) + 1)
    assert str(mismatch.value) == (f"image base (i1): size mismatch: expected {len(DATA)}"
                                   f" bytes, got {len(DATA) + 1}")
    assert mismatch.value.image == "base (i1)"


def test_a_stream_computes_only_the_hashes_asked_for():
    # kills HashingStream.__init__ mutants 11 and 17 ("or True"); "MD5" (14) is
    # equivalent: hashlib takes either case
    stream = HashingStream([DATA], None, md5=False)
    assert list(stream) == [DATA]
    assert (stream.md5, stream.os_hash, stream.size) == (None, None, len(DATA))
    stream = HashingStream([DATA], "SHA512", md5=True)
    list(stream)
    assert (stream.md5, stream.os_hash, stream.os_hash_algo) == (MD5, SHA, "sha512")


@pytest.mark.parametrize("fields, preferred_only, md5, os_hash", [
    # for_image mutants 5..12: md5 only, preferred
    ({"checksum": MD5, "os_hash_algo": "sha512"}, True, MD5, None),
    # 15, 17..19: the os hash only, preferred
    ({"checksum": MD5, "os_hash_algo": "sha512", "os_hash_value": SHA}, True, None, SHA),
    # 22, 28, 31: every declared hash; an algorithm without value is not computed
    ({"checksum": MD5, "os_hash_algo": "sha512"}, False, MD5, None),
    ({"os_hash_algo": "sha512", "os_hash_value": SHA}, False, None, SHA),
    ({"checksum": MD5, "os_hash_algo": "sha512", "os_hash_value": SHA}, False, MD5, SHA),
])
def test_a_stream_for_an_image_computes_what_it_declares(fields, preferred_only, md5,
                                                         os_hash):
    stream = HashingStream.for_image(iter([DATA]), image(**fields),
                                     preferred_only=preferred_only)
    assert list(stream) == [DATA]
    assert (stream.md5, stream.os_hash) == (md5, os_hash)
    stream.verify(image(**fields))


def test_a_stream_verifies_the_size_and_the_md5():
    # kills HashingStream.verify__mutmut_9, 11, 15 (md5 or size not passed on)
    stream = HashingStream([DATA, b"x"], None, md5=True)
    list(stream)
    with pytest.raises(ChecksumMismatchError, match="size mismatch"):
        stream.verify(image(checksum=hashlib.md5(DATA + b"x").hexdigest()))
    stream = HashingStream([DATA], None, md5=True)
    list(stream)
    with pytest.raises(ChecksumMismatchError, match="md5 mismatch"):
        stream.verify(image(checksum="0" * 32, os_hash_algo="sha512"))


def test_a_hash_of_another_algorithm_is_not_compared():
    # kills HashingStream.verify__mutmut_4 ("is not None" made "is None"): a sha256
    # stream checked against an image declaring sha512 and md5. Its mutant 7 ("" for
    # None) is equivalent: an empty hash counts as none computed.
    stream = HashingStream([DATA], "sha256", md5=True)
    list(stream)
    img = image(checksum=MD5, os_hash_algo="sha512", os_hash_value=SHA)
    with pytest.raises(TransferError, match="no sha512 hash was computed"):
        stream.verify(img)
    stream.verify(image(checksum=MD5))


def test_a_preferred_hash_other_than_sha512_is_computed_with_its_algorithm():
    # kills HashingStream.for_image__mutmut_17 (the algorithm left out: sha512, the
    # default, computed for an image declaring sha256)
    sha256 = hashlib.sha256(DATA).hexdigest()
    img = image(os_hash_algo="sha256", os_hash_value=sha256)
    stream = HashingStream.for_image(iter([DATA]), img, preferred_only=True)
    list(stream)
    assert (stream.os_hash_algo, stream.os_hash) == ("sha256", sha256)


def test_an_algorithm_without_value_compares_no_os_hash():
    # kills verify__mutmut_4 ("and" made "or": the os hash given would be compared with
    # the md5 checksum)
    verify(image(os_hash_algo="sha512", checksum=MD5), MD5, "not the md5", size=len(DATA))


# -- the file helpers (second round: mutants named by their function) ----------

def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_regular_file_is_opened_blocking_and_not_inherited(tmp_path):
    # kills open_regular_file's flag mutants that drop O_NONBLOCK's undoing
    # (set_blocking False/None) and keep the descriptor across exec
    path = tmp_path / "data"
    path.write_bytes(DATA)
    with open_regular_file(path, max_size=len(DATA)) as handle:  # exactly the limit
        assert handle.read() == DATA
        assert os.get_blocking(handle.fileno()) is True
        assert os.get_inheritable(handle.fileno()) is False
        assert handle.name == str(path)
    with open_regular_file(str(path)) as handle:  # no limit
        assert handle.read() == DATA


def test_a_file_over_the_limit_is_refused_in_words_and_closed(tmp_path):
    # kills the EFBIG errno and its words, ">=" for ">", and the refused file left open
    path = tmp_path / "data"
    path.write_bytes(DATA)
    before = _open_fds()
    with pytest.raises(OSError) as caught:
        open_regular_file(path, max_size=len(DATA) - 1)
    # the traceback (kept by ``caught``) keeps the function's frame alive: the
    # handle must have been closed explicitly
    assert _open_fds() == before
    assert caught.value.errno == errno.EFBIG
    assert caught.value.strerror == (f"{len(DATA)} bytes, more than the {len(DATA) - 1}"
                                     " allowed")


@pytest.mark.timeout(60)  # a mutant that blocks on the FIFO fails, not hangs
def test_a_fifo_without_writer_is_refused_at_once_and_closed(tmp_path):
    # kills the mutants of the opening flags that would block on a FIFO (O_NONBLOCK
    # dropped: the test would hang, mutmut counts a timeout), the EINVAL errno, its
    # words and the refused handle left open
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    before = _open_fds()
    with pytest.raises(OSError) as caught:
        open_regular_file(fifo)
    assert _open_fds() == before
    assert caught.value.errno == errno.EINVAL
    assert caught.value.strerror == "not a regular file (a FIFO, a device or a socket)"


def test_a_nul_in_the_path_is_an_os_error_in_words():
    # kills open_regular_file's ValueError translation (errno and message)
    with pytest.raises(OSError) as caught:
        open_regular_file("a\0b")
    assert caught.value.errno == errno.EINVAL
    assert "null byte" in caught.value.strerror


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        open_regular_file(tmp_path)


@pytest.mark.timeout(60)  # a mutant that blocks on the FIFO fails, not hangs
def test_fsync_directory_syncs_a_folder_and_never_opens_anything_else(tmp_path):
    # kills the mutants of fsync_directory's calls (None given: TypeError, not
    # suppressed), of its flags (without O_DIRECTORY a FIFO's opening blocks: a
    # timeout), and the descriptor left open
    before = _open_fds()
    fsync_directory(tmp_path)
    assert _open_fds() == before
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    fsync_directory(fifo)  # refused by O_DIRECTORY, not blocked on
    fsync_directory(tmp_path / "missing")  # best effort: no error
    assert _open_fds() == before


def test_unlink_quietly_removes_ignores_missing_and_logs_other_failures(tmp_path, caplog):
    # kills unlink_quietly's mutants: the warning's level and words, the missing
    # file logged or raised
    path = tmp_path / "data"
    path.write_bytes(DATA)
    caplog.set_level(logging.DEBUG, logger="glancesync.integrity")
    unlink_quietly(path)
    assert not path.exists()
    unlink_quietly(path)
    assert caplog.records == []
    folder = tmp_path / "folder"
    folder.mkdir()
    unlink_quietly(folder)  # a folder: IsADirectoryError, an OSError
    assert folder.is_dir()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"could not remove {folder}: [Errno 21]")


def test_an_unknown_hash_algorithm_is_refused_in_words():
    # kills _new_hash's error message mutants
    with pytest.raises(TransferError) as caught:
        HashingStream([DATA], "nohash")
    assert str(caught.value) == "unsupported hash algorithm 'nohash'"
    assert isinstance(caught.value.__cause__, ValueError)


def test_file_data_reads_its_size_in_chunks_from_the_start_every_time(tmp_path):
    # kills FileData.__iter__'s mutants: chunk size and bounds, the offset kept,
    # the progress reported per chunk; and __repr__'s
    path = tmp_path / "data"
    path.write_bytes(b"a" * CHUNK_SIZE + b"bc" + b"beyond the size")
    steps: list[int] = []
    with open(path, "rb") as handle:
        handle.seek(5)
        data = FileData(handle, CHUNK_SIZE + 2, steps.append)
        for _ in range(2):
            # at most 3: a mutant that rereads the same chunk for ever fails at once
            # (without filling the memory)
            chunks = list(itertools.islice(data, 3))
            assert [len(chunk) for chunk in chunks] == [CHUNK_SIZE, 2]
            assert chunks[1] == b"bc"
        assert handle.tell() == 5
        assert steps == [CHUNK_SIZE, 2] * 2
        data.advance(0)
        assert steps == [CHUNK_SIZE, 2] * 2
        FileData(handle, 3).advance(3)  # without progress: nothing to call
        assert repr(data) == f"<FileData {path} {CHUNK_SIZE + 2} bytes>"
    assert repr(FileData(io.BytesIO(DATA), 4)) == "<FileData ? 4 bytes>"


def test_file_data_stops_at_the_end_of_a_shorter_file(tmp_path):
    path = tmp_path / "data"
    path.write_bytes(DATA)
    with open(path, "rb") as handle:
        assert list(FileData(handle, len(DATA) + 10)) == [DATA]


def test_a_terminal_named_as_a_file_is_refused_without_becoming_the_controlling_one():
    # kills open_regular_file__mutmut_2 (O_NOCTTY lost: "|" made "&"): a daemon (a
    # session leader without terminal) given a terminal's path would take it as its
    # controlling terminal. Checked in a forked child, a session leader of its own;
    # the refusal itself also in this process (mutmut sees the call).
    master_fd, slave_fd = os.openpty()
    try:
        with pytest.raises(OSError, match="not a regular file"):
            open_regular_file(os.ttyname(slave_fd))
    finally:
        os.close(master_fd)
        os.close(slave_fd)
    pid = os.fork()
    if pid == 0:  # the child: exits 0 when the terminal was refused and not taken
        status = 1
        try:
            os.setsid()
            master_fd, slave_fd = os.openpty()  # glibc opens it with O_NOCTTY
            try:
                open_regular_file(os.ttyname(slave_fd))
            except OSError:
                try:
                    os.close(os.open("/dev/tty", os.O_RDWR))
                except OSError:  # ENXIO: no controlling terminal
                    status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
