"""An episode's versions in the object store: publish() (encrypt, upload, verify, switch the pointer
atomically), republish() with new captions or posters, the version manifest, retention of old versions,
subtitles and pictures beside the renditions, and seeking one segment for thumbnails. Imports hls/,
containers/, packager.store, packager.encrypt and pipeline's value types.
"""
