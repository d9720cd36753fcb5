"""One name for each page, on the admin index, in its title and its breadcrumbs: "Failed records" for the records
whose last sync failed, "Sync log" for every attempt (its failed rows: "Failed attempts"). The old names ("Failed
syncs", "Sync logs") appear nowhere."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db

PAGES = {"/admin/zoho_sync/syncfailure/": "Failed records", "/admin/zoho_sync/synclog/": "Sync log",
         "/admin/zoho_sync/failedsynclog/": "Failed attempts", "/admin/zoho_sync/syncrun/": "Sync runs"}
OLD = ("Failed syncs", "failed syncs", "Sync logs", "sync logs", "Select sync log", "Select failed record")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_admin_index_names_each_page_once_with_its_one_name(admin_client):
    page = admin_client.get("/admin/")
    assert page.status_code == 200
    html = page.content.decode()
    for path, name in PAGES.items():
        assert re.search(rf'<a href="{re.escape(path)}"[^>]*>{name}</a>', html), f"{name} is not the link to {path}"
    text = text_of(html)
    for old in OLD:
        assert old not in text, f"the index still says {old!r}"


@pytest.mark.parametrize(("path", "name"), PAGES.items())
def test_each_page_is_titled_with_its_one_name(admin_client, path, name):
    page = admin_client.get(path)
    assert page.status_code == 200
    html = page.content.decode()
    assert re.search(rf"<h1>\s*{name}\s*</h1>", html), f"{path} is not titled {name!r}"
    assert re.search(rf"<title>\s*{name} \|", html)
    text = text_of(html)
    for old in OLD:
        assert old not in text, f"{path} still says {old!r}"
