"""Settings of the viewer web app (server/web/): the local sign-in, the test-mode payment simulator, and
the host applications that may embed the pages and hand them a viewer's account token; web_settings()
reads them from the environment for Settings.from_env()."""

from __future__ import annotations

from dataclasses import dataclass

from server.config.environment import PREFIX, Environment, SettingsError
from server.config.http import parse_origins


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


def web_settings(env: Environment, *, is_embedded: bool, has_webhook_secret: bool) -> WebSettings:
    """The web app's switches: local sign-in (default: on with the embedded set-up only), test payments
    (default off; they need the payment webhook's secret to sign with), host origins."""
    test_payments = env.bool("TEST_PAYMENTS", False)
    if test_payments and not has_webhook_secret:
        raise SettingsError(f"{PREFIX}TEST_PAYMENTS is on, but {PREFIX}WEBHOOK_SECRET is not set: test purchases are "
                            "signed webhooks like a payment system's; set the secret or turn test payments off")
    try:
        host_origins = parse_origins(env.str("WEB_HOST_ORIGINS", ""))
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}WEB_HOST_ORIGINS: {exc}") from None
    if "*" in host_origins:
        raise SettingsError(f"{PREFIX}WEB_HOST_ORIGINS may not be '*': name each host application's origin, "
                            "since those origins may hand the pages a viewer's token")
    return WebSettings(local_sign_in=env.bool("LOCAL_SIGN_IN", is_embedded), test_payments=test_payments,
                       host_origins=host_origins)
