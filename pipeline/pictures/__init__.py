"""An episode's pictures: the poster and storyboard sampled from the transcode's own frames (sampler), how a
frame is scored, still-image encoding (JPEG/WebP), storyboard sheets and thumbnails from a published
segment. Imports pipeline.errors only.
"""
