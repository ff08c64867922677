"""Completion webhooks, one delivery attempt at a time: no redirect followed, the address checked on the
connection itself, Standard Webhooks signatures, and an outcome that says whether to retry."""

from __future__ import annotations

import ipaddress

import pytest
from aiohttp import web

from server.config.jobs import JobSettings
from server.jobs.webhooks.addresses import AddressNotAllowed, check_address, listed_networks
from server.jobs.webhooks.completion import (
    LEGACY_SIGNATURE_HEADER,
    WebhookMessage,
    deliver_once,
    open_webhook_session,
    sign_legacy,
)
from tests.support.jobs import JOB_WEBHOOK_SECRET, verify_completion_webhook

BODY = b'{"event": "job.published", "job": {"job_id": "job_1"}}'


@pytest.fixture
async def receivers(aiohttp_server):
    """Two loopback servers: `hook` answers what `answer` says (204 by default); `other` records too."""
    seen: dict[str, list] = {"hook": [], "other": []}
    answer = {"status": 204, "headers": {}}

    async def other(request: web.Request) -> web.Response:
        seen["other"].append((dict(request.headers), await request.read()))
        return web.Response(status=200)

    other_app = web.Application()
    other_app.router.add_post("/steal", other)
    other_server = await aiohttp_server(other_app)

    async def hook(request: web.Request) -> web.Response:
        seen["hook"].append((dict(request.headers), await request.read()))
        return web.Response(status=answer["status"], headers=answer["headers"])

    hook_app = web.Application()
    hook_app.router.add_post("/hook", hook)
    hook_server = await aiohttp_server(hook_app)
    return hook_server, other_server, seen, answer


def _jobs(*hosts: str, networks: str = "", legacy: str | None = None) -> JobSettings:
    return JobSettings(webhook_hosts=hosts, webhook_secret=JOB_WEBHOOK_SECRET, webhook_legacy_secret=legacy,
                       webhook_networks=tuple(ipaddress.ip_network(n) for n in networks.split(",") if n))


async def _deliver(jobs: JobSettings, url: str):
    async with open_webhook_session(jobs) as http:
        return await deliver_once(http, WebhookMessage(message_id="msg_job_1_published", url=url, body=BODY), jobs)


async def test_a_redirect_is_a_failed_delivery_and_is_not_followed(receivers):
    hook_server, other_server, seen, answer = receivers
    answer.update(status=307, headers={"Location": str(other_server.make_url("/steal"))})
    # the set-up: the hook's host:port listed, the redirect pointing at another port
    jobs = _jobs(f"127.0.0.1:{hook_server.port}", f"127.0.0.1:{other_server.port}")
    outcome = await _deliver(jobs, str(hook_server.make_url("/hook")))
    assert not outcome.delivered and not outcome.retryable and outcome.http_status == 307
    assert "redirect" in outcome.status and "not followed" in outcome.status
    assert len(seen["hook"]) == 1 and seen["other"] == []       # the signed body went nowhere else


async def test_a_listed_name_resolving_to_loopback_is_refused_at_connect_time(receivers):
    hook_server, _, seen, _ = receivers
    url = f"http://localhost:{hook_server.port}/hook"
    outcome = await _deliver(_jobs(f"localhost:{hook_server.port}"), url)
    assert not outcome.delivered and not outcome.retryable
    assert "is loopback and not listed" in outcome.status
    assert seen["hook"] == []
    # the operator lists the network explicitly: now it may
    outcome = await _deliver(_jobs(f"localhost:{hook_server.port}", networks="127.0.0.0/8,::1/128"), url)
    assert outcome.delivered, outcome


async def test_a_delivery_is_signed_in_the_standard_webhooks_format(receivers):
    hook_server, _, seen, _ = receivers
    outcome = await _deliver(_jobs("127.0.0.1"), str(hook_server.make_url("/hook")))
    assert outcome.delivered and outcome.status == "delivered (HTTP 204)"
    headers, payload = seen["hook"][0]
    assert payload == BODY and headers["webhook-id"] == "msg_job_1_published"
    assert verify_completion_webhook(headers, payload)["event"] == "job.published"
    assert LEGACY_SIGNATURE_HEADER not in headers


async def test_the_legacy_header_is_sent_during_the_transition(receivers):
    hook_server, _, seen, _ = receivers
    legacy = "the-secret-receivers-check-today-0123"
    outcome = await _deliver(_jobs("127.0.0.1", legacy=legacy), str(hook_server.make_url("/hook")))
    assert outcome.delivered
    headers, payload = seen["hook"][0]
    timestamp = int(headers["webhook-timestamp"])
    assert headers[LEGACY_SIGNATURE_HEADER] == sign_legacy(legacy, timestamp, payload)
    verify_completion_webhook(headers, payload)


@pytest.mark.parametrize("status, retryable", [(500, True), (503, True), (429, True), (410, False), (400, False)])
async def test_the_outcome_says_whether_another_attempt_may_help(receivers, status, retryable):
    hook_server, _, _, answer = receivers
    answer["status"] = status
    outcome = await _deliver(_jobs("127.0.0.1"), str(hook_server.make_url("/hook")))
    assert (outcome.delivered, outcome.retryable, outcome.status) == (False, retryable, f"failed (HTTP {status})")


async def test_a_host_no_longer_listed_is_refused_before_connecting(receivers):
    hook_server, _, seen, _ = receivers
    outcome = await _deliver(_jobs("hooks.example.com"), str(hook_server.make_url("/hook")))
    assert outcome.status == "refused (host not allowed)" and seen["hook"] == []


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"),              # the cloud metadata service
    ("10.1.2.3", "private"), ("192.168.0.1", "private"), ("fd00:ec2::254", "private"),
    ("100.100.100.200", "reserved"),                # carrier-grade NAT range (another cloud's metadata)
    ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
])
def test_non_public_addresses_need_an_explicit_listing(address, kind):
    with pytest.raises(AddressNotAllowed) as refused:
        check_address(address, listed_networks(("hooks.example.com", "10.9.9.9:8443"), ()))
    assert refused.value.kind == kind
    check_address("93.184.215.14", ())                         # public: allowed for a listed name
    check_address("127.0.0.1", listed_networks(("127.0.0.1:8080",), ()))
    check_address("10.1.2.3", listed_networks((), (ipaddress.ip_network("10.0.0.0/8"),)))
    check_address("::ffff:10.1.2.3", listed_networks((), (ipaddress.ip_network("10.0.0.0/8"),)))
