"""The operator's catalog commands: creators, series and sales (series), a series' episodes (episodes),
ingesting or validating one file (ingest), posters and captions (pictures), grants, refunds and tokens
(access).
"""
