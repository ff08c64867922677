"""The ladder and its one-decode transcode: the rungs and their settings (ladder), transcode() feeding every
rendition's thread (rendition_output, worker) the same frames, AAC audio, TS or fMP4 segment muxing, H.264
parameter reading, the sampled quality check and metrics (quality), and decode_segment() for the
packager's self-check. Imports inspect/ and pipeline.errors.
"""
