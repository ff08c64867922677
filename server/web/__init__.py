"""The viewer web app: storefront, series page with the paywall, test purchase, episode player.

The pages are one small single-page app (client/, built with esbuild from npm packages into dist/ at
set-up: `./run demo`, `./run serve` and `./run tests` run `npm ci` and `npm run build`) that talks to the
service's own JSON APIs only; this room serves its shell and content-hashed static files under a
Content-Security-Policy of their own (pages.py, assets.py), and two JSON endpoints for the local and
test set-ups, each off unless configured: a local viewer sign-in (local_sign_in.py) and a test-mode
payment simulator that sends a signed webhook to our own /v1/webhooks/payments (payment_simulator.py).

May import: server.edge, server.config, server.services, and drm. Never another feature room: the pages
use the HTTP APIs like any client.
"""
