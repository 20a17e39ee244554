"""RGB(-D) input: ``sensor_msgs/Image`` and ``CompressedImage`` decoding from message fields, and preprocessing to
the front-end's ``[C, H, W]`` float32 input (OpenCV resize, [0, 1] colour, depth in metres as an extra channel)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import cv2
import numpy as np

from hstnn_ros import defaults
from hstnn_ros.perception.errors import DecodeError


class ImageEncoding(StrEnum):
    """``sensor_msgs/Image.encoding`` values this module decodes."""

    RGB8 = "rgb8"
    BGR8 = "bgr8"
    MONO8 = "mono8"
    DEPTH_MM = "16UC1"  #: depth in millimetres (0 = no return)
    DEPTH_M = "32FC1"  #: depth in metres (NaN/inf = no return)


_LAYOUT = {ImageEncoding.RGB8: ("u1", 3), ImageEncoding.BGR8: ("u1", 3), ImageEncoding.MONO8: ("u1", 1),
           ImageEncoding.DEPTH_MM: ("u2", 1), ImageEncoding.DEPTH_M: ("f4", 1)}


def decode_image(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` as numpy: colour -> ``uint8 [H, W, 3]`` RGB, mono8 -> ``uint8 [H, W, 3]`` (grey
    replicated), depth (16UC1 mm or 32FC1 m) -> ``float32 [H, W]`` metres with invalid pixels 0. Honours ``step``
    row padding and ``is_bigendian``. ``DecodeError`` for unsupported encodings or short data."""
    try:
        enc = ImageEncoding(str(msg.encoding))
    except ValueError as exc:
        raise DecodeError(f"sensor_msgs/Image: unsupported encoding {msg.encoding!r}; supported: "
                          f"{[e.value for e in ImageEncoding]}") from exc
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    kind, ch = _LAYOUT[enc]
    item = np.dtype(kind).itemsize
    row = w * ch * item
    data = np.asarray(msg.data, np.uint8).reshape(-1)
    if h <= 0 or w <= 0:
        raise DecodeError(f"sensor_msgs/Image: empty image {w}x{h}")
    if step < row:
        raise DecodeError(f"sensor_msgs/Image {enc.value} {w}x{h}: step {step} is smaller than a row ({row} bytes)")
    if len(data) < step * (h - 1) + row:
        raise DecodeError(f"sensor_msgs/Image {enc.value} {w}x{h}: {len(data)} data bytes, need "
                          f"{step * (h - 1) + row} (truncated)")
    if len(data) < step * h:
        data = np.concatenate([data, np.zeros(step * h - len(data), np.uint8)])
    rows = data[:step * h].reshape(h, step)[:, :row]
    dt = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<") if item > 1 else np.dtype(kind)
    img = np.ascontiguousarray(rows).view(dt).reshape(h, w, ch)
    if enc is ImageEncoding.RGB8:
        return img.copy()
    if enc is ImageEncoding.BGR8:
        return img[:, :, ::-1].copy()
    if enc is ImageEncoding.MONO8:
        return np.repeat(img, 3, axis=2)
    depth = img[:, :, 0].astype(np.float32)
    if enc is ImageEncoding.DEPTH_MM:
        depth *= np.float32(1e-3)
    depth[~np.isfinite(depth)] = 0.0
    return depth


def preprocess_rgbd(rgb: np.ndarray, depth: np.ndarray | None = None,
                    out_wh: tuple[int, int] = defaults.FRONTEND_INPUT_WH, *,
                    depth_max_m: float = defaults.DEPTH_MAX_M) -> np.ndarray:
    """Front-end input ``float32 [C, H, W]``: RGB in [0, 1] (area-resized), plus depth (metres clipped to
    ``[0, depth_max_m]`` and divided by it, nearest-resized so no depths are invented) when given."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DecodeError(f"preprocess_rgbd: rgb must be [H, W, 3], got {rgb.shape}")
    ow, oh = int(out_wh[0]), int(out_wh[1])
    col = cv2.resize(rgb, (ow, oh), interpolation=cv2.INTER_AREA).astype(np.float32) / np.float32(255.0)
    chans = [col.transpose(2, 0, 1)]
    if depth is not None:
        if depth.ndim != 2:
            raise DecodeError(f"preprocess_rgbd: depth must be [H, W], got {depth.shape}")
        d = cv2.resize(depth.astype(np.float32), (ow, oh), interpolation=cv2.INTER_NEAREST)
        d = np.clip(np.nan_to_num(d, nan=0.0, posinf=0.0, neginf=0.0), 0.0, depth_max_m) / np.float32(depth_max_m)
        chans.append(d[None].astype(np.float32))
    return np.ascontiguousarray(np.concatenate(chans, axis=0), dtype=np.float32)


def encode_image(img: np.ndarray, encoding: ImageEncoding | str, *, stamp_ns: int = 0, frame_id: str = "",
                 typestore: Any = None, big_endian: bool = False, row_padding: int = 0) -> Any:
    """A ``sensor_msgs/Image`` message object for ``img`` (RGB uint8 [H, W, 3] for colour encodings, metres
    float32 [H, W] for depth: 16UC1 stores millimetres). For tests and synthetic data."""
    from hstnn_ros.bags import typestore as default_store  # noqa: PLC0415

    enc = ImageEncoding(encoding)
    T = (typestore or default_store()).types
    if enc is ImageEncoding.BGR8:
        arr = img[:, :, ::-1]
    elif enc is ImageEncoding.MONO8:
        arr = img[:, :, :1] if img.ndim == 3 else img[:, :, None]
    elif enc is ImageEncoding.DEPTH_MM:
        arr = np.round(np.asarray(img, np.float64) * 1000).clip(0, 65535).astype(np.uint16)[:, :, None]
    elif enc is ImageEncoding.DEPTH_M:
        arr = np.asarray(img, np.float32)[:, :, None]
    else:
        arr = img
    kind, _ = _LAYOUT[enc]
    arr = np.ascontiguousarray(arr).astype(np.dtype(kind).newbyteorder(">" if big_endian else "<"))
    h, w = arr.shape[:2]
    rows = arr.reshape(h, -1).view(np.uint8)
    if row_padding:
        rows = np.concatenate([rows, np.zeros((h, row_padding), np.uint8)], axis=1)
    stamp = T["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    header = T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)
    return T["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=enc.value,
                                      is_bigendian=int(big_endian), step=rows.shape[1],
                                      data=np.ascontiguousarray(rows).reshape(-1))
