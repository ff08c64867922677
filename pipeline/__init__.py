"""pipeline: one uploaded file in, an encoded, IDR-aligned H.264/AAC ladder out (PyAV), and nothing of ours
imported.

    inspect/     probe, the validation decode and its limits: what the upload is
    encode/      the ladder's rungs and the one-decode transcode into every rendition's segments
    per_title/   the per-title decision: each rung's rate from a cheap probe of the episode, rungs dropped
    pictures/    posters, storyboards and thumbnails
    captions/    uploaded caption files and embedded subtitle streams
    errors.py    PipelineError and its leaves (MediaRejected: the upload's fault, with a stable code)
    synthetic.py generated sample media for the demo and the tests

Rooms import downwards: inspect → errors; encode → inspect; per_title → encode, inspect; pictures and
captions → errors (captions also inspect's issue type). tests/test_layering.py holds them to it.
"""
