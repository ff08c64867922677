"""Money in and out: purchases, refunds and chargebacks from the payment webhooks (each granting or
revoking an entitlement), sales reports, and idempotency keys for the API's writes. Imports catalog/,
access/, storage/.
"""
