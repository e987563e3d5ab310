"""Set up one test-bed Keystone in a single process (run by the test bed's venv).

Why one process: every ``keystone-manage`` call spends about 2 s importing
Keystone, and a registration client needs a running server. Here the
database migration, the Fernet and credential key repositories, the
bootstrap and the registration of projects, users, regions and the image
endpoints share one import and talk to the backends directly.

This file is executed by path with the test bed's Python (it imports only
the standard library and Keystone, never ``glancesync``):

    python keystone_setup.py SPEC.json RESULT.json

SPEC holds ``config_file``, ``admin_password``, ``identity_url``,
``regions`` (the first one gets the identity endpoint), ``image_endpoints``
(region -> URL, or a list of URLs: several public image endpoints) and ``users`` (name, password, project, role). RESULT
receives ``{"projects": {name: id}, "users": {name: id}}``.
"""
from __future__ import annotations

import json
import sys
import uuid


def _run_manage(cli, config_file: str, *command: str) -> None:
    """Run one keystone-manage command in this process."""
    # oslo.config refuses a second parse unless its state is cleared first.
    cli.CONF.clear()
    cli.main(argv=["keystone-manage", "--config-file", config_file, *command])


def main(spec_path: str, result_path: str) -> int:
    """Migrate, bootstrap and register everything the spec asks for."""
    with open(spec_path, encoding="utf-8") as stream:
        spec = json.load(stream)

    from keystone.cmd import cli
    from keystone.common import driver_hints, provider_api

    config = spec["config_file"]
    regions = spec["regions"]
    owner = ["--keystone-user", spec["os_user"], "--keystone-group", spec["os_group"]]
    _run_manage(cli, config, "db_sync")
    _run_manage(cli, config, "fernet_setup", *owner)
    _run_manage(cli, config, "credential_setup", *owner)
    _run_manage(cli, config, "bootstrap",
                # One word: a generated password may start with "-".
                f"--bootstrap-password={spec['admin_password']}",
                "--bootstrap-region-id", regions[0],
                "--bootstrap-public-url", spec["identity_url"])

    # bootstrap loaded the backends; keep using them.
    api = provider_api.ProviderAPIs
    domain_id = "default"

    def role_id(name: str) -> str:
        hints = driver_hints.Hints()
        hints.add_filter("name", name)
        roles = api.role_api.list_roles(hints)
        if roles:
            return roles[0]["id"]
        new_id = uuid.uuid4().hex
        api.role_api.create_role(new_id, {"id": new_id, "name": name})
        return new_id

    projects = {"admin": api.resource_api.get_project_by_name("admin", domain_id)["id"]}
    users = {"admin": api.identity_api.get_user_by_name("admin", domain_id)["id"]}
    for entry in spec["users"]:
        project = entry["project"]
        if project not in projects:
            new_id = uuid.uuid4().hex
            api.resource_api.create_project(new_id, {
                "id": new_id, "name": project, "domain_id": domain_id,
                "enabled": True, "is_domain": False, "parent_id": domain_id,
                "description": "GlanceSync test bed project"})
            projects[project] = new_id
        if entry["name"] not in users:
            user = api.identity_api.create_user({
                "name": entry["name"], "domain_id": domain_id, "enabled": True,
                "password": entry["password"], "default_project_id": projects[project]})
            users[entry["name"]] = user["id"]
        api.assignment_api.add_role_to_user_and_project(
            user_id=users[entry["name"]], project_id=projects[project],
            role_id=role_id(entry["role"]))

    for region in regions[1:]:
        api.catalog_api.create_region({"id": region})
    service_id = uuid.uuid4().hex
    api.catalog_api.create_service(service_id, {
        "id": service_id, "type": "image", "name": "glance", "enabled": True})
    for region, urls in spec["image_endpoints"].items():
        for url in [urls] if isinstance(urls, str) else urls:
            endpoint_id = uuid.uuid4().hex
            api.catalog_api.create_endpoint(endpoint_id, {
                "id": endpoint_id, "service_id": service_id, "interface": "public",
                "region_id": region, "url": url, "enabled": True})

    with open(result_path, "w", encoding="utf-8") as stream:
        json.dump({"projects": projects, "users": users}, stream)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
