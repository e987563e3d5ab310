"""The region adapter of a real Glance (API v2), on python-glanceclient.

One :class:`GlanceRegionAdapter` talks to the image service of one region
through a keystoneauth1 session that the target owns and shares between its
regions. Every glanceclient, keystoneauth1 and requests error is translated
here into :mod:`glancesync.errors`, carrying the region, the image and the
HTTP status.

Where the Image API of a region is: keystoneauth's version discovery
resolves the catalog's image endpoint once per adapter, whatever form the
deployment tool registered (``http://host:9292``, ``http://host:9292/v2``,
``http://host/image``), to the v2 API Glance advertises; glanceclient and
the data path both use that. An endpoint that serves no Image API v2 is an
:class:`~glancesync.errors.EndpointError` naming its URL.

Image data never sits in memory as a whole: uploads are sent from the
caller's chunk iterator (with ``Content-Length`` when the size is known),
downloads are streamed in chunks of at most
:data:`~glancesync.integrity.CHUNK_SIZE` bytes. A local file
(:class:`~glancesync.integrity.FileData`) sent to a plain HTTP endpoint
goes with ``sendfile``: the kernel moves the bytes from the page cache to
the socket, without copying them through this process (requests and
urllib3 read a file body into memory, block by block). Server-side copies
(``glance-download``) are asked and watched here too.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import email.utils
import html
import http.client
import logging
import re
import threading
import time
import urllib.parse
from typing import Any, Iterable, Iterator, Mapping

import requests
import urllib3
from glanceclient import exc as glance_exc
from glanceclient.common import http as glance_http
from glanceclient.v2 import image_members as glance_members
from glanceclient.v2 import image_tags as glance_tags
from glanceclient.v2 import images as glance_images
from glanceclient.v2 import schemas as glance_schemas
from keystoneauth1 import adapter as ksa_adapter
from keystoneauth1 import discover as ksa_discover
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import session as ksa_session

from glancesync.backends.base import CHUNK_SIZE, ImportTask, RegionAdapter
from glancesync.backends.openstack import access as access_rules
from glancesync.backends.openstack.origins import (MAX_BODY, OriginGuard, SlowAnswerError,
                                                   short_reason)
from glancesync.errors import (AuthenticationError, ConflictError, ConnectionFailure,
                               EndpointError, GlanceSyncError, ImageNotFoundError,
                               ServiceError, TransferError, UploadRestartError,
                               UsageError)
from glancesync.image import Image
from glancesync.integrity import FileData
from glancesync.stopping import StopRequest

LOG = logging.getLogger(__name__)

#: Bytes handed to one ``sendfile`` call: progress is reported between calls,
#: and a stop request is seen there (small enough for a slow region to stop
#: within seconds).
SENDFILE_SLICE = 4 * 1024 * 1024
#: The slowest image data download accepted: bytes per second, averaged over
#: :data:`MIN_RATE_WINDOW` seconds (each wait for bytes is also bounded by the
#: session's timeout).
MIN_RATE = 16 * 1024
MIN_RATE_WINDOW = 60.0
#: The Image API versions GlanceSync speaks: any v2 (glanceclient's ``/v2`` paths).
API_VERSIONS = ("2", "2.latest")
#: The most image endpoints of one region and interface tried before it fails
#: (a catalog listing more does not make a run wait for each).
MAX_ENDPOINTS = 4
#: The import method that takes data staged by the client (Image API v2.6+).
GLANCE_DIRECT = "glance-direct"
#: Seconds between two looks at an image whose staged data is being imported
#: (first, then at most).
IMPORT_POLL = (0.5, 5.0)
#: Glance's answer when its policy refuses a call (``PolicyNotAuthorized``,
#: glance/common/exception.py): the rule's name is the action.
_POLICY_REFUSAL = re.compile(r"not authorized to complete (\w+) action", re.IGNORECASE)


def retry_after(response: requests.Response) -> float | None:
    """The delay in seconds a ``Retry-After`` header asks for, or None.

    The header holds seconds or an HTTP date; a date in the past means 0.
    """
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


class _KeepRetryAfter(ksa_adapter.Adapter):
    """Raise glanceclient's error for a failed answer, with its ``Retry-After``.

    glanceclient turns a failed answer into an exception that keeps neither
    the response nor its headers; this layer, just under glanceclient's
    session client, raises that same exception itself with
    ``retry_after`` (seconds or None) attached.
    """

    def request(self, url: str, method: str, **kwargs: Any) -> requests.Response:
        response = super().request(url, method, **kwargs)
        if not response.ok:
            error = glance_exc.from_response(response, response.content)
            error.retry_after = retry_after(response)
            error.http_status = response.status_code
            error.request = (method, url)
            raise error
        return response


class _GlanceHTTP(glance_http.SessionClient, _KeepRetryAfter):
    """glanceclient's session client whose errors keep ``Retry-After``."""


class _ListingTimedOut(Exception):
    """Internal: the listing used up its time budget."""


class _DeadlineHTTP:
    """The HTTP client of the listing: each request gets only the time left.

    glanceclient's image listing and schema fetching only call ``get``; this
    wrapper gives every such call a ``timeout`` equal to what remains of the
    listing's budget, so a stalled page cannot hold the caller past it.
    """

    def __init__(self, http_client: Any, seconds: float) -> None:
        self._http = http_client
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds

    def restart(self) -> None:
        self._deadline = time.monotonic() + self._seconds

    def get(self, url: str, **kwargs: Any) -> Any:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise _ListingTimedOut()
        try:
            return self._http.get(url, timeout=left, **kwargs)
        except (glance_exc.InvalidEndpoint, SlowAnswerError) as exc:
            # glanceclient's session client reports a request timeout so; the
            # origin guard, a page that trickled past the time left.
            raise _ListingTimedOut() from exc


class _ChunkReader:
    """A file-like view of a chunk iterator, for glanceclient's uploader.

    glanceclient streams a file-like body by calling ``read(1 MiB)`` until it
    gets ``b""`` and requests sends that generator with chunked transfer
    encoding; only about one chunk is held at a time.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._done = False
        self.sent = 0

    def _pull(self) -> bool:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._done = True
            return False
        except OSError as exc:
            raise TransferError(f"reading the image data to upload failed: {exc}") from exc
        if chunk:
            self._pending.append(bytes(chunk))
            self._pending_size += len(chunk)
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or self._pending_size < size):
            self._pull()
        data = b"".join(self._pending)
        if 0 <= size < len(data):
            data, rest = data[:size], data[size:]
            self._pending = [rest]
            self._pending_size = len(rest)
        else:
            self._pending = []
            self._pending_size = 0
        self.sent += len(data)
        return data


class _SizedBody:
    """An upload body of known length: requests sends it with Content-Length.

    Iterating yields the caller's chunks as they are (urllib3 writes each
    one to the socket); ``len()`` gives the declared size.
    """

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._chunks = chunks
        self.size = size
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.sent += len(chunk)
            if self.sent > self.size:
                raise TransferError(f"the data source gave more than the {self.size} "
                                    "bytes declared")
            yield chunk
        if self.sent != self.size:
            # Abort the request: the server must not wait for missing bytes.
            raise TransferError(f"the data source gave {self.sent} bytes, not the "
                                f"{self.size} declared")


def _http_status(error: glance_exc.HTTPException) -> int | None:
    """The HTTP status of a glanceclient error.

    glanceclient has classes for a few statuses only (no 415, 410, 429 ...);
    for the others the status is the number Glance puts first in the body.
    """
    if isinstance(error.code, int):
        return error.code
    answered = getattr(error, "http_status", None)  # kept where the answer was read
    if isinstance(answered, int):
        return answered
    match = re.match(r"\s*(\d{3})\b", str(error.details or ""))
    return int(match.group(1)) if match else None


def _details(error: glance_exc.HTTPException) -> str:
    # Glance answers HTML unless JSON is asked: entities stay in the text.
    text = " ".join(html.unescape(str(error.details or "")).split())
    return text[:500]


def _error_of(status: int, headers: Mapping[str, str], body: bytes) -> glance_exc.HTTPException:
    """glanceclient's error for an answer read without requests."""
    response = requests.Response()
    response.status_code = status
    response.headers = requests.structures.CaseInsensitiveDict(headers)
    response.headers.setdefault("Content-Type", "text/plain")
    response._content = body
    return glance_exc.from_response(response, body)


@dataclasses.dataclass
class _Api:
    """The clients of one region's Image API, made once its root is known.

    ``root`` is what glanceclient calls the endpoint: the URL its ``/v2/...``
    paths are relative to. ``images``, ``tags`` and ``members`` are
    glanceclient's controllers, ``lister`` the image controller under the
    listing's deadline, ``data`` a plain keystoneauth adapter on ``root``
    for uploads of known size.
    """

    root: str
    images: glance_images.Controller
    tags: glance_tags.Controller
    members: glance_members.Controller
    lister: glance_images.Controller
    list_http: "_DeadlineHTTP"
    data: ksa_adapter.Adapter


class GlanceRegionAdapter(RegionAdapter):
    """One Glance v2 region seen through one keystoneauth1 session.

    ``session`` belongs to the target (shared by its regions, closed by it);
    ``region_name`` is the region as the catalog names it, ``name`` the fully
    qualified ``target:Region`` used in messages. ``list_timeout`` bounds a
    whole listing (every page), ``page_size`` is the number of images asked
    per page. The API is found in the catalog (``interface`` endpoints) by
    version discovery, on first use; ``endpoint_override`` is an API root
    used as given instead (a proxy in front of one Glance, for tests).
    ``min_rate`` (bytes per second) over ``min_rate_window`` (seconds) is
    the slowest download accepted (:meth:`download_data`).
    ``upload_method`` is how :meth:`upload_data` sends data: ``direct``
    (``PUT .../file``), ``glance-direct`` (``PUT .../stage`` then the
    import API, waited for at most ``import_timeout`` seconds) or ``auto``
    (direct until the region's policy forbids it, glance-direct after).
    """

    def __init__(self, name: str, session: ksa_session.Session, region_name: str,
                 project_id: str | None, *, list_timeout: float = 30,
                 interface: str = "public", page_size: int = 1000,
                 endpoint_override: str | None = None, min_rate: float = MIN_RATE,
                 min_rate_window: float = MIN_RATE_WINDOW, upload_method: str = "auto",
                 import_timeout: float = 1800.0) -> None:
        self.name = name
        self.project_id = project_id
        self.region_name = region_name
        self.list_timeout = list_timeout
        self.page_size = page_size
        self.interface = interface
        self._session = session
        self._endpoint_override = endpoint_override
        self.min_rate = min_rate
        self.min_rate_window = min_rate_window
        self._api: _Api | None = None
        self._api_lock = threading.Lock()
        self._import_methods: frozenset[str] | None = None
        self._good_url: str | None = None  # the catalog URL that worked last
        self._lost = False  # a connection failed since the API was found
        self.upload_method = upload_method
        self.import_timeout = import_timeout
        #: True once data goes through the import API (set, or learnt in ``auto``).
        self.via_import = upload_method == GLANCE_DIRECT
        #: The stop request the wait of a glance-direct import obeys (the executor
        #: running this region sets it); None: that wait ends by itself only.
        self.import_stop: StopRequest | None = None

    # -- the API root ----------------------------------------------------

    @property
    def api(self) -> _Api:
        """The region's Image API clients (discovered on first use).

        After a connection failure the API is found again at the next call,
        so that the region's other image endpoints are tried.

        :raises EndpointError: the catalog's image endpoint serves no Image API v2
            (or none of them works, one at least for good).
        :raises ServiceError: the region has no image endpoint in the catalog.
        :raises ConnectionFailure: no endpoint can be reached (transient).
        """
        with self._api_lock:
            if self._api is None:
                with self._errors("finding the image API"):
                    root = self._endpoint_override or self._discover_root()
                self._api = self._clients(root)
            return self._api

    def _discover_root(self) -> str:
        """The API root of one of the region's image endpoints, by version discovery.

        Every image endpoint of the region and interface in the catalog is
        tried, in catalog order (the last one that worked first): a region
        may list two (IPv4 and IPv6), and one may be down; at most
        :data:`MAX_ENDPOINTS` are tried. After a
        connection failure each is first asked for its root without
        credentials (keystoneauth keeps version documents it read). Passing over one
        is a warning naming it; when none works, the error names each with
        its failure (a :class:`ConnectionFailure` when all were transient).
        """
        session = self._discovery_session()
        urls = self._catalog_urls()
        if not urls:
            raise ksa_exc.EndpointNotFound()
        if self._good_url in urls:
            urls.remove(self._good_url)
            urls.insert(0, self._good_url)
        if len(urls) > MAX_ENDPOINTS:
            LOG.warning("%s: the catalog lists %d image endpoints (%s) for the region: only"
                        " the first %d are tried", self.name, len(urls), self.interface,
                        MAX_ENDPOINTS)
            urls = urls[:MAX_ENDPOINTS]
        failures: list[tuple[str, GlanceSyncError]] = []
        for url in urls:
            try:
                with self._errors("finding the image API"):
                    if self._lost:  # version documents are cached: is it alive?
                        session.get(url, authenticated=False, raise_exc=False)
                    root = self._discover_at(session, url)
            except GlanceSyncError as exc:
                if len(urls) == 1 or isinstance(exc, AuthenticationError):
                    raise
                failures.append((url, exc))
                continue
            if failures:
                LOG.warning("%s: image endpoint %s did not work (%s); using the region's "
                            "endpoint %s instead", self.name,
                            ", ".join(failed for failed, _ in failures),
                            "; ".join(short_reason(exc) for _, exc in failures), url)
            self._good_url, self._lost = url, False
            return root
        raise self._no_endpoint(failures)

    def _no_endpoint(self, failures: list[tuple[str, GlanceSyncError]]) -> GlanceSyncError:
        """The error when none of the region's image endpoints works (naming each)."""
        target = self.name.partition(":")[0]
        each = "; ".join(f"{url}: {short_reason(exc)}" for url, exc in failures)
        if all(exc.transient for _, exc in failures):
            return ConnectionFailure(f"none of the {len(failures)} image endpoints"
                                     f" ({self.interface}) of region {self.region_name} in"
                                     f" the catalog of target {target} works: {each}",
                                     region=self.name)
        return EndpointError(f"none of the {len(failures)} image endpoints ({self.interface})"
                             f" of region {self.region_name} in the catalog of target"
                             f" {target} works: {each}", region=self.name)

    def _discover_at(self, session: ksa_session.Session, url: str) -> str:
        """The API root behind the catalog URL ``url`` (see :meth:`_discover_root`).

        keystoneauth looks for Glance's version document at the catalog URL
        and, for a versioned URL, at the URL without its version; the v2
        API it finds is ``<root>/v2/``. When no version document answers,
        the document is asked for once more, so that the error says why.
        Each of these requests is bounded by ``list_timeout``: a stalled
        server cannot hold the caller longer.
        """
        endpoint = ksa_discover.EndpointData(catalog_url=url, service_type="image",
                                             interface=self.interface,
                                             region_name=self.region_name)
        found = self._versioned_data(session, endpoint)
        if found is None:
            self._explain_failed_discovery(session, url)
            # It answers now: a failure that passed, or a document without v2.
            found = self._versioned_data(session, endpoint)
            if found is None:
                raise EndpointError(self._wrong_endpoint(
                    url, "its version document offers no Image API v2"), region=self.name)
        api = found.service_url.rstrip("/") + "/"
        LOG.debug("%s: image API v%s at %s (catalog: %s)", self.name,
                  ".".join(map(str, found.api_version or ())), api, found.catalog_url)
        return urllib.parse.urljoin(api, "..")

    @staticmethod
    def _versioned_data(session: ksa_session.Session, endpoint: Any) -> Any:
        """keystoneauth's endpoint data of the v2 API, or None if none was found."""
        try:
            found = endpoint.get_versioned_data(
                session, project_id=session.get_project_id(),
                min_version=API_VERSIONS[0], max_version=API_VERSIONS[1])
        except (ksa_exc.DiscoveryFailure, ksa_exc.HttpError, ksa_exc.ConnectionError):
            return None
        return found if found is not None and found.service_url is not None else None

    def _discovery_session(self) -> ksa_session.Session:
        """The target's session, each request bounded by ``list_timeout``.

        A shallow copy: the same authentication, connections and settings.
        """
        bounded = copy.copy(self._session)
        current = self._session.timeout
        bounded.timeout = self.list_timeout if current is None else min(current,
                                                                         self.list_timeout)
        return bounded

    def _explain_failed_discovery(self, session: ksa_session.Session, url: str) -> None:
        """Ask ``url`` for its version document; raise what went wrong."""
        try:
            ksa_discover.get_discovery(session, url, authenticated=False)
        except ksa_exc.ConnectTimeout as exc:
            raise ConnectionFailure(f"finding the image API: {url} did not answer within "
                                    f"{session.timeout:g} s", region=self.name) from exc
        except ksa_exc.HttpError as exc:
            if exc.http_status is not None and 500 <= exc.http_status <= 599:
                raise  # the service is unwell: transient, translated as such
            raise EndpointError(self._wrong_endpoint(url, f"HTTP {exc.http_status}"),
                                region=self.name, status_code=exc.http_status) from exc
        except ksa_exc.DiscoveryFailure as exc:
            raise EndpointError(self._wrong_endpoint(url, f"not a Glance API ({exc})"),
                                region=self.name) from exc

    def _catalog_urls(self) -> list[str]:
        """The region's image endpoint URLs of the interface, as registered, in
        catalog order (no discovery); a plugin without catalog (a token and
        an endpoint) gives its one endpoint."""
        if not hasattr(self._session.auth, "get_access"):
            url = self._session.get_endpoint(service_type="image", interface=self.interface,
                                             region_name=self.region_name)
            return [url] if url else []
        access = self._session.auth.get_access(self._session)
        urls = access.service_catalog.get_urls(service_type="image",
                                               interface=self.interface,
                                               region_name=self.region_name) or ()
        return list(dict.fromkeys(urls))

    def _wrong_endpoint(self, url: str | None, why: str) -> str:
        target = self.name.partition(":")[0]
        return (f"the image endpoint {url} ({self.interface}) registered for region "
                f"{self.region_name} in the catalog of target {target} is wrong: {why}; "
                "it must be the Glance API root (or its /v2), as the OpenStack CLI uses it")

    def _clients(self, root: str) -> _Api:
        http = _GlanceHTTP(self._session, endpoint_override=root)
        list_http = _DeadlineHTTP(http, self.list_timeout)
        # Image data goes through keystoneauth directly: glanceclient would
        # send it with chunked transfer encoding, which costs client and
        # server CPU when the size is known.
        schemas = glance_schemas.Controller(http)
        return _Api(root=root,
                    images=glance_images.Controller(http, schemas),
                    tags=glance_tags.Controller(http, schemas),
                    members=glance_members.Controller(http, schemas),
                    lister=glance_images.Controller(list_http,
                                                    glance_schemas.Controller(list_http)),
                    list_http=list_http,
                    data=ksa_adapter.Adapter(self._session, endpoint_override=root))

    # -- reading ---------------------------------------------------------

    def list_images(self) -> list[Image]:
        """Every image the credential can see (``visibility=all``), all pages.

        Hidden images included: Glance leaves them out of a listing unless
        asked for them alone (``os_hidden=true``), so two listings are made,
        within one time budget. Deactivated images are listed as they are.
        An admin credential sees every project's images: callers filter by
        :attr:`Image.owner`.
        """
        api = self.api
        api.list_http.restart()
        images: dict[str, Image] = {}
        with self._errors("listing images", collection=True):
            try:
                for hidden in (False, True):
                    filters: dict[str, Any] = {"visibility": "all"}
                    if hidden:
                        filters["os_hidden"] = True
                    for item in api.lister.list(page_size=self.page_size,
                                                filters=filters):
                        image = Image.from_dict(dict(item))
                        if image.status != "deleted":
                            images.setdefault(image.id, image)
            except _ListingTimedOut as exc:
                raise ServiceError(
                    f"listing images took longer than {self.list_timeout:g} s "
                    "(raise list_images_timeout if the region is just slow)",
                    region=self.name) from exc
        LOG.debug("%s: %d images listed", self.name, len(images))
        return list(images.values())

    def get_image(self, image_id: str) -> Image:
        with self._errors("getting the image", image_id):
            found = self.api.images.get(image_id)
        return Image.from_dict(dict(found))

    # -- writing ---------------------------------------------------------

    def create_image(self, name: str, *, visibility: str = "private",
                     disk_format: str | None = None,
                     container_format: str | None = None,
                     min_ram: int = 0, min_disk: int = 0,
                     protected: bool = False,
                     properties: Mapping[str, str] | None = None,
                     image_id: str | None = None) -> Image:
        fields: dict[str, Any] = {
            "name": name, "visibility": visibility, "min_ram": min_ram,
            "min_disk": min_disk, "protected": protected,
        }
        if disk_format is not None:
            fields["disk_format"] = disk_format
        if container_format is not None:
            fields["container_format"] = container_format
        if image_id is not None:
            fields["id"] = image_id
        for key, value in (properties or {}).items():
            fields.setdefault(key, value)
        LOG.debug("%s: creating image %s (%s)", self.name, name, visibility)
        with self._errors("creating the image", image_id or name,
                          publicize=visibility == "public", collection=True):
            try:
                created = self.api.images.create(**fields)
            except TypeError as exc:
                raise self._schema_error("creating the image", image_id or name, exc) from exc
        return Image.from_dict(dict(created))

    def upload_data(self, image_id: str, chunks: Iterable[bytes],
                    size: int | None = None) -> Image:
        """Stream ``chunks`` to the image, one chunk in memory at a time.

        With a known ``size`` the body is sent with ``Content-Length``; else
        with chunked transfer encoding (through glanceclient). Through the
        import API (:attr:`via_import`): staged, imported, waited for.

        :raises UploadRestartError: ``auto``: the region's policy forbids the
            direct upload and offers ``glance-direct``; later calls use it
            (send the data again).
        """
        if self.via_import:
            return self._upload_by_import(image_id, chunks, size)
        try:
            self._send_data(image_id, chunks, size, "file", "uploading the image data")
        except ServiceError as exc:
            rule = self._policy_rule(exc)
            if self.upload_method != "auto" or exc.status_code != 403 or rule is None:
                raise
            offered = self.import_methods()
            if GLANCE_DIRECT not in offered:
                exc.message += (f"; its import API offers no {GLANCE_DIRECT} either (import"
                                f" methods: {', '.join(sorted(offered)) or 'none'})")
                raise
            self.via_import = True
            LOG.warning("%s: the region's policy (rule %s) forbids the direct upload:"
                        " uploading through the import API (%s) from now on", self.name,
                        rule, GLANCE_DIRECT)
            raise UploadRestartError(f"direct upload forbidden by the region's policy (rule "
                                     f"{rule}): switched to {GLANCE_DIRECT}",
                                     region=self.name, image=image_id,
                                     status_code=403) from exc
        return self.get_image(image_id)

    def _send_data(self, image_id: str, chunks: Iterable[bytes], size: int | None,
                   part: str, action: str) -> None:
        """PUT the data to ``/v2/images/ID/<part>`` (``file`` or ``stage``)."""
        started = time.monotonic()
        LOG.debug("%s: %s of image %s (%s)", self.name, action, image_id, part)
        with self._errors(action, image_id, streaming=True):
            if size is None:
                reader = _ChunkReader(chunks)
                if part == "stage":
                    self.api.images.stage(image_id, reader)
                else:
                    self.api.images.upload(image_id, reader)
                sent = reader.sent
            elif isinstance(chunks, FileData) and self._can_sendfile():
                sent = self._put_file(image_id, chunks, size, part)
            else:
                body = _SizedBody(chunks, size)
                self._put_data(image_id, body, part)
                sent = body.sent
        LOG.debug("%s: sent %d bytes to image %s in %.1f s", self.name, sent,
                  image_id, time.monotonic() - started)

    def _upload_by_import(self, image_id: str, chunks: Iterable[bytes],
                          size: int | None) -> Image:
        """Stage the data, ask its ``glance-direct`` import, wait until it is done.

        :raises TransferError: the import failed (its task's message), the
            image left ``importing``, or it took longer than ``import_timeout``.
        :raises StoppedError: :attr:`import_stop` was set before the import was asked or
            while it was waited for (the caller deletes the image).
        """
        self._send_data(image_id, chunks, size, "stage", "staging the image data")
        if self.import_stop is not None:
            self.import_stop.check(self.name, image_id)
        with self._errors("importing the staged data", image_id):
            self.api.images.image_import(image_id, method=GLANCE_DIRECT)
        deadline = time.monotonic() + self.import_timeout
        pause = IMPORT_POLL[0]
        while True:
            image = self.get_image(image_id)
            if image.status == "active":
                return image
            failed = image.status in ("killed", "deleted", "deactivated")
            if image.status == "queued":  # Glance puts a failed import back there
                task = self.import_task(image_id)
                failed = task is not None and task.failed
            if failed or time.monotonic() >= deadline:
                task = self.import_task(image_id)
                why = (f"task {task.task_id} {task.status}: {task.message}" if task
                       else f"the image is {image.status}")
                if failed:
                    raise TransferError(f"the glance-direct import of the staged data failed:"
                                        f" {why}", region=self.name, image=image_id)
                raise TransferError(f"the glance-direct import of the staged data took longer"
                                    f" than {self.import_timeout:g} s (import_timeout): {why}",
                                    region=self.name, image=image_id)
            wait = min(pause, max(0.0, deadline - time.monotonic()))
            if self.import_stop is not None:  # a stop ends the wait at once
                if self.import_stop.wait(wait):
                    raise self.import_stop.error(self.name, image_id)
            else:
                time.sleep(wait)
            pause = min(pause * 1.5, IMPORT_POLL[1])

    @staticmethod
    def _policy_rule(error: GlanceSyncError) -> str | None:
        """The policy rule a 403 names (Glance's ``PolicyNotAuthorized``), or None."""
        found = _POLICY_REFUSAL.search(str(error))
        return found.group(1) if found else None

    def _file_url(self, image_id: str, part: str = "file") -> str:
        return f"{self.api.root.rstrip('/')}/v2/images/{image_id}/{part}"

    def _put_data(self, image_id: str, body: "_SizedBody", part: str = "file") -> None:
        # The path glanceclient uses, on the same API root.
        # No re-authentication and resend on 401: the body cannot be replayed.
        response = self.api.data.put(
            f"/v2/images/{image_id}/{part}", data=body, raise_exc=False,
            allow_reauth=False, headers={"Content-Type": "application/octet-stream"})
        if response.status_code >= 400:
            error = glance_exc.from_response(response, response.content)
            error.retry_after = retry_after(response)
            error.http_status = response.status_code
            error.request = ("PUT", f"/v2/images/{image_id}/{part}")
            raise error

    def _can_sendfile(self) -> bool:
        """True when uploads may bypass requests: plain HTTP, no proxy, and an
        origin the session's :class:`OriginGuard` allows.

        ``sendfile`` cannot go through TLS (the bytes are encrypted in
        this process) nor through the proxies that requests would use; and
        the guard must not be bypassed: an origin it refuses gets the
        session's request, which it refuses with the reason.
        """
        endpoint = self.api.root
        session = self._session.session
        guard = session.get_adapter(endpoint)
        if isinstance(guard, OriginGuard) and not guard.allows(endpoint):
            return False  # the session's own request is refused, with the reason
        return (urllib.parse.urlsplit(endpoint).scheme == "http" and not session.proxies
                and not (session.trust_env and requests.utils.get_environ_proxies(endpoint)))

    def _put_file(self, image_id: str, data: FileData, size: int, part: str = "file") -> int:
        """PUT the file's first ``size`` bytes with ``sendfile``; return the bytes sent.

        One new connection (the request line, headers and answer through the
        standard library's ``http.client``, the body by the kernel); an
        error answer raises
        glanceclient's error, as through requests. The token comes from the
        session and is not renewed on 401: the body cannot be replayed.
        """
        url = urllib.parse.urlsplit(self._file_url(image_id, part))
        guard = self._session.session.get_adapter(self._file_url(image_id, part))
        if isinstance(guard, OriginGuard):
            guard.pacer.wait()  # one request of the target, like any other
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size),
                   "User-Agent": self._session.user_agent or "glancesync",
                   **(self._session.get_auth_headers() or {})}
        timeout = self._session.timeout
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
        sent = 0
        try:
            conn.putrequest("PUT", url.path, skip_accept_encoding=True)
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.endheaders()
            try:
                while sent < size:
                    step = conn.sock.sendfile(data.handle, sent,
                                              min(SENDFILE_SLICE, size - sent))
                    if not step:
                        raise TransferError(f"the file to upload ended after {sent} of "
                                            f"{size} bytes", region=self.name, image=image_id)
                    sent += step
                    data.advance(step)
            except OSError as exc:
                # The service may have answered early (and closed): say what it said.
                early = self._early_answer(conn)
                if early is not None:
                    early.request = ("PUT", f"/v2/images/{image_id}/{part}")
                    raise early from exc
                raise ConnectionFailure(f"uploading the image data failed: connection "
                                        f"lost after {sent} bytes: {exc}", region=self.name,
                                        image=image_id) from exc
            response = conn.getresponse()
            body = response.read(MAX_BODY)  # bounded, like every answer read whole
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectionFailure(f"uploading the image data failed: {exc}",
                                    region=self.name, image=image_id) from exc
        finally:
            conn.close()
        if response.status >= 300:  # no redirection is followed: the token stays here
            error = _error_of(response.status, response.headers, body)
            error.retry_after = retry_after(response)
            error.http_status = response.status
            error.request = ("PUT", f"/v2/images/{image_id}/{part}")
            raise error
        return sent

    @staticmethod
    def _early_answer(conn: http.client.HTTPConnection) -> Exception | None:
        """The error a service answered before reading the whole body, if any."""
        try:
            conn.sock.settimeout(2.0)
            response = conn.getresponse()
            body = response.read(MAX_BODY)
        except (OSError, http.client.HTTPException, ValueError):
            return None
        if response.status < 400:
            return None
        error = _error_of(response.status, response.headers, body)
        error.retry_after = retry_after(response)
        error.http_status = response.status
        return error

    def download_data(self, image_id: str) -> Iterator[bytes]:
        """The data as it arrives, unverified: the caller hashes it.

        The request is made now (a missing image raises here); the body is
        read only as the returned iterator is consumed, as it came (identity
        encoding asked; never decoded), in chunks of at most
        :data:`~glancesync.integrity.CHUNK_SIZE` bytes. A master sending
        fewer than :data:`MIN_RATE` bytes per second over
        :data:`MIN_RATE_WINDOW` seconds is given up (a
        :class:`~glancesync.errors.TransferError`): a trickling master must
        not hold the regions' locks for ever. Each wait for bytes is bounded
        by the session's timeout.
        """
        path = f"/v2/images/{urllib.parse.quote(image_id, safe='')}/file"
        with self._errors("downloading the image data", image_id):
            response = self.api.data.get(path, stream=True, raise_exc=False,
                                         headers={"Accept-Encoding": "identity"})
            if response.status_code >= 400:
                body = response.raw.read(64 * 1024, decode_content=False)
                response.close()
                error = glance_exc.from_response(response, body)
                error.retry_after = retry_after(response)
                error.http_status = response.status_code
                error.request = ("GET", path)
                raise error
        if response.status_code == 204:
            response.close()
            raise ServiceError("the image has no data (is it still queued?)",
                               region=self.name, image=image_id, status_code=204)
        return self._stream(image_id, response)

    def _stream(self, image_id: str, response: requests.Response) -> Iterator[bytes]:
        raw = response.raw
        started, received = time.monotonic(), 0
        with contextlib.closing(response), \
                self._errors("downloading the image data", image_id, streaming=True):
            while True:
                try:
                    chunk = raw.read1(CHUNK_SIZE, decode_content=False)
                except urllib3.exceptions.ReadTimeoutError as exc:
                    raise requests.exceptions.ReadTimeout(exc) from exc
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise requests.exceptions.ChunkedEncodingError(exc) from exc
                if not chunk:
                    return
                received += len(chunk)
                elapsed = time.monotonic() - started
                if elapsed >= self.min_rate_window:
                    if received < self.min_rate * elapsed:
                        raise TransferError(
                            f"downloading the image data: the region sent {received} bytes"
                            f" in {elapsed:.0f} s, slower than {self.min_rate / 1024:g}"
                            " KiB/s: given up", region=self.name, image=image_id)
                    started, received = time.monotonic(), 0
                yield chunk

    def update_image(self, image_id: str, changes: Mapping[str, Any],
                     remove: Iterable[str] = ()) -> Image:
        """Apply ``changes`` and remove properties in one JSON-patch request.

        Removing a property the image does not have is not an error.
        ``tags`` are set through Glance's tag calls, one per tag added or
        removed (a JSON patch cannot empty them through glanceclient).
        """
        changes = dict(changes)
        tags = changes.pop("tags", None)
        remove = [key for key in remove if key not in changes]
        LOG.debug("%s: updating image %s: set %s, remove %s", self.name, image_id,
                  sorted(changes), sorted(remove))
        updated = None
        if changes or remove:
            with self._errors("updating the image", image_id,
                              publicize=changes.get("visibility") == "public"):
                try:
                    updated = self.api.images.update(image_id, remove_props=remove or None,
                                                  **changes)
                except TypeError as exc:
                    raise self._schema_error("updating the image", image_id, exc) from exc
        if tags is not None:
            return self._set_tags(image_id, tags)
        return Image.from_dict(dict(updated)) if updated is not None else self.get_image(image_id)

    def _set_tags(self, image_id: str, tags: Iterable[str]) -> Image:
        """Make ``tags`` the image's tags; return the image after."""
        wanted = list(dict.fromkeys(tags))
        current = self.get_image(image_id).tags
        with self._errors("setting the image's tags", image_id):
            for tag in current:
                if tag not in wanted:
                    with contextlib.suppress(glance_exc.HTTPNotFound):
                        self.api.tags.delete(image_id, tag)
            for tag in wanted:
                if tag not in current:
                    self.api.tags.update(image_id, tag)
        return self.get_image(image_id)

    def deactivate_image(self, image_id: str) -> Image:
        """Deactivate the image (Glance's ``deactivate`` action); return it after."""
        with self._errors("deactivating the image", image_id):
            self.api.images.deactivate(image_id)
        return self.get_image(image_id)

    def reactivate_image(self, image_id: str) -> Image:
        """Reactivate a deactivated image (Glance's ``reactivate`` action)."""
        with self._errors("reactivating the image", image_id):
            self.api.images.reactivate(image_id)
        return self.get_image(image_id)

    def list_members(self, image_id: str) -> list[str]:
        """Ids of the projects the image is shared with, whatever their answer.

        An image that is not ``shared`` has none (Glance answers 403).
        """
        try:
            with self._errors("listing the image's members", image_id):
                return [member["member_id"] for member in self.api.members.list(image_id)]
        except ServiceError as exc:
            if exc.status_code == 403 and self.get_image(image_id).visibility != "shared":
                return []
            raise

    def add_member(self, image_id: str, project_id: str) -> None:
        """Share the image with ``project_id`` (the member then accepts it or not)."""
        with self._errors("sharing the image", image_id):
            self.api.members.create(image_id, project_id)

    def remove_member(self, image_id: str, project_id: str) -> None:
        """Stop sharing the image with ``project_id``."""
        with self._errors("unsharing the image", image_id):
            self.api.members.delete(image_id, project_id)

    def delete_image(self, image_id: str) -> None:
        LOG.debug("%s: deleting image %s", self.name, image_id)
        with self._errors("deleting the image", image_id, deleting=True):
            self.api.images.delete(image_id)

    # -- server-side copies ------------------------------------------------

    def import_methods(self) -> frozenset[str]:
        """What ``GET /v2/info/import`` lists, asked once per adapter.

        A Glance without the discovery call (404, before Queens) offers none.
        """
        if self._import_methods is None:
            with self._errors("asking the import methods"):
                try:
                    info = self.api.images.get_import_info()
                except glance_exc.HTTPNotFound:
                    info = {}
            methods = (info.get("import-methods") or {}).get("value") or ()
            self._import_methods = frozenset(str(method) for method in methods)
            LOG.debug("%s: import methods %s", self.name, sorted(self._import_methods))
        return self._import_methods

    def import_image(self, image_id: str, *, source_region: str,
                     source_image_id: str) -> None:
        """``POST /v2/images/{id}/import`` with ``glance-download`` (answer 202)."""
        LOG.debug("%s: asking a glance-download of %s from %s into %s", self.name,
                  source_image_id, source_region, image_id)
        with self._errors("starting the server-side copy", image_id):
            self.api.images.image_import(image_id, method="glance-download",
                                      remote_region=source_region,
                                      remote_image_id=source_image_id,
                                      remote_service_interface=self.interface)

    def import_task(self, image_id: str) -> ImportTask | None:
        """The image's latest task (``GET /v2/images/{id}/tasks``, by creation time)."""
        with self._errors("reading the import tasks", image_id):
            _, body = self.api.images.http_client.get(f"/v2/images/{image_id}/tasks")
        tasks = [task for task in (body or {}).get("tasks") or []
                 if isinstance(task, Mapping)]
        if not tasks:
            return None
        latest = max(tasks, key=lambda task: str(task.get("created_at") or ""))
        return ImportTask(str(latest.get("id")), str(latest.get("status")),
                          str(latest.get("message") or ""))

    # -- error translation -------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str, image: str | None = None, *, publicize: bool = False,
                deleting: bool = False, streaming: bool = False,
                collection: bool = False) -> Iterator[None]:
        """Translate third-party errors raised inside the block.

        ``publicize`` and ``deleting`` select the hints for a 403;
        ``streaming`` says image data was moving (a broken stream is a
        :class:`TransferError`); ``collection`` says the request addressed
        the image collection (listing, creating), where a 404 means that the
        API is not where the endpoint says (an :class:`EndpointError`).
        """
        where = {"region": self.name, "image": image}
        try:
            yield
        except GlanceSyncError:
            raise
        except glance_exc.HTTPException as exc:
            raise self._http_error(exc, action, image, publicize, deleting,
                                   collection) from exc
        except (glance_exc.CommunicationError, glance_exc.InvalidEndpoint) as exc:
            self._forget_api()
            raise ConnectionFailure(f"{action} failed: cannot reach Glance: {exc}",
                                    **where) from exc
        except ksa_exc.EndpointNotFound as exc:
            raise ServiceError(f"region {self.region_name} has no image endpoint in the "
                               "catalog", **where) from exc
        except (ksa_exc.Unauthorized, ksa_exc.AuthorizationFailure,
                ksa_exc.MissingAuthPlugin) as exc:
            raise AuthenticationError(f"Keystone refused the credentials while {action}: "
                                      f"{exc}", **where) from exc
        except ksa_exc.ConnectionError as exc:
            self._forget_api()
            raise ConnectionFailure(f"{action} failed: {exc}", **where) from exc
        except ksa_exc.HttpError as exc:
            raise ServiceError(f"{action} failed: Keystone answered {exc}",
                               status_code=exc.http_status,
                               retry_after=exc.retry_after or None, **where) from exc
        except ksa_exc.ClientException as exc:
            raise ServiceError(f"{action} failed: {exc}", **where) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            self._forget_api()
            raise ConnectionFailure(f"{action} failed: connection lost: {exc}",
                                    **where) from exc
        except requests.exceptions.RequestException as exc:
            if streaming:
                raise TransferError(f"{action} failed: the data stream broke: {exc}",
                                    **where) from exc
            raise ServiceError(f"{action} failed: {exc}", **where) from exc

    def _access_rules_error(self, exc: glance_exc.HTTPException, action: str,
                            where: dict[str, Any]) -> AuthenticationError | None:
        """What a 401 means for a token restricted by access rules, or None.

        The rules allow the request: the region's Glance cannot check them
        (no ``service_type`` in its ``[keystone_authtoken]``); they do not:
        the rule missing is named. See :mod:`.access`.
        """
        rules = access_rules.restricted_rules(self._session)
        if rules is None:
            return None
        allowed = access_rules.describe(rules)
        method, url = getattr(exc, "request", (None, None))
        path = urllib.parse.urlsplit(url or "").path
        root = urllib.parse.urlsplit(self._api.root if self._api else "").path.rstrip("/")
        if root and path.startswith(root + "/"):
            path = path[len(root):]
        if method is None:
            return AuthenticationError(
                f"Glance refused the token while {action} (HTTP 401): the target's"
                f" application credential has access rules ({allowed}): either they do not"
                f" allow this call or the Glance of region {self.region_name} cannot check"
                " them (it needs service_type = image in [keystone_authtoken])", **where)
        if not access_rules.allows(rules, "image", method, path):
            return AuthenticationError(
                f"Glance refused the token while {action} (HTTP 401): the access rules of"
                f" the target's application credential do not allow {method} {path} on the"
                f" image service (they allow: {allowed}): add a rule for it, or use a"
                " credential without access rules", **where)
        return AuthenticationError(
            f"Glance refused the token while {action} (HTTP 401): the target's application"
            f" credential has access rules, and the Glance of region {self.region_name} does"
            " not check them: its glance-api.conf needs service_type = image in"
            " [keystone_authtoken] (keystonemiddleware refuses every token restricted by"
            " access rules without it)", **where)

    def _forget_api(self) -> None:
        """After a connection failure: find the API again (another endpoint may work)."""
        if self._endpoint_override is None:
            self._api, self._lost = None, True

    def _schema_error(self, action: str, image: str | None, exc: TypeError) -> UsageError:
        # glanceclient checks each field against Glance's image schema and
        # reports a misfit as a TypeError.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return UsageError(f"{action}: a value does not fit Glance's image schema: {reason}",
                          region=self.name, image=image)

    def _http_error(self, exc: glance_exc.HTTPException, action: str, image: str | None,
                    publicize: bool, deleting: bool, collection: bool) -> GlanceSyncError:
        status = _http_status(exc)
        details = _details(exc)
        where = {"region": self.name, "image": image, "status_code": status,
                 "retry_after": getattr(exc, "retry_after", None)}
        if status == 404 and collection:
            root = self._api.root if self._api is not None else self._endpoint_override
            return EndpointError(f"{action} failed: " + self._wrong_endpoint(
                root, "its image collection answered HTTP 404"), **where)
        if status == 404:
            return ImageNotFoundError(f"image not found while {action}", **where)
        if status == 409:
            return ConflictError(f"{action} refused: the image's state does not allow it "
                                 f"(HTTP 409): {details}", **where)
        if status == 401:
            return self._access_rules_error(exc, action, where) or AuthenticationError(
                f"Glance refused the token while {action} (HTTP 401): check the target's"
                " credentials", **where)
        if status == 403:
            if deleting and "protected" in details.lower():
                return ConflictError("the image is protected: set protected to false "
                                     "before deleting it (HTTP 403)", **where)
            rule = _POLICY_REFUSAL.search(details)
            if rule is not None and rule.group(1) != "publicize_image":
                hint = ("; upload_method = glance-direct (or auto) uploads through"
                        " the import API where the region allows it"
                        if rule.group(1) == "upload_image" and self.upload_method == "direct"
                        else "")
                return ServiceError(f"{action} forbidden (HTTP 403) by the region's "
                                    f"policy (rule {rule.group(1)}), not by a missing "
                                    f"role of the credential: {details}{hint}", **where)
            if publicize:
                return ServiceError(f"{action} forbidden (HTTP 403): making an image "
                                    "public needs the admin role", **where)
            return ServiceError(f"{action} forbidden (HTTP 403): the credential's role "
                                f"or project does not allow it: {details}", **where)
        if status == 429:
            wait = where["retry_after"]
            asked = f", Retry-After {wait:g} s" if wait is not None else ""
            return ServiceError(f"{action} refused: too many requests (HTTP 429{asked}):"
                                " the region limits the rate of requests;"
                                " requests_per_second of the target keeps a run under"
                                f" that limit: {details}", **where)
        if status == 415:
            return ServiceError(f"{action} refused (HTTP 415): the data does not match "
                                f"the declared disk_format: {details}", **where)
        return ServiceError(f"{action} failed (HTTP {status or 'error'}): {details}",
                            **where)
