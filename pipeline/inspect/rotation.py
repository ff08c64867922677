"""Bake a phone video's display matrix into its pixels: HLS players ignore the matrix."""

from __future__ import annotations

from fractions import Fraction

import av


def rotation_filter(frame):
    """A filter graph that bakes the display matrix into the pixels (players ignore it in HLS)."""
    rotation = int(frame.rotation) % 360
    if rotation == 0:
        return None
    steps = {90: ["transpose=cclock"], 180: ["hflip", "vflip"], 270: ["transpose=clock"]}.get(rotation)
    if steps is None:
        return None
    graph = av.filter.Graph()
    source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format,
                              time_base=frame.time_base or Fraction(1, 1000))
    previous = source
    for step in steps:
        name, _, args = step.partition("=")
        node = graph.add(name, args or None)
        previous.link_to(node)
        previous = node
    sink = graph.add("buffersink")
    previous.link_to(sink)
    graph.configure()
    return _FilterChain(graph, source, sink)


class _FilterChain:
    def __init__(self, graph, source, sink) -> None:
        # the graph must outlive its filter contexts: once it is collected, push() writes into freed memory
        self.graph, self.source, self.sink = graph, source, sink

    def push(self, frame) -> None:
        self.source.push(frame)

    def pull(self):
        return self.sink.pull()
