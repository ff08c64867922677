"""What an upload is before anything is made of it: probe (container and streams), the validation decode and
its measurements, the per-picture limits it is held to, and the rotation it declares. Imports pipeline.errors
only (and PyAV); encode/ and per_title/ build on it.
"""
