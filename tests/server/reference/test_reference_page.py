"""The reference page /docs renders the description in headless Chromium from files this service serves,
with no request leaving 127.0.0.1 and no console error (a CSP refusal would be one). The screenshot is
kept as a test artifact (var/test-artifacts/, or $SERIES_TEST_ARTIFACTS) to look at."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server.app import create_app
from server.reference.page import Assets
from tests.support.browser import PROJECT_ROOT, Chromium, find_chromium, open_page

CHROMIUM = find_chromium()
ARTIFACTS = Path(os.environ.get("SERIES_TEST_ARTIFACTS", PROJECT_ROOT / "var" / "test-artifacts"))

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (or set SERIES_TEST_CHROMIUM)"),
    pytest.mark.skipif(Assets.find().swagger_version is None,
                       reason="no node_modules/swagger-ui-dist: run `npm ci` in the project root"),
]


async def test_the_reference_page_renders_every_operation_from_loopback_only(aiohttp_server, tmp_path, s3_store):
    from tests.server.reference.test_openapi import app_settings

    server = await aiohttp_server(create_app(app_settings(tmp_path, s3_store)))
    screenshot = ARTIFACTS / "reference-page.png"
    async with Chromium(CHROMIUM) as browser:
        seen = await open_page(browser, str(server.make_url("/docs")), screenshot=screenshot,
                               ready="document.querySelectorAll('.opblock').length > 40")
    assert seen["ready"], seen["console"]
    hosts = {urlsplit(url).hostname for url in seen["requested"] if not url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, seen["requested"]
    assert any(url.endswith("/openapi.json") for url in seen["requested"])
    errors = [line for line in seen["console"] if " error" in line or "exception" in line]
    assert not errors, errors
    assert screenshot.stat().st_size > 20_000      # a rendered page, not a blank one


async def test_the_page_says_how_to_install_its_files_when_they_are_missing(aiohttp_client, tmp_path, s3_store,
                                                                             monkeypatch):
    from server.reference import page
    from tests.server.reference.test_openapi import app_settings

    monkeypatch.setattr(page, "SWAGGER_UI", tmp_path / "nowhere")
    client = await aiohttp_client(create_app(app_settings(tmp_path, s3_store)))
    response = await client.get("/docs")
    assert response.status == 503 and (await response.json(content_type=None))["code"] == "reference_assets_missing"
    assert "npm ci" in (await response.json(content_type=None))["detail"]
    assert (await client.get("/openapi.json")).status == 200
