"""POST /v1/local/sign-in: a local viewer's or creator's account token, for the local set-up's "choose or
create a viewer" (the web app) and "choose a local creator" (the creator studio).

Anyone who can reach it can be any viewer or creator, so it is off unless the embedded set-up (no SERIES_S3_ENDPOINT)
or SERIES_LOCAL_SIGN_IN=true turns it on; off, it answers 404 local_sign_in_off. In production the host
application signs its viewers and creators in and hands the pages their account token (README: Sign-in).
A locally signed-in creator is no more than any creator: they sell only when their eligibility verdict
(recorded by the operator from the account platform's facts) says so.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from drm.errors import InvalidField
from drm.ids import field_id
from server.edge.bodies import read_object
from server.services import SERVICES

log = logging.getLogger(__name__)
SIGN_IN_PATH = "/v1/local/sign-in"


class LocalSignInOff(Exception):
    code = "local_sign_in_off"
    http_status = 404

    def __init__(self) -> None:
        super().__init__("local sign-in is off here: viewers and creators sign in with the host application, which "
                         "hands the pages their account token; for a local set-up, set SERIES_LOCAL_SIGN_IN=true")


async def sign_in(request: web.Request) -> web.Response:
    """{"viewer_id": "ann"} -> 201 {"token", "viewer_id", "expires_at"}: an account token with role viewer;
    {"creator_id": "cy"} -> 201 {"token", "creator_id", "expires_at"}: one with role creator (the studio).
    Exactly one of the two; InvalidField (422) otherwise."""
    services = request.app[SERVICES]
    web_settings = services.settings.web
    if not web_settings.local_sign_in:
        raise LocalSignInOff()
    data = await read_object(request, optional={"viewer_id", "creator_id"})
    if len(data) != 1:
        raise InvalidField("viewer_id", "send either viewer_id (a viewer) or creator_id (a creator), not both")
    field, role = ("creator_id", "creator") if "creator_id" in data else ("viewer_id", "viewer")
    account_id = field_id(field, data[field])
    token = services.tokens.mint_account(account_id, role, ttl_s=web_settings.local_sign_in_ttl_s)
    expires_at = services.tokens.verify_account(token).expires_at
    log.info("local sign-in as %s %s", role, account_id)
    return web.json_response({"token": token, field: account_id, "expires_at": expires_at}, status=201,
                             headers={hdrs.CACHE_CONTROL: "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_post(SIGN_IN_PATH, sign_in)
