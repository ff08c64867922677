"""The operator API: account tokens (standing in for sign-in), comps and gifts, revocations,
manual approval of creator applications, and the audit trail of entitlement changes.

Every route needs ``Authorization: Bearer <SERIES_OPERATOR_TOKEN>``; ``X-Operator: <name>`` names
the person in the audit trail.
"""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from drm.catalog.eligibility import PENDING
from drm.errors import InvalidField
from drm.ids import check_id, field_id
from server.catalog.idempotency import idempotent
from server.edge.auth import require_operator
from server.edge.bodies import read_object
from server.services import SERVICES

MAX_AUDIT_LINES = 1000

routes = web.RouteTableDef()


@routes.post("/v1/operator/account-tokens")
async def issue_account_token(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    require_operator(request, services)
    data = await read_object(request, required={"subject", "role"}, optional={"ttl_s"})
    token = services.tokens.mint_account(data["subject"], data["role"], ttl_s=data.get("ttl_s"))
    return web.json_response({"token": token, "subject": data["subject"], "role": data["role"]},
                             status=201, headers={"Cache-Control": "no-store"})


@routes.post("/v1/operator/entitlements")
@idempotent
async def grant(request: web.Request) -> web.Response:
    """A comp or gift (purchases come from the payment webhook)."""
    services = request.app[SERVICES]
    actor = require_operator(request, services)
    data = await read_object(request, required={"viewer_id", "series_id", "source"}, optional={"reason"})
    viewer_id, series_id = field_id("viewer_id", data["viewer_id"]), field_id("series_id", data["series_id"])
    if data["source"] not in ("comp", "gift"):
        raise InvalidField("source", "operators grant 'comp' or 'gift'; purchases come from the payment system")
    await asyncio.to_thread(services.catalog.get_series, series_id)
    entitlement = await asyncio.to_thread(
        services.entitlements.grant, viewer_id, series_id, source=data["source"],
        reason=data.get("reason", ""), actor=actor)
    return web.json_response(dataclasses.asdict(entitlement), status=201)


@routes.post("/v1/operator/entitlements/revoke")
@idempotent
async def revoke(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    actor = require_operator(request, services)
    data = await read_object(request, required={"viewer_id", "series_id", "reason"})
    viewer_id, series_id = field_id("viewer_id", data["viewer_id"]), field_id("series_id", data["series_id"])
    revoked = await asyncio.to_thread(
        services.entitlements.revoke, viewer_id, series_id, reason=data["reason"], actor=actor)
    return web.json_response({"viewer_id": viewer_id, "series_id": series_id, "revoked": revoked})


@routes.get("/v1/operator/entitlements/audit")
async def audit(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    require_operator(request, services)
    filters = {}
    for name in ("viewer_id", "series_id"):
        if name in request.query:
            filters[name] = field_id(name, request.query[name])     # a bad filter is 422, not 404
    raw_limit = request.query.get("limit", "100")
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_AUDIT_LINES:
        raise InvalidField("limit", f"expected 1..{MAX_AUDIT_LINES}")
    events = await asyncio.to_thread(services.entitlements.audit_trail, limit=int(raw_limit), **filters)
    return web.json_response({"events": [dataclasses.asdict(event) for event in events]})


@routes.get("/v1/operator/applications")
async def applications(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    require_operator(request, services)
    pending = await asyncio.to_thread(services.creators.list, PENDING)
    return web.json_response({"applications": [status.as_json() for status in pending]})


@routes.post("/v1/operator/creators/{creator_id}/decision")
@idempotent
async def decide(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    actor = require_operator(request, services)
    creator_id = check_id("creator_id", request.match_info["creator_id"])
    data = await read_object(request, required={"approve"}, optional={"reason"})
    if type(data["approve"]) is not bool:
        raise InvalidField("approve", "expected true or false")
    reason = data.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 500:
        raise InvalidField("reason", "expected text of at most 500 characters")
    status = await asyncio.to_thread(services.creators.decide, creator_id, approve=data["approve"],
                                     operator=actor, reason=reason)
    return web.json_response(status.as_json())
