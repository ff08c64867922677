"""Helpers for the catalog/purchase API tests: settings with known secrets, a client that speaks the API."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drm.keystore import ContentKey
from drm.payments.purchases import SIGNATURE_HEADER, sign
from server.config import Settings
from server.services import Services
from tests.conftest import settings_for

OPERATOR_TOKEN = "operator-7f3Kq9ZtLw2Rb8Vx1Nc4"
WEBHOOK_SECRET = "webhook-Hn5Yd0Pj6Ms3Ue9Gt2Fa"


def catalog_settings(data_dir: Path, s3_store, **overrides: str) -> Settings:
    values = {"SERIES_OPERATOR_TOKEN": OPERATOR_TOKEN, "SERIES_WEBHOOK_SECRET": WEBHOOK_SECRET}
    values.update(overrides)
    return settings_for(data_dir, s3_store, **values)


def payment_body(event_type: str, payment_id: str, viewer_id: str, series_id: str, *,
                 amount_cents: int = 499, currency: str = "USD", event_id: str | None = None) -> bytes:
    return json.dumps({
        "id": event_id or f"evt-{payment_id}-{event_type.split('.')[1]}",
        "type": event_type,
        "data": {"payment_id": payment_id, "viewer_id": viewer_id, "series_id": series_id,
                 "amount_cents": amount_cents, "currency": currency},
    }).encode()


def publish_keys(services: Services, series_id: str, episode_id: str, *, is_free_preview: bool = False) -> ContentKey:
    """An episode as the key server sees it: in the catalog and with a content key, without transcoding."""
    services.catalog.reserve_episode(series_id, episode_id, duration_s=60.0, is_free_preview=is_free_preview)
    key = services.keystore.create_keys(series_id, episode_id, 1)[0]
    services.catalog.mark_published(series_id, episode_id, version=1, duration_s=60.0)
    return key


@dataclass
class Api:
    """An aiohttp test client plus the Services behind it."""

    client: Any
    services: Services

    operator_headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}", "X-Operator": "ops-ann"}

    async def account(self, subject: str, role: str) -> dict[str, str]:
        response = await self.client.post("/v1/operator/account-tokens", json={"subject": subject, "role": role},
                                          headers=self.operator_headers)
        assert response.status == 201, await response.text()
        return {"Authorization": f"Bearer {(await response.json())['token']}"}

    async def webhook(self, body: bytes, *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET,
                      signature: str | None = None):
        stamp = int(time.time()) if timestamp is None else timestamp
        header = signature if signature is not None else sign(secret.encode(), stamp, body)
        return await self.client.post("/v1/webhooks/payments", data=body,
                                      headers={SIGNATURE_HEADER: header, "Content-Type": "application/json"})

    async def key_status(self, key_id: str, viewer_id: str, series_id: str) -> int:
        token = self.services.tokens.mint(viewer_id, series_id)
        response = await self.client.get(f"/v1/keys/{key_id}", params={"token": token})
        await response.read()
        return response.status


async def problem_code(response) -> str:
    assert response.content_type == "application/problem+json", await response.text()
    return (await response.json(content_type=None))["code"]
