"""integrity: tests that kill surviving mutants of glancesync/integrity.py (issue 27);
each names the mutants it kills (mutmut 3.8.1 names, first run)."""
from __future__ import annotations

import hashlib

import pytest

from glancesync.errors import ChecksumMismatchError, TransferError
from glancesync.image import Image
from glancesync.integrity import HashingStream, expected_hash, label, verify

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
