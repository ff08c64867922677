"""Who calls the catalog API, for routes anyone may call but that show more to some: the operator, a
creator (the owner sees drafts, processing episodes, errors), a viewer (a buyer sees a series they own
after it is unpublished or archived), or no one in particular."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from drm.catalog.catalog import PUBLISHED, Series
from drm.errors import NotSeriesOwner, UnknownSeries
from server.edge.auth import Forbidden, bearer, is_operator, require_account, require_operator
from server.services import Services

OPERATOR, CREATOR, VIEWER, ANONYMOUS = "operator", "creator", "viewer", "anonymous"


@dataclass(frozen=True, slots=True)
class Caller:
    role: str                   # operator | creator | viewer | anonymous
    subject: str | None         # the creator's or viewer's id; the operator's audit name
    is_test_viewer: bool = False

    def owns(self, series: Series) -> bool:
        return self.role == CREATOR and self.subject == series.creator_id

    def manages(self, series: Series) -> bool:
        """May change the series and see everything of it: its creator, or the operator."""
        return self.role == OPERATOR or self.owns(series)

    @property
    def scope(self) -> str:
        """Whose Idempotency-Keys these are (keys are unique per client, not globally)."""
        return f"{self.role}:{self.subject or ''}"


def identify(request: web.Request, services: Services) -> Caller:
    """The caller by its credentials; anonymous without any. Bad credentials are refused (401), not
    taken for anonymity: a client whose token expired must hear so."""
    if bearer(request) is None:
        return Caller(ANONYMOUS, None)
    if is_operator(request, services):
        return Caller(OPERATOR, require_operator(request, services))
    for role in (CREATOR, VIEWER):
        try:
            account = require_account(request, services, role)
        except Forbidden:
            continue
        return Caller(role, account.subject,
                      role == VIEWER and account.subject in services.settings.catalog.test_viewer_ids)
    raise AssertionError("an account token has a role")        # pragma: no cover - ROLES is creator, viewer


def require_creator(request: web.Request, services: Services) -> Caller:
    account = require_account(request, services, CREATOR)
    return Caller(CREATOR, account.subject)


async def managed_series(request: web.Request, services: Services, series_id: str) -> tuple[Caller, Series]:
    """The series and its caller, who must be its creator or the operator (else 401/403)."""
    caller = identify(request, services)
    if caller.role not in (OPERATOR, CREATOR):
        require_creator(request, services)      # raises the 401/403 that names what is needed
    series = await asyncio.to_thread(services.catalog.get_series, series_id)
    if not caller.manages(series):
        raise NotSeriesOwner(caller.subject or "", series_id)
    return caller, series


async def visible_series(request: web.Request, services: Services, series_id: str) -> tuple[Caller, Series]:
    """The series if the caller may see it: everyone a published one; its creator and the operator any;
    a viewer holding it one unpublished or archived. Anyone else: UnknownSeries (404), as for no series."""
    caller = identify(request, services)
    series = await asyncio.to_thread(services.catalog.get_series, series_id)
    if series.status == PUBLISHED or caller.manages(series):
        return caller, series
    if caller.role == VIEWER and series.status != "draft" and await asyncio.to_thread(
            services.entitlements.is_entitled, caller.subject, series_id):
        return caller, series
    raise UnknownSeries(series_id)
