"""Settings of the viewer web app (server/web/): the local sign-in, the test-mode payment simulator, and
the host applications that may embed the pages and hand them a viewer's account token."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSettings:
    # POST /v1/local/sign-in mints a viewer's account token for any viewer id anyone types: a stand-in for
    # the product's sign-in on a developer's machine only. On with the embedded set-up (no
    # SERIES_S3_ENDPOINT) unless SERIES_LOCAL_SIGN_IN=false; off elsewhere unless SERIES_LOCAL_SIGN_IN=true.
    local_sign_in: bool = False
    # POST /v1/test-payments: a clearly labelled "test purchase" that sends a signed payment webhook to our
    # own /v1/webhooks/payments. Off unless SERIES_TEST_PAYMENTS=true (`series demo` turns it on).
    test_payments: bool = False
    # SERIES_WEB_HOST_ORIGINS: origins of host applications that may frame the pages and hand them the
    # viewer's account token by postMessage; none: the pages refuse framing and wait for no host.
    host_origins: tuple[str, ...] = ()
    local_sign_in_ttl_s: int = 12 * 3600        # a local viewer's account token lives a working day
