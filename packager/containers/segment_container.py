"""What publishing needs to know about a rendition's segment container: MPEG-TS or fMP4.

Content types (Apple HLS authoring 10.4), the fMP4 init segment that EXT-X-MAP names, and where a
segment's first picture ends (for I-frame byte ranges) differ; the rest of publishing does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from packager.containers.fragmented_mp4 import (
    first_video_presentation_90k,
    first_video_sample_end,
    is_init_segment,
    video_track_id,
)
from packager.containers.transport_stream import first_video_access_unit_end, first_video_pts
from packager.errors import MalformedSegment
from pipeline.encode.transcode import EncodedRendition

TS_SEGMENT_TYPE = "video/mp2t"
FMP4_SEGMENT_TYPE = "video/iso.segment"
INIT_SEGMENT_TYPE = "video/mp4"


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentContainer:
    content_type: str                    # of the media segments
    init_name: str | None = None         # fMP4: the init segment's object name, beside the segments
    init: bytes | None = field(default=None, repr=False)   # fMP4: stored clear (ftyp + moov, no samples)
    video_track_id: int | None = None    # fMP4: the traf whose first sample is the I-frame

    @property
    def is_fmp4(self) -> bool:
        return self.init is not None

    def first_picture_end(self, plaintext: bytes) -> int:
        """Byte offset where the segment's first video picture ends. Raises MalformedSegment."""
        if self.video_track_id is not None:
            return first_video_sample_end(plaintext, self.video_track_id)
        return first_video_access_unit_end(plaintext)

    def first_video_pts_90k(self, plaintext: bytes) -> int:
        """When the segment's first picture is shown, in 90 kHz units (PES PTS for TS, tfdt-based for fMP4).

        Raises MalformedSegment."""
        if self.init is not None:
            return first_video_presentation_90k(self.init, plaintext)
        return first_video_pts(plaintext)


def segment_container(rendition: EncodedRendition) -> SegmentContainer:
    """The container of `rendition`'s segments; fMP4 when the transcoder wrote an init segment.

    Raises MalformedSegment when that init segment is not a clear ftyp + moov with a video track.
    """
    if rendition.init_path is None:
        return SegmentContainer(content_type=TS_SEGMENT_TYPE)
    init = rendition.init_path.read_bytes()
    if not is_init_segment(init):
        raise MalformedSegment(f"{rendition.rendition.name}: {rendition.init_path.name} is not an init segment "
                               "(ftyp + moov without samples)")
    return SegmentContainer(content_type=FMP4_SEGMENT_TYPE, init_name=rendition.init_path.name, init=init,
                            video_track_id=video_track_id(init))
