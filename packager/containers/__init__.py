"""What is inside a segment, read without PyAV: MPEG-TS packets and fragmented-MP4 boxes, enough to find the
first video picture and its time. Imports packager.errors and pipeline's value types only.
"""
