"""Extra regions and endpoints in a test bed Keystone, removed afterwards.

Real catalogs hold image endpoints that the bed's own do not: a versioned
URL (``http://host:9292/v2``), a URL behind a reverse proxy's path prefix,
an ``internal`` endpoint, a wrong URL. :class:`Catalog` registers such
endpoints with the bed's admin credential and :meth:`Catalog.remove`
deletes every endpoint and region it registered (the bed is shared by the
whole session). A new token is needed to see a change: sessions made
before it keep their catalog.
"""
from __future__ import annotations

import uuid

from keystoneauth1 import adapter as ksa_adapter
from keystoneauth1 import session as ksa_session
from keystoneauth1.identity import v3

from glancesync.testbed import TestBedInfo


class Catalog:
    """Registers image endpoints in Keystone ``keystone`` ('master' or 'other')."""

    def __init__(self, info: TestBedInfo, keystone: str = "master") -> None:
        self.info = info
        self.keystone = keystone
        auth = v3.Password(**info.auth(f"{keystone}-admin"))
        self.identity = ksa_adapter.Adapter(ksa_session.Session(auth=auth),
                                            service_type="identity", interface="public")
        services = self.identity.get("/services", params={"type": "image"}).json()
        self.service_id = services["services"][0]["id"]
        self.regions: list[str] = []
        self.endpoints: list[str] = []

    @staticmethod
    def unique(label: str) -> str:
        """A region name no other test uses: ``label-<8 hex>``."""
        return f"{label}-{uuid.uuid4().hex[:8]}"

    def add(self, region: str, url: str, interface: str = "public") -> str:
        """Register an image endpoint ``url`` of ``region`` (created if new)."""
        existing = {r["id"] for r in self.identity.get("/regions").json()["regions"]}
        if region not in existing:
            self.identity.post("/regions", json={"region": {"id": region}})
            self.regions.append(region)
        endpoint = self.identity.post("/endpoints", json={"endpoint": {
            "service_id": self.service_id, "interface": interface, "region_id": region,
            "url": url, "enabled": True}}).json()["endpoint"]
        self.endpoints.append(endpoint["id"])
        return region

    def remove(self) -> None:
        """Delete every endpoint, then every region, this object registered."""
        for endpoint in reversed(self.endpoints):
            self.identity.delete(f"/endpoints/{endpoint}", raise_exc=False)
        for region in reversed(self.regions):
            self.identity.delete(f"/regions/{region}", raise_exc=False)
        self.endpoints.clear()
        self.regions.clear()
        self.identity.session.session.close()
