"""The audio side of a transcode: one resampled 48 kHz stereo track, AAC-encoded once per bit rate.

A source without audio still gets a real silent AAC track, so every variant is `avc1…,mp4a.40.2`
(players stall on variants that declare audio and carry none).
"""

from __future__ import annotations

from fractions import Fraction

import av

AUDIO_RATE = 48000
AUDIO_FRAME_SAMPLES = 1024   # one AAC-LC frame


class AudioTrack:
    """Source audio resampled to 48 kHz stereo on the video clock, or silence when the source has none.

    AAC is encoded once per distinct audio bit rate in the ladder (usually 3 encoders for 5 rungs, where
    the ffmpeg CLI runs one per variant), and each rendition muxes its own copy of those packets.
    """

    def __init__(self, outputs: list, *, has_source_stream: bool) -> None:
        self.t0 = 0.0
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE,
                                           frame_size=AUDIO_FRAME_SAMPLES)
        self.samples_out = 0
        # Silence is generated as the video advances only when there is no audio stream at all: a
        # source whose audio is stored (demuxed) late must not have silence pushed ahead of its sound.
        self.has_source_stream = has_source_stream
        self.has_source = False
        groups: dict[int, list] = {}
        for output in outputs:
            groups.setdefault(output.rendition.audio_bitrate_bps, []).append(output)
        self.encoders = [(aac_encoder(bit_rate), members) for bit_rate, members in groups.items()]

    def push(self, frame) -> None:
        if not self.has_source:
            self.has_source = True
            if frame.pts is not None:
                lead = float(frame.pts * frame.time_base) - self.t0
                self._silence(max(0, round(lead * AUDIO_RATE)))
        for out in self.resampler.resample(frame):
            self._send(out)

    def fill_silence_until(self, video_time_s: Fraction) -> None:
        if not self.has_source_stream:
            self._silence(round(video_time_s * AUDIO_RATE) - self.samples_out)

    def finish(self, duration_s: Fraction) -> None:
        if self.has_source:
            for out in self.resampler.resample(None):
                self._send(out)
        self._silence(round(duration_s * AUDIO_RATE) - self.samples_out)
        for encoder, members in self.encoders:
            self._deliver(encoder.encode(None), members)

    def _silence(self, samples: int) -> None:
        while samples > 0:
            count = min(samples, AUDIO_FRAME_SAMPLES)
            frame = av.AudioFrame(format="fltp", layout="stereo", samples=count)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.sample_rate = AUDIO_RATE
            self._send(frame)
            samples -= count

    def _send(self, frame) -> None:
        frame.pts = self.samples_out
        frame.time_base = Fraction(1, AUDIO_RATE)
        self.samples_out += frame.samples
        for encoder, members in self.encoders:
            self._deliver(encoder.encode(frame), members)

    @staticmethod
    def _deliver(packets, members: list) -> None:
        # a muxed packet is consumed by its container, so every rendition but the first gets a copy
        for packet in packets:
            if packet.pts is not None and packet.duration and packet.pts + packet.duration <= 0:
                # The encoder's priming packet (initial padding, pts -1024) holds only the encoder
                # delay before t = 0. MPEG-TS has no edit list to hide it, so kept it makes audio start
                # 21 ms before the picture, more than a frame at 50-60 fps. Without it each sample
                # keeps its timestamp; the decoder just fades the first 21 ms in.
                continue
            members[0].pending_audio.append(packet)
            for output in members[1:]:
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
                copy.time_base = packet.time_base
                output.pending_audio.append(copy)


def aac_encoder(bit_rate: int):
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate = AUDIO_RATE
    encoder.layout = "stereo"
    encoder.format = "fltp"
    encoder.bit_rate = bit_rate
    encoder.time_base = Fraction(1, AUDIO_RATE)
    encoder.open()
    return encoder
