"""Which topics of a bag carry what: the one rule that finds the event, colour, depth, odometry and label topics of
a recording, used by dataset building and by replay (so both read the same topics of the same bag).

A topic named by the user must exist and have a fitting type; an unnamed one is found by its message type: the event
topic (any decodable event type), the colour topic (``sensor_msgs/Image`` without "depth" in its name), the depth
topic (an image topic with "depth" in its name), the odometry topic (``nav_msgs/Odometry``). Several candidates for
one role are refused, naming them: guessing would silently train on the wrong camera.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.perception.events.stream import EVENT_MSGTYPES

IMAGE_TYPE = "sensor_msgs/msg/Image"
ODOM_TYPE = "nav_msgs/msg/Odometry"
#: Integer message types a place-label topic may use.
LABEL_TYPES = ("std_msgs/msg/UInt32", "std_msgs/msg/Int32", "std_msgs/msg/UInt16", "std_msgs/msg/Int64",
               "std_msgs/msg/UInt8", "std_msgs/msg/Int16", "std_msgs/msg/UInt64", "std_msgs/msg/Int8")


@dataclass(frozen=True)
class Topics:
    """Topic names of a recording; ``None``: found by type (``resolve_topics``), or absent. ``label`` is only read
    when named."""

    events: str | None = None
    rgb: str | None = None
    depth: str | None = None
    odom: str | None = None
    label: str | None = None


def _pick(types: Mapping[str, str], name: str | None, ok: tuple[str, ...], *, what: str, flag: str, source: Path,
          depth: bool | None = None) -> str | None:
    if name is not None:
        if name not in types:
            raise DatasetError(f"{source}: missing topic(s) [{name!r}] ({what}); the bag has {sorted(types)} "
                               f"(pass {flag})")
        if types[name] not in ok:
            raise DatasetError(f"{source}: {what} topic {name!r} is {types[name]}, expected one of {list(ok)}")
        return name
    cands = sorted(t for t, ty in types.items() if ty in ok and (depth is None or ("depth" in t) == depth))
    if len(cands) > 1:
        raise DatasetError(f"{source}: {len(cands)} candidate {what} topics {cands}; choose one with {flag}")
    return cands[0] if cands else None


def resolve_topics(types: Mapping[str, str], want: Topics = Topics(), *, source: Path | str = "bag") -> Topics:
    """The topics of a bag whose topics have message ``types`` (topic -> type): ``want``'s names checked, the others
    found by type (see the module docstring). The event topic is required; the others may be ``None``."""
    source = Path(source)
    events = _pick(types, want.events, EVENT_MSGTYPES, what="event", flag="--events-topic", source=source)
    if events is None:
        raise DatasetError(f"{source}: no event topic of types {list(EVENT_MSGTYPES)}; the bag has "
                           f"{sorted(types)} (pass --events-topic)")
    rgb = _pick(types, want.rgb, (IMAGE_TYPE,), what="colour", flag="--rgb-topic", source=source, depth=False)
    depth = _pick(types, want.depth, (IMAGE_TYPE,), what="depth", flag="--depth-topic", source=source, depth=True)
    odom = _pick(types, want.odom, (ODOM_TYPE,), what="odometry", flag="--odom-topic", source=source)
    label = (_pick(types, want.label, LABEL_TYPES, what="label", flag="--label topic:NAME", source=source)
             if want.label else None)
    return Topics(events=events, rgb=rgb, depth=depth, odom=odom, label=label)
