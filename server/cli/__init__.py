"""The `series` command line: one module per group of commands, each adding its sub-commands to the parser
main.py builds: the catalog's (catalog/: series, episodes, ingest, pictures, access) and the operations'
(operations/: service, database, jobs, uploads, gc), and demo.py; common.py holds what they share and
progress.py the ingest progress display. The entry point is server.cli.main:main.

May import: every other room of server/, and pipeline, packager, drm. Nothing imports the CLI.
"""
