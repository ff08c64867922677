"""The database under everything drm keeps: one Database interface, its SQLite and PostgreSQL engines,
opening one from a URL, and the schema's migrations. Imports drm.errors only.
"""
