"""The API's own description: the OpenAPI 3.1 document written by hand in openapi/*.yaml (document.py
merges and serves it as /openapi.json) and a readable reference page at /docs (page.py: Swagger UI from
the npm package swagger-ui-dist, installed by `npm ci` and served here as versioned static files, never
from a CDN).

May import: server.edge, server.config.
"""
