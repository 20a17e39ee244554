"""Event-camera input: the columnar ``EventBatch``, vectorised decoders and encoders for every ROS event format,
stream decoding with bad-input counters, framing, AEDAT4 files and live cameras (dv-processing)."""

from hstnn_ros.perception.events.aedat import iter_aedat4, read_aedat4
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.cdr import DVS_MSGTYPES, decode_dvs_cdr, encode_dvs_event_array
from hstnn_ros.perception.events.codecs import (
    Decoded,
    Evt3State,
    LibcaerCmpState,
    decode_evt3,
    decode_libcaer,
    decode_libcaer_cmp,
    decode_mono,
    encode_evt3,
    encode_libcaer,
    encode_libcaer_cmp,
    encode_mono,
)
from hstnn_ros.perception.events.enums import Encoding, Normalization, ResizeMode, TimeMode
from hstnn_ros.perception.events.framing import (
    coordinate_luts,
    downscale_counts,
    events_to_frames,
    split_interval,
)
from hstnn_ros.perception.events.stream import (
    ENCODERS,
    EVENT_MSGTYPES,
    PACKET_MSGTYPES,
    DecodeCounters,
    MessageDecoder,
    StreamDecoder,
    Triggers,
    make_decoder,
    warm_up,
)

__all__ = [
    "DVS_MSGTYPES",
    "ENCODERS",
    "EVENT_MSGTYPES",
    "PACKET_MSGTYPES",
    "DecodeCounters",
    "Decoded",
    "Encoding",
    "EventBatch",
    "Evt3State",
    "LibcaerCmpState",
    "MessageDecoder",
    "Normalization",
    "ResizeMode",
    "StreamDecoder",
    "TimeMode",
    "Triggers",
    "coordinate_luts",
    "decode_dvs_cdr",
    "decode_evt3",
    "decode_libcaer",
    "decode_libcaer_cmp",
    "decode_mono",
    "downscale_counts",
    "encode_dvs_event_array",
    "encode_evt3",
    "encode_libcaer",
    "encode_libcaer_cmp",
    "encode_mono",
    "events_to_frames",
    "iter_aedat4",
    "make_decoder",
    "read_aedat4",
    "split_interval",
    "warm_up",
]
