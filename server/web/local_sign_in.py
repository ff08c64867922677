"""POST /v1/local/sign-in: a local viewer's account token, for the local set-up's "choose or create a viewer".

Anyone who can reach it can be any viewer, so it is off unless the embedded set-up (no SERIES_S3_ENDPOINT)
or SERIES_LOCAL_SIGN_IN=true turns it on; off, it answers 404 local_sign_in_off. In production the host
application signs its viewers in and hands the pages their account token (README: Sign-in).
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from drm.ids import field_id
from server.edge.bodies import read_object
from server.services import SERVICES

log = logging.getLogger(__name__)
SIGN_IN_PATH = "/v1/local/sign-in"


class LocalSignInOff(Exception):
    code = "local_sign_in_off"
    http_status = 404

    def __init__(self) -> None:
        super().__init__("local sign-in is off here: viewers sign in with the host application, which hands the "
                         "pages their account token; for a local set-up, set SERIES_LOCAL_SIGN_IN=true")


async def sign_in(request: web.Request) -> web.Response:
    """{"viewer_id": "ann"} -> 201 {"token", "viewer_id", "expires_at"}: an account token with role viewer."""
    services = request.app[SERVICES]
    web_settings = services.settings.web
    if not web_settings.local_sign_in:
        raise LocalSignInOff()
    data = await read_object(request, required={"viewer_id"})
    viewer_id = field_id("viewer_id", data["viewer_id"])
    token = services.tokens.mint_account(viewer_id, "viewer", ttl_s=web_settings.local_sign_in_ttl_s)
    expires_at = services.tokens.verify_account(token).expires_at
    log.info("local sign-in as viewer %s", viewer_id)
    return web.json_response({"token": token, "viewer_id": viewer_id, "expires_at": expires_at}, status=201,
                             headers={hdrs.CACHE_CONTROL: "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_post(SIGN_IN_PATH, sign_in)
