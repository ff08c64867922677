"""add_routes(): the web app's pages and files, the local sign-in and the test payments."""

from __future__ import annotations

from aiohttp import web

from server.config import Settings
from server.web import local_sign_in, pages, payment_simulator


def add_routes(app: web.Application, settings: Settings) -> None:
    pages.add_routes(app, settings)
    local_sign_in.add_routes(app)
    payment_simulator.add_routes(app)
