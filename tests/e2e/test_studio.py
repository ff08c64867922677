"""The creator studio in headless Chromium, as issue 24 tells it: a creator signs in (the local set-up's
creator sign-in), creates a series, uploads episodes with tus-js-client (each with its own progress bar,
moving under a phone's upload speed; one paused and resumed; both through a network drop, resumed on
their own), watches each job move through its stages to "published", sees a broken file's rejection in
plain words, reorders two episodes from the keyboard and finds the new order in the viewer's API,
renames, unpublishes and deletes, and reads the series' sales; an ineligible creator sees every unmet
rule with what to do, and one short only of followers applies with premium content. Real service (tus to
SeaweedFS, the job runner, PyAV), real browser; screenshots in var/test-artifacts/studio/.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from drm.catalog.eligibility import CreatorProfile
from drm.payments.purchases import PURCHASE, REFUND, SIGNATURE_HEADER, sign
from server.app import create_app
from server.config import Settings
from server.services import Services
from server.web.assets import WebAssets
from tests.server.catalog_support import OPERATOR_TOKEN, WEBHOOK_SECRET, payment_body
from tests.support.browser import PROJECT_ROOT, Chromium, find_chromium
from tests.support.browser_tab import PHONE, Tab
from tests.support.catalog import eligible_facts
from tests.support.flaky_proxy import FlakyProxy
from tests.support.jobs import ingest_env
from tests.support.media import noisy_clip
from tests.support.uploads import uploads_bucket

CHROMIUM = find_chromium()
ARTIFACTS = Path(os.environ.get("SERIES_TEST_ARTIFACTS", PROJECT_ROOT / "var" / "test-artifacts")) / "studio"
MAKER, NEWCOMER, ALMOST = "maker", "newcomer", "almost"
SERIES = "knots-for-climbers"
PHONE_UPLOAD_BYTES_PER_S = 2_000_000    # a phone's upload speed: a clip of a few seconds takes seconds to send
# a few seconds of video, but larger than what Chromium takes off a page before the network does (about
# 2 MB: its upload progress counts that at once), so the progress bars have somewhere to move
CLIP_BYTES = 9_000_000
MAX_UPLOAD_BYTES = 50_000_000          # SERIES_MAX_UPLOAD_BYTES here: a file over it is refused before it is sent
DEADLINE_S = 240.0                       # a bound so a stuck job fails the test instead of hanging it

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium (or set SERIES_TEST_CHROMIUM)"),
    pytest.mark.skipif(not WebAssets.find().is_built, reason="the web app is not built: npm ci && npm run build"),
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def studio(tmp_path_factory, s3_store):
    """The service with local sign-in and the job runner, three creators (eligible; short of several rules;
    short only of followers), and one Chromium for the module."""
    env = ingest_env(tmp_path_factory.mktemp("studio"), s3_store, SERIES_UPLOADS_BUCKET=f"u-{uuid.uuid4().hex[:12]}",
                     SERIES_LOCAL_SIGN_IN="true", SERIES_MIN_DURATION_S="2", SERIES_LADDER_MAX_RENDITIONS="1",
                     SERIES_MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES),
                     SERIES_OPERATOR_TOKEN=OPERATOR_TOKEN, SERIES_WEBHOOK_SECRET=WEBHOOK_SECRET)
    settings = Settings.from_env(env)
    services = Services.open(settings)
    services.store.ensure_bucket()
    with uploads_bucket(settings) as bucket:
        bucket.ensure_bucket()
    for creator_id, facts in ((MAKER, eligible_facts()),
                              (NEWCOMER, eligible_facts(is_private=True, followers=120, views_last_30_days=40,
                                                        public_posts_last_30_days=1)),
                              (ALMOST, eligible_facts(followers=3_000))):
        services.creators.record(CreatorProfile.from_json(creator_id, facts))
    server = TestServer(create_app(settings, services), host="127.0.0.1")
    await server.start_server()
    async with Chromium(CHROMIUM) as browser:
        yield server, browser, services
    await server.close()
    services.close()


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


async def sign_in(tab: Tab, creator_id: str) -> None:
    await tab.wait_for("document.querySelector('#creator-id')", what="the creator sign-in")
    await tab.fill("#creator-id", creator_id)
    await tab.submit("form.sign-in")
    await tab.wait_for(f"document.querySelector('.who strong')?.textContent === '{creator_id}'", what="signed in")


def stage_of(episode_id: str) -> str:
    return f"document.querySelector('.studio-episode[data-episode=\"{episode_id}\"]')?.dataset.stage"


async def viewer_order(server: TestServer) -> list[str]:
    """The series' episodes as an anonymous viewer's API answer lists them."""
    async with aiohttp.ClientSession() as http, http.get(url(server, f"/v1/series/{SERIES}")) as response:
        assert response.status == 200
        return [episode["title"] for episode in (await response.json())["episodes"]]


async def pay(server: TestServer, event_type: str, payment_id: str, viewer_id: str) -> None:
    body = payment_body(event_type, payment_id, viewer_id, SERIES, amount_cents=750)
    headers = {SIGNATURE_HEADER: sign(WEBHOOK_SECRET.encode(), int(time.time()), body),
               "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http, http.post(url(server, "/v1/webhooks/payments"), data=body,
                                                          headers=headers) as response:
        assert response.status == 200, await response.text()


async def test_a_creator_creates_a_series_uploads_watches_it_publish_and_reorders(studio, media_dir, tmp_path):
    server, browser, _ = studio
    first = noisy_clip(media_dir, "studio-bowline.mp4", min_bytes=CLIP_BYTES, duration_s=3, fps=10)
    second = noisy_clip(media_dir, "studio-clove-hitch.mp4", min_bytes=CLIP_BYTES, duration_s=3, fps=10)
    broken = tmp_path / "notes.mp4"
    broken.write_bytes(b"shopping list: rope, more rope\n" * 200)
    # the browser reaches the service through a phone's network: slow uploads, and a drop on demand
    async with FlakyProxy(server.port, upload_bytes_per_s=PHONE_UPLOAD_BYTES_PER_S) as network, Tab(browser) as tab:
        await tab.goto(f"{network.base_url}/studio")
        await sign_in(tab, MAKER)
        await tab.wait_for("document.querySelector('.eligibility')?.dataset.status === 'eligible'", what="eligible")

        # a new series: the address follows the title, the price is checked, and it goes on sale at once
        await tab.fill("#series-title", "Knots for climbers")
        assert await tab.evaluate("document.querySelector('#series-id').value") == SERIES
        await tab.fill("#series-price", "250")
        await tab.submit(".series-form")
        assert "between 1 and 190" in await tab.wait_for(
            "document.querySelector('.series-form [role=alert]')?.textContent", what="the price refused")
        await tab.fill("#series-price", "7.50")
        await tab.fill("#series-description", "Six knots, one short episode each.")
        await tab.screenshot(ARTIFACTS / "1-new-series.png")
        await tab.submit(".series-form")
        await tab.wait_for(f"location.pathname === '/studio/series/{SERIES}'", what="the series page")
        assert await tab.wait_for("document.activeElement?.id") == "series-title"
        assert "$7.50" in await tab.evaluate("document.querySelector('.studio-series .meta').innerText")

        # a file over the size cap is refused in the page, before a byte is sent (a sparse file: no disk used)
        huge = tmp_path / "four-hours.mp4"
        with huge.open("wb") as sparse:
            sparse.truncate(MAX_UPLOAD_BYTES + 1)
        await tab.set_files("#episode-files", [huge])
        refusal = await tab.wait_for("document.querySelector('#upload-help + [role=alert]')?.textContent", what="refused")
        assert "four-hours.mp4" in refusal and "at most 50 MB" in refusal, refusal
        assert not await tab.evaluate("document.querySelector('.upload')")
        assert "2 seconds" in await tab.evaluate("document.querySelector('#upload-help').textContent")

        # three files at once, each its own progress bar, sent at a phone's speed
        await tab.set_files("#episode-files", [first, second, broken])
        await tab.wait_for("document.querySelectorAll('.upload').length === 3", what="three upload rows")
        bars: dict[str, set[float]] = {}
        stages: dict[str, list[str]] = {}
        paused = dropped = False
        deadline = time.monotonic() + DEADLINE_S
        while True:
            rows = await tab.evaluate("[...document.querySelectorAll('.upload')].map(u => [u.dataset.episode, "
                                      "u.dataset.state, u.querySelector('progress').value])")
            for episode_id, _, value in rows:
                bars.setdefault(episode_id, set()).add(value)
            episodes = await tab.evaluate("[...document.querySelectorAll('.studio-episode')].map(e => "
                                          "[e.dataset.episode, e.dataset.stage])")
            for episode_id, stage in episodes:
                if not stages.get(episode_id) or stages[episode_id][-1] != stage:
                    stages.setdefault(episode_id, []).append(stage)
            uploading = [(episode_id, state, value) for episode_id, state, value in rows if state == "uploading"]
            if not paused and uploading and 5 <= uploading[0][2] <= 60:
                # pause one mid-file: it stops where it is, and resumes from the server's offset
                paused = True
                await tab.click(f".upload[data-episode='{uploading[0][0]}'] [data-action=pause]")
                await tab.wait_for(f"document.querySelector(\".upload[data-episode='{uploading[0][0]}']\")"
                                   ".dataset.state === 'paused'", what="paused")
                await tab.wait_for(f"document.querySelector('.studio-episode[data-episode=\"{uploading[0][0]}\"]')",
                                   what="the new episode listed while it uploads")
                await tab.screenshot(ARTIFACTS / "2-uploading-paused.png")
                await asyncio.sleep(1)
                await tab.click(f".upload[data-episode='{uploading[0][0]}'] [data-action=resume]")
            elif paused and not dropped and uploading:
                # the network drops mid-upload: the rows say so, and go on by themselves once it is back
                dropped = True
                network.drop()
                await tab.wait_for("document.querySelector('.upload[data-state=offline]')", what="waiting for the network")
                await tab.screenshot(ARTIFACTS / "3-network-dropped.png")
                await asyncio.sleep(2)
                network.restore()
            settled = [stage for stage in (s[-1] for s in stages.values())] if len(stages) == 3 else []
            if settled and all(stage in ("published", "failed") for stage in settled):
                break
            assert time.monotonic() < deadline, (rows, stages)
            await asyncio.sleep(0.2)
        assert paused and dropped, (bars, stages)
        # each file went through the stages; a broken one was rejected, the videos published
        ids = {title: await tab.evaluate(f"[...document.querySelectorAll('.studio-episode')].find(e => e.innerText"
                                         f".includes('{title}'))?.dataset.episode") for title in
               ("studio bowline", "studio clove hitch", "notes")}
        # each video's bar moved through values between empty and full (the broken file is a few KB: one step)
        assert len(bars) == 3 and all(len({v for v in bars[ids[title]] if 0 < v < 100}) >= 3
                                      for title in ("studio bowline", "studio clove hitch")), bars
        assert stages[ids["studio bowline"]][-1] == stages[ids["studio clove hitch"]][-1] == "published", stages
        assert stages[ids["notes"]][-1] == "failed", stages
        seen = {stage for history in stages.values() for stage in history}
        assert seen & {"validating", "transcoding", "packaging", "publishing"}, stages
        rejection = await tab.evaluate(f"document.querySelector('[data-episode=\"{ids['notes']}\"] .rejection').innerText")
        assert "rejected" in rejection and "To fix it:" in rejection, rejection
        await tab.evaluate("document.querySelector('#upload-title').scrollIntoView()")
        await tab.screenshot(ARTIFACTS / "4-published-and-rejected.png")

        # the rejected one is deleted (asked to confirm first)
        notes = f"[data-episode=\"{ids['notes']}\"]"
        await tab.click(f"{notes} [data-action=ask-delete]")
        await tab.click(f"{notes} [data-action=delete]")
        await tab.wait_for(f"!document.querySelector('{notes}')", what="deleted")

        # reorder from the keyboard: Alt+Down on the first row; focus stays with the episode moved
        order = await viewer_order(server)          # the uploads started together: either may be first
        assert sorted(order) == ["studio bowline", "studio clove hitch"], order
        moved = ids[order[0]]
        await tab.evaluate(f"document.querySelector('[data-episode=\"{moved}\"]').focus()")
        await tab.press("ArrowDown", code=40, alt=True)
        await tab.wait_for(f"document.querySelector('[data-episode=\"{moved}\"] .position').textContent === '2'",
                           what="moved down")
        assert moved == await tab.evaluate("document.activeElement.closest('.studio-episode')?.dataset.episode")
        notice = await tab.wait_for("document.querySelector('.studio-series [aria-live]').textContent", what="notice")
        assert "Moved" in notice, (notice, tab.console[-20:])
        assert await viewer_order(server) == order[::-1]

        # rename, unpublish
        row = f"[data-episode=\"{ids['studio clove hitch']}\"]"
        await tab.click(f"{row} [data-action=edit]")
        await tab.fill(f"#title-{ids['studio clove hitch']}", "The clove hitch")
        await tab.submit(f"{row} form.rename")
        await tab.wait_for(f"document.querySelector('{row} .episode-title')?.innerText.includes('The clove hitch')",
                           what="renamed")
        await tab.click(f"[data-episode=\"{ids['studio bowline']}\"] [data-action=unpublish]")
        await tab.wait_for(f"document.querySelector('[data-episode=\"{ids['studio bowline']}\"] [data-action=publish]')",
                           what="unpublished")
        assert await viewer_order(server) == ["The clove hitch"]

        # sales: a purchase and a refund of another, recorded by the payment webhook
        await pay(server, PURCHASE, "pay-s1", "viewer-1")
        await pay(server, PURCHASE, "pay-s2", "viewer-2")
        await pay(server, REFUND, "pay-s2", "viewer-2")
        await tab.click(".sales button")
        sales = await tab.wait_for("document.querySelector('.sales-totals')?.closest('.sales').innerText",
                                   what="the sales")
        assert "1 buyer now" in sales and "$15.00" in sales and "$7.50" in sales and "Refund" in sales, sales
        await tab.evaluate("document.querySelector('#episodes-title').scrollIntoView()")
        await tab.screenshot(ARTIFACTS / "5-series-managed.png")
        assert not [line for line in tab.console if "exception" in line.lower()], tab.console
        assert {urlsplit(u).hostname for u in tab.requested if u.startswith("http")} == {"127.0.0.1"}

    # the same page fits a phone
    async with Tab(browser, PHONE) as tab:
        await tab.goto(url(server, f"/studio/series/{SERIES}"))
        await sign_in(tab, MAKER)
        await tab.wait_for("document.querySelector('.studio-episode')", what="the episodes on a phone")
        assert await tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await tab.screenshot(ARTIFACTS / "6-phone.png")


async def test_an_ineligible_creator_sees_every_unmet_rule_and_what_to_do(studio):
    server, browser, services = studio
    async with Tab(browser) as tab:
        await tab.goto(url(server, "/studio"))
        await sign_in(tab, NEWCOMER)
        await tab.wait_for("document.querySelector('.eligibility')?.dataset.status === 'ineligible'", what="the verdict")
        rules = await tab.evaluate("[...document.querySelectorAll('.unmet-rule')].map(r => [r.dataset.code, "
                                   "r.querySelector('strong').innerText, r.querySelector('.advice').innerText])")
        recorded = services.creators.get(NEWCOMER)
        assert [code for code, *_ in rules] == [rule.code for rule in recorded.unmet]
        assert {code for code, *_ in rules} == {"account_private", "too_few_posts", "too_few_followers", "too_few_views"}
        assert all(message and advice and not advice.startswith("Contact support") for _, message, advice in rules)
        assert not await tab.evaluate("document.querySelector('.series-form') || document.querySelector('form.apply')")
        await tab.screenshot(ARTIFACTS / "7-ineligible.png")

    # short only of followers: apply with premium content sold elsewhere, and wait for an operator
    async with Tab(browser, PHONE) as tab:
        await tab.goto(url(server, "/studio"))
        await sign_in(tab, ALMOST)
        await tab.wait_for("document.querySelector('form.apply')", what="the application form")
        await tab.fill("#premium-url", "https://courses.example.com/knots")
        await tab.submit("form.apply")
        await tab.wait_for("document.querySelector('.eligibility')?.dataset.status === 'pending_manual_approval'",
                           what="the application pending")
        assert services.creators.get(ALMOST).premium_content_url == "https://courses.example.com/knots"
        assert await tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await tab.screenshot(ARTIFACTS / "8-applied-phone.png")
