"""Raw Glance v2 over requests: the benchmark's yardstick and set-up tool.

Nothing of GlanceSync is used here on purpose: these calls move the bytes as
directly as HTTP allows (no hashing on the client, no cache), so their time
is the physical limit GlanceSync is compared with. They also create the
benchmark's images quickly (master images, and regional copies for the
no-op run).
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

import requests

MiB = 1024 * 1024
GiB = 1024 * MiB
CHUNK = MiB
TIMEOUT = (10, 300)  #: (connect, read) seconds for every request


class RawError(RuntimeError):
    """A raw HTTP call did not answer as expected."""


def pseudo_random_chunks(size: int, seed: int = 0, chunk: int = CHUNK) -> Iterator[bytes]:
    """SIZE bytes of random-looking data, generated fast, in CHUNK pieces.

    One pseudo-random block is drawn from SEED (the same SEED gives the same
    bytes); every chunk is that block with its own index and SEED written in
    front, so no two chunks (nor two seeds) are equal.
    """
    block = random.Random(seed).randbytes(chunk)
    sent = 0
    index = 0
    while sent < size:
        piece = seed.to_bytes(8, "little") + index.to_bytes(8, "little") + block[16:]
        piece = piece[:min(chunk, size - sent)]
        sent += len(piece)
        index += 1
        yield piece


def keystone_token(auth: dict[str, str]) -> str:
    """A project-scoped token for the keystoneauth-style AUTH dict."""
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "domain": {"name": auth["user_domain_name"]},
            "password": auth["password"]}}},
        "scope": {"project": {"name": auth["project_name"],
                              "domain": {"name": auth["project_domain_name"]}}}}}
    answer = requests.post(f"{auth['auth_url']}/auth/tokens", json=body, timeout=TIMEOUT)
    if answer.status_code != 201:
        raise RawError(f"Keystone {auth['auth_url']} refused a token: "
                       f"HTTP {answer.status_code} {answer.text[:200]}")
    return answer.headers["X-Subject-Token"]


class RawRegion:
    """One Glance endpoint reached with a fixed token."""

    def __init__(self, name: str, url: str, token: str, project_id: str) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.project_id = project_id
        self._headers = {"X-Auth-Token": token}

    def _check(self, answer: requests.Response, expected: int, what: str) -> requests.Response:
        if answer.status_code != expected:
            raise RawError(f"{self.name}: {what}: HTTP {answer.status_code} "
                           f"{answer.text[:300]}")
        return answer

    def create(self, name: str, *, visibility: str = "private",
               extra: dict[str, Any] | None = None) -> str:
        """Create a raw/bare image record; return its id."""
        body = {"name": name, "disk_format": "raw", "container_format": "bare",
                "visibility": visibility, **(extra or {})}
        answer = requests.post(f"{self.url}/v2/images", json=body, headers=self._headers,
                               timeout=TIMEOUT)
        return self._check(answer, 201, f"creating {name}").json()["id"]

    def upload(self, image_id: str, data: Iterable[bytes] | BinaryIO | bytes,
               size: int | None = None) -> None:
        """PUT the data (a file object, bytes, or an iterable sent chunked)."""
        headers = {**self._headers, "Content-Type": "application/octet-stream"}
        if size is not None:
            headers["x-openstack-image-size"] = str(size)
        answer = requests.put(f"{self.url}/v2/images/{image_id}/file", data=data,
                              headers=headers, timeout=TIMEOUT)
        self._check(answer, 204, f"uploading {image_id}")

    def download(self, image_id: str, path: Path) -> int:
        """GET the image data into PATH; return the bytes written."""
        written = 0
        with requests.get(f"{self.url}/v2/images/{image_id}/file", headers=self._headers,
                          stream=True, timeout=TIMEOUT) as answer:
            self._check(answer, 200, f"downloading {image_id}")
            with open(path, "wb") as handle:
                for chunk in answer.iter_content(CHUNK):
                    handle.write(chunk)
                    written += len(chunk)
        return written

    def get(self, image_id: str) -> dict[str, Any]:
        answer = requests.get(f"{self.url}/v2/images/{image_id}", headers=self._headers,
                              timeout=TIMEOUT)
        return self._check(answer, 200, f"getting {image_id}").json()

    def delete(self, image_id: str) -> None:
        answer = requests.delete(f"{self.url}/v2/images/{image_id}", headers=self._headers,
                                 timeout=TIMEOUT)
        if answer.status_code not in (204, 404):
            self._check(answer, 204, f"deleting {image_id}")

    def own_images(self, prefix: str = "") -> list[dict[str, Any]]:
        """Every image of the project whose name starts with PREFIX (all pages)."""
        images: list[dict[str, Any]] = []
        url: str | None = (f"{self.url}/v2/images?limit=1000&owner={self.project_id}"
                           "&visibility=all")
        while url:
            answer = self._check(requests.get(url, headers=self._headers, timeout=TIMEOUT),
                                 200, "listing images")
            page = answer.json()
            images.extend(i for i in page["images"] if i.get("status") != "deleted"
                          and (i.get("name") or "").startswith(prefix))
            url = f"{self.url}{page['next']}" if page.get("next") else None
        return images
