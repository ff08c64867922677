"""Playback tokens after they are minted: refreshed by the player, its session ended, an account's
tokens revoked by the operator.

    POST /v1/playback/refresh          {"token": <playback token>}   [Authorization: Bearer <account token>]
    POST /v1/playback/end              {"token": <playback token>}
    POST /v1/operator/account-tokens/revoke   {"subject": <account id>}   (operator token)

Playback tokens last minutes (SERIES_TOKEN_TTL_S, 10 min by default), so a URL posted somewhere stops
working soon. A player keeps playing by refreshing its token before it expires and putting the new one
into the URIs it requests next (key and playlist URIs carry the token; see README: Sharing). A refresh
keeps the token's session id (a refreshed player is the same session, not a new one against the limit),
its viewer and series, and gives a new expiry. It is authorised by either
  * the viewer's account token (Bearer), for a playback token of that viewer however long ago it expired
    (within the longest account-token lifetime): a page left open overnight picks up where it was; or
  * the playback token alone, until SERIES_TOKEN_REFRESH_GRACE_S past its expiry (5 min by default): for
    players without an account token, and for a laptop that slept through the refresh.
A token alone refreshes a session for SERIES_SESSION_MAX_AGE_S (24 h) after its first token at most (the
`sst` claim, kept by every refresh): a copied token cannot be kept alive for good. Either way the
viewer's tokens must not be revoked. Whether the viewer may still watch is the key
server's question at the next key (a refresh grants nothing by itself).
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from drm.access.tokens import MAX_ACCOUNT_TOKEN_TTL_S, PlaybackToken
from drm.errors import TokenExpired
from server.access import ACCESS
from server.edge.auth import Forbidden, bearer, checked_credentials, require_operator, verified_account
from server.edge.bodies import read_object
from server.services import SERVICES, Services

routes = web.RouteTableDef()
NO_STORE = {"Cache-Control": "no-store"}


@routes.post("/v1/playback/refresh")
async def refresh(request: web.Request) -> web.Response:
    """A new playback token for the same viewer, series and session; 401 for a bad, expired or revoked
    token (or account token), 403 when the account token is another viewer's."""
    services = request.app[SERVICES]
    data = await read_object(request, required={"token"})
    current = checked_credentials(request, lambda: _refreshable(request, services, data["token"]))
    token = services.tokens.mint(current.viewer_id, current.series_id, session_id=current.session_id,
                                 session_started_at=current.session_started_at)
    expires_at = services.tokens.verify(token).expires_at
    return web.json_response({"token": token, "expires_at": expires_at}, headers=NO_STORE)


@routes.post("/v1/playback/end")
async def end(request: web.Request) -> web.Response:
    """The player stopped: its session no longer counts against the viewer's limit. 204; 401 for a bad
    token (accepted within the refresh grace past its expiry, as a player closing late sends it)."""
    services, access = request.app[SERVICES], request.app[ACCESS]
    data = await read_object(request, required={"token"})
    grace_s = services.settings.access.refresh_grace_s
    current = checked_credentials(request, lambda: services.tokens.verify(data["token"], expired_for_s=grace_s))
    access.sessions.forget(current.viewer_id, current.session_id)
    await access.in_lookup_thread("session", services.sessions.end, current.viewer_id, current.session_id)
    return web.Response(status=204, headers=NO_STORE)


@routes.post("/v1/operator/account-tokens/revoke")
async def revoke_account_tokens(request: web.Request) -> web.Response:
    """Refuse every token of an account issued up to now (account and playback tokens), on every instance
    within about a second, and end its playback sessions. 200 with the instant (unix s)."""
    services, access = request.app[SERVICES], request.app[ACCESS]
    actor = require_operator(request, services)
    data = await read_object(request, required={"subject"})
    not_before, ended = await asyncio.to_thread(revoke_tokens, services, data["subject"], actor)
    access.revoked.noted(data["subject"], not_before)
    return web.json_response({"subject": data["subject"], "not_before": not_before, "sessions_ended": ended},
                             headers=NO_STORE)


def revoke_tokens(services: Services, subject: str, actor: str) -> tuple[int, int]:
    """Revoke `subject`'s tokens and end its sessions: (the revocation instant, sessions ended). Blocking;
    the CLI's `series tokens revoke` and the operator API both go through it. Raises InvalidField."""
    not_before = services.revocations.revoke(subject, actor=actor)
    return not_before, services.sessions.end_all(subject)


def _refreshable(request: web.Request, services: Services, token: object) -> PlaybackToken:
    """The playback token to refresh, checked as the module docstring says; raises TokenInvalid (401),
    Forbidden (403), AccessUnavailable (503: revocations cannot be checked right now)."""
    access = request.app[ACCESS]
    if bearer(request) is not None:
        account = verified_account(request, services)
        if account.role != "viewer":
            raise Forbidden(f"refreshing a playback token needs a viewer account; the token is for a {account.role}")
        current = services.tokens.verify(token, expired_for_s=MAX_ACCOUNT_TOKEN_TTL_S)  # type: ignore[arg-type]
        if current.viewer_id != account.subject:
            raise Forbidden(f"the playback token is viewer {current.viewer_id}'s, not {account.subject}'s")
    else:
        settings = services.settings.access
        current = services.tokens.verify(token, expired_for_s=settings.refresh_grace_s)  # type: ignore[arg-type]
        # a token alone cannot refresh itself forever: whoever copied one would hold the session for good
        if time.time() - current.session_started_at > settings.session_max_age_s:
            raise TokenExpired(f"this playback session started over {settings.session_max_age_s // 3600} h ago; "
                               "refresh it with the viewer's account token (Authorization: Bearer), or start a "
                               "new one")
    access.check_not_revoked(current.viewer_id, current.issued_at, "playback token")
    return current


def add_routes(app: web.Application) -> None:
    """Add the token routes to `app`; its Services and Access must be at app[SERVICES] and app[ACCESS]."""
    app.router.add_routes(routes)
