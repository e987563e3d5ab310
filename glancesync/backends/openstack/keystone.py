"""Keystone targets: one keystoneauth1 session per target.

A :class:`KeystoneTarget` authenticates lazily with Keystone v3, finds its
regions in the token's service catalog (endpoints of service type
``image``) and builds one Glance adapter per region on its shared session.
Explicit credentials (password or application credential) make a
keystoneauth1 session here; a ``clouds.yaml`` cloud is read by openstacksdk's
loader, whose session carries every setting of the entry (any ``auth_type``,
``verify``, ``cacert``, ``cert``/``key``, ``api_timeout``) and whose
``interface`` chooses the endpoints; the section's own ``cacert``,
``insecure`` and ``interface`` override them. keystoneauth1 errors are
translated here into :mod:`glancesync.errors`.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import time
from typing import Any, Iterator

from keystoneauth1 import access as ks_access
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from glancesync.backends.base import ProjectName, RegionAdapter, Target, TargetSpec
from glancesync.backends.openstack import access as access_rules
from glancesync.backends.openstack.origins import guarded_session, short_reason
from glancesync.backends.openstack.settings import (INTERFACES, OpenStackSettings,
                                                    check_tls_files, load_cloud)
from glancesync.errors import (AuthenticationError, ConfigError, ConnectionFailure,
                               GlanceSyncError, ServiceError, TLSError)
from glancesync.pacing import RatePacer
from glancesync.regions import RegionRef

LOG = logging.getLogger(__name__)

IMAGE_SERVICE_TYPE = "image"
_PASSWORD_AUTH_TYPES = ("password", "v3password")
_APP_CREDENTIAL_AUTH_TYPES = ("v3applicationcredential", "applicationcredential")
_PASSWORD_KEYS = ("username", "password", "project_name", "project_id",
                  "user_domain_name", "project_domain_name", "user_domain_id",
                  "project_domain_id", "user_id")
_APP_CREDENTIAL_KEYS = ("application_credential_id", "application_credential_secret",
                        "application_credential_name", "username", "user_id",
                        "user_domain_name", "user_domain_id")

#: Seconds a connection may stay silent (connecting, or waiting for the next
#: bytes of an answer) before the call fails: a service that accepts
#: connections and never answers must not hang a cron run. Long transfers
#: are not cut: data keeps moving.
SOCKET_TIMEOUT = 300.0


def v3_url(auth_url: str) -> str:
    """The Keystone v3 root: ``http://host:5000`` -> ``http://host:5000/v3``.

    Old configurations (the legacy ``credential`` line) name the retired
    v2.0 API: ``http://host:5000/v2.0`` also means ``http://host:5000/v3``.
    """
    url = auth_url.rstrip("/").removesuffix("/v2.0")
    return url if url.endswith("/v3") else url + "/v3"


class KeystoneTarget(Target):
    """A target whose regions are registered in one Keystone."""

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.settings: OpenStackSettings = spec.settings
        self.name = spec.name
        self._session: ks_session.Session | None = None
        self._auth: Any = None
        self._auth_url: str | None = None
        self._access: ks_access.AccessInfoV3 | None = None
        #: This host's monotonic time when the token was received.
        self._access_at = 0.0
        self._cloud: Any = None
        self._identity: Any = None
        #: Paces every request of the target, all its regions together.
        self.pacer = RatePacer(self.settings.requests_per_second)

    # -- session -----------------------------------------------------------

    @property
    def cloud(self) -> Any:
        """The ``clouds.yaml`` cloud (openstacksdk's ``CloudRegion``), or None."""
        if self._cloud is None and self.settings.cloud is not None:
            self._cloud = load_cloud(self.settings.cloud, self.name)
        return self._cloud

    @property
    def auth_url(self) -> str | None:
        """The Keystone v3 URL (known once the credentials are resolved)."""
        if self._auth_url is None and self.settings.cloud is None and self.settings.auth:
            return v3_url(self.settings.auth["auth_url"])
        return self._auth_url

    @property
    def location(self) -> str:
        """The Keystone v3 URL of the target."""
        if self.auth_url is not None:
            return self.auth_url
        url = (self.cloud.config.get("auth") or {}).get("auth_url")
        return v3_url(url) if url else self.name

    @property
    def interface(self) -> str:
        """The catalog interface used: the section's, else the cloud's, else public."""
        if self.settings.interface is not None:
            return self.settings.interface
        if self.cloud is not None:
            chosen = self.cloud.get_interface("image")
            if isinstance(chosen, (list, tuple)):
                chosen = next((i for i in chosen if i), None)
            if chosen:
                interface = str(chosen).lower().removesuffix("url")
                if interface not in INTERFACES:
                    raise ConfigError(f"interface {chosen!r} of cloud {self.settings.cloud!r}"
                                      f" in clouds.yaml: expected {', '.join(INTERFACES)}",
                                      section=self.name, option="cloud")
                return interface
        return "public"

    @property
    def session(self) -> ks_session.Session:
        """The target's keystoneauth1 session (built on first use, not yet authenticated)."""
        if self._session is None:
            if self.cloud is not None:
                session = self._cloud_session()
            else:
                if not self.settings.auth:
                    raise ConfigError("no credentials for this target", section=self.name)
                auth = dict(self.settings.auth)
                self._auth = self._make_plugin(auth, auth_type=auth.pop("auth_type", None))
                # Requests (and the redirections keystoneauth follows) reach only
                # Keystone and the catalog's endpoints: the token goes nowhere else.
                session = ks_session.Session(
                    auth=self._auth, verify=self._verify(True),
                    timeout=self.settings.timeout or SOCKET_TIMEOUT, cert=self._cert(None),
                    session=guarded_session(self._allowed_urls, self.pacer))
            # A FIFO as CA bundle would block the first handshake for ever.
            check_tls_files(session.verify, session.cert, self.name)
            self._session = session
        return self._session

    def _allowed_urls(self) -> Iterator[str | None]:
        """Keystone's URL and every endpoint of the current token's catalog."""
        yield self._auth_url
        access = getattr(self._auth, "auth_ref", None)
        catalog = access.service_catalog.catalog if access is not None else None
        for service in catalog or []:
            for endpoint in service.get("endpoints") or []:
                yield endpoint.get("url")

    def _cloud_session(self) -> ks_session.Session:
        """The cloud's session, as openstacksdk makes it, the section's TLS options applied.

        Its requests go through the same guard as explicit credentials' do.
        """
        cloud = self.cloud
        url = (cloud.config.get("auth") or {}).get("auth_url")
        if url:
            self._auth_url = v3_url(url)
        cloud.set_session_constructor(functools.partial(
            ks_session.Session, session=guarded_session(self._allowed_urls, self.pacer)))
        try:
            session = cloud.get_session()
        except Exception as exc:  # openstacksdk's and keystoneauth's loading errors
            raise ConfigError(f"cloud {self.settings.cloud!r} of clouds.yaml cannot be"
                              f" used: {exc}", section=self.name, option="cloud") from None
        session.verify = self._verify(session.verify)
        session.cert = self._cert(session.cert)
        if self.settings.timeout:
            session.timeout = self.settings.timeout
        elif session.timeout is None:  # no api_timeout in the cloud
            session.timeout = SOCKET_TIMEOUT
        self._auth = session.auth
        return session

    def _verify(self, default: bool | str) -> bool | str:
        """TLS verification: off with ``insecure``, else ``cacert``, else ``default``."""
        if self.settings.insecure:
            return False
        return self.settings.cacert or default

    def _cert(self, default: Any) -> Any:
        """The client certificate: ``cert`` (with ``key``), else ``default``."""
        if not self.settings.cert:
            return default
        return (self.settings.cert, self.settings.key) if self.settings.key else self.settings.cert

    def _make_plugin(self, auth: dict[str, Any], auth_type: str | None) -> v3.Auth:
        if not auth.get("auth_url"):
            raise ConfigError("the credentials have no auth_url", section=self.name,
                              option="auth_url")
        self._auth_url = v3_url(auth["auth_url"])
        is_app_credential = (auth_type in _APP_CREDENTIAL_AUTH_TYPES
                             or "application_credential_secret" in auth)
        if is_app_credential:
            kwargs = {k: auth[k] for k in _APP_CREDENTIAL_KEYS if auth.get(k)}
            if "application_credential_secret" not in kwargs:
                raise ConfigError("the application credential has no secret",
                                  section=self.name,
                                  option="application_credential_secret")
            return v3.ApplicationCredential(auth_url=self._auth_url, **kwargs)
        if auth_type not in (None, *_PASSWORD_AUTH_TYPES):
            raise ConfigError(f"auth_type {auth_type!r} is not supported: use password or"
                              " v3applicationcredential", section=self.name)
        kwargs = {k: auth[k] for k in _PASSWORD_KEYS if auth.get(k)}
        return v3.Password(auth_url=self._auth_url, **kwargs)

    @property
    def access(self) -> ks_access.AccessInfoV3:
        """The token (authenticating on first use)."""
        if self._access is None:
            session = self.session
            if self._auth is None:
                raise ConfigError("the credentials give no authentication plugin",
                                  section=self.name)
            LOG.debug("authenticating target %s at %s", self.name, self.auth_url)
            with self._translate():
                self._access = self._auth.get_access(session)
            self._access_at = time.monotonic()
        return self._access

    def clock(self) -> datetime.datetime | None:
        """The time now by Keystone's clock: its token's ``issued_at`` plus the
        time elapsed here since it was received (this host's monotonic clock,
        which no wrong wall clock moves); None if the token says no time."""
        access = self.access
        issued = getattr(access, "issued", None)
        if not isinstance(issued, datetime.datetime):
            return None
        if issued.tzinfo is None:
            issued = issued.replace(tzinfo=datetime.timezone.utc)
        return issued + datetime.timedelta(seconds=time.monotonic() - self._access_at)

    @property
    def project_id(self) -> str | None:
        """The project the target's token is scoped to."""
        return self.access.project_id

    # -- Target interface --------------------------------------------------

    def region_names(self) -> list[str]:
        """Regions with an ``image`` endpoint of the configured interface, catalog order."""
        regions: dict[str, None] = {}  # ordered, and linear in the catalog's size
        for endpoint in iter_image_endpoints(self.access):
            interface = endpoint.get("interface")
            if interface is not None and interface != self.interface:
                continue
            region = endpoint.get("region_id") or endpoint.get("region")
            if region:
                regions.setdefault(region, None)
        return list(regions)

    def adapter(self, region: RegionRef) -> RegionAdapter:
        """A Glance adapter of ``region`` on the target's session."""
        from glancesync.backends.openstack.glance import GlanceRegionAdapter
        for_region = getattr(self.spec, "for_region", None)
        config = for_region(region.name) if for_region is not None else self.spec
        return GlanceRegionAdapter(
            name=str(region), session=self.session, region_name=region.name,
            project_id=self.project_id, list_timeout=self.spec.list_images_timeout,
            interface=self.interface, upload_method=getattr(config, "upload_method", "auto"),
            import_timeout=getattr(config, "import_timeout", 1800.0))

    def close(self) -> None:
        """Forget the token and close the HTTP connections."""
        if self._session is not None:
            self._session.session.close()
        self._session = None
        self._access = None
        self._cloud = None  # its session is closed: read the cloud again if needed
        self._identity = None

    # -- projects (sync_members) ---------------------------------------------

    def _identity_client(self) -> Any:
        """A python-keystoneclient v3 client on the target's session."""
        if self._identity is None:
            from keystoneclient.v3 import client as ks_client
            self._identity = ks_client.Client(session=self.session,
                                              interface=self.interface)
        return self._identity

    def project_name(self, project_id: str) -> ProjectName | None:
        """The name and domain name of a project of this Keystone (admin look-up)."""
        client = self._identity_client()
        with self._translate_lookup():
            try:
                project = client.projects.get(project_id)
                domain = client.domains.get(project.domain_id)
            except ks_exc.NotFound:
                return None
        return ProjectName(project.name, domain.name)

    def find_project(self, project: ProjectName) -> str | None:
        """The id of the project of that name in the domain of that name, or None."""
        client = self._identity_client()
        with self._translate_lookup():
            domains = client.domains.list(name=project.domain)
            if not domains:
                return None
            found = client.projects.list(name=project.name, domain=domains[0].id)
        return found[0].id if found else None

    @contextlib.contextmanager
    def _translate_lookup(self) -> Iterator[None]:
        """Keystone errors of a project look-up, with what a 403 means."""
        try:
            with self._translate():
                yield
        except (ServiceError, AuthenticationError) as exc:
            rules = access_rules.restricted_rules(self._session)
            if rules is not None and exc.status_code in (401, 403):
                raise AuthenticationError(
                    f"Keystone at {self.location} refused a project look-up of target"
                    f" {self.name} (HTTP {exc.status_code}): the access rules of its"
                    " application credential allow no such identity call (they allow:"
                    f" {access_rules.describe(rules)}); sync_members maps projects by"
                    " name: add rules for service identity, method GET, paths"
                    " /v3/projects/*, /v3/domains/*, /v3/projects and /v3/domains, or"
                    " use a credential without access rules, or sync_members = false",
                    status_code=exc.status_code) from exc
            if exc.status_code == 403:
                exc.message += (" (sync_members maps projects by name: the target's"
                                " credential must be allowed to read projects and"
                                " domains, an admin's usually)")
            raise

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn keystoneauth1 errors raised inside into GlanceSync errors."""
        try:
            yield
        except ks_exc.ClientException as exc:
            raise translate_error(exc, self.name, self.auth_url) from exc


def translate_error(exc: ks_exc.ClientException, target: str,
                    url: str | None) -> GlanceSyncError:
    """The GlanceSync error matching a keystoneauth1 error of ``target``."""
    where = url or "(unknown URL)"
    if isinstance(exc, ks_exc.Unauthorized):
        return AuthenticationError(
            f"Keystone at {where} refused the credentials of target {target}:"
            " check username/password/project (or the application credential)",
            status_code=401)
    if isinstance(exc, ks_exc.SSLError):
        return TLSError(
            f"TLS failure with Keystone at {where} (target {target}): set cacert to"
            " the CA bundle of the server (insecure = true for tests only);"
            f" {short_reason(exc)}")
    if isinstance(exc, ks_exc.ConnectTimeout):
        return ConnectionFailure(
            f"timeout connecting to Keystone at {where} (target {target}):"
            " check auth_url and that the server is reachable")
    if isinstance(exc, ks_exc.ConnectionError):
        return ConnectionFailure(
            f"cannot connect to Keystone at {where} (target {target}): check auth_url"
            f" and that Keystone is running; {short_reason(exc)}")
    if isinstance(exc, ks_exc.HttpError):
        return ServiceError(
            f"Keystone at {where} answered {exc.http_status} for target {target}:"
            f" {exc.message}", status_code=exc.http_status,
            retry_after=exc.retry_after or None)
    if isinstance(exc, ks_exc.CatalogException):
        return ServiceError(f"service catalog of target {target} ({where}): {exc}")
    if isinstance(exc, ks_exc.DiscoveryFailure):
        return ServiceError(f"Keystone at {where} (target {target}) could not be"
                            f" discovered: {exc}; check auth_url")
    if isinstance(exc, (ks_exc.AuthPluginException, ks_exc.AuthorizationFailure)):
        return AuthenticationError(f"cannot authenticate target {target} at {where}:"
                                   f" {exc}")
    return ServiceError(f"Keystone error for target {target} at {where}: {exc}")


def iter_image_endpoints(access: ks_access.AccessInfo) -> Iterator[dict[str, Any]]:
    """Every endpoint of service type ``image`` in a token's catalog."""
    for service in access.service_catalog.catalog or []:
        if service.get("type") == IMAGE_SERVICE_TYPE:
            yield from service.get("endpoints") or []
