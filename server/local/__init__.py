"""The embedded set-up for the demo and the tests: SeaweedFS `weed mini` on loopback as the object store
(object_store.py), started and stopped by the PID it records, and secrets generated once into the data
directory (secrets.py). Production points SERIES_S3_ENDPOINT at MinIO and none of this runs.

May import: packager (the store client it checks the server with). No other room of server/.
"""
