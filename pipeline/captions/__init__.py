"""Caption tracks: uploaded WebVTT/SRT files read into cues (tracks) and subtitle streams extracted from the
upload (subtitles). Imports pipeline.errors and inspect/ (the validation issue type) only.
"""
