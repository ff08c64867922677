"""Completion webhooks, the jobs' outgoing messages: one signed attempt (completion), the durable delivery
schedule and its table (deliveries), and the addresses a webhook may reach (addresses: the SSRF guard).
"""
