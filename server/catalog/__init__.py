"""The catalog as an API: creators' eligibility, series and episode flags, and viewers' purchases and
playback tokens (api.py); the operator's comps, revocations, approvals and audit trail
(operator_api.py); and the payment system's webhook, whose signature and replay window are verified in
payments/webhook.py before drm/payments/purchases.py applies the event (payments/sales_api.py: a series'
sales for its creator). Each module exports its aiohttp
RouteTableDef as `routes`.

Captions and posters of published episodes are pictures_api.py's (republished by server/publishing/edits.py).

May import: server.edge, server.playback (playback URLs), server.publishing (caption and poster changes),
server.services, server.config, and drm.
"""
