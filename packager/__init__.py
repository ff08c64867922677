"""packager: an encoded ladder into the object store as encrypted HLS, published atomically by version.

    publishing/  publish (encrypt, upload, verify, switch the live pointer), republish, versions and their
                 manifests, retention, subtitles and pictures beside the renditions, seeking one segment
    hls/         playlists rendered, and the conformance checks every published playlist passes
    containers/  MPEG-TS and fragmented-MP4 segments read without PyAV
    encrypt.py   AES-128 per segment, keys by period through the KeySchedule the caller passes in
    store/       the S3 bucket (the only place minio is imported)
    errors.py    PackagerError and its leaves

Imports pipeline's value types only; publishing → hls, containers, store, encrypt. tests/test_layering.py
holds them to it.
"""
