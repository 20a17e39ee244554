"""Vectorised ray-cast renderer of the corridor world and the lighting environments.

Every pixel's ray is intersected analytically with the walls, floor, ceiling, end walls and the free-standing
objects (broadcast over rows x columns, no per-pixel Python), then all surfaces are sampled from the world's texture
atlas with one ``cv2.remap``. Distant pixels sample a low-passed atlas (a cheap mip level) so that texture aliasing
does not flicker into spurious events. Output: colour (sRGB), luminance, z-depth (m) and the hit point's x, which
the lighting model uses for lamps and cloud shadows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from hstnn_ros.datasets.synth.config import LightingConfig
from hstnn_ros.datasets.synth.world import CLOUD_FINE_PER_M, MARGIN_M, World

#: sRGB code -> linear intensity (0..1), simple 2.2 gamma.
SRGB_TO_LINEAR = ((np.arange(256, dtype=np.float32) / 255.0) ** 2.2).astype(np.float32)
_LAMP_SPACING_M = 2.5
#: Objects farther ahead than this are not drawn (they would be a few pixels wide; keeps rendering cheap).
_OBJECT_RANGE_M = 15.0


@dataclass(frozen=True)
class Pose:
    """Camera pose on the ground plane: ``x`` along the path, ``y`` lateral (left positive), ``yaw`` (rad)."""

    x: float
    y: float
    yaw: float


@dataclass(frozen=True)
class Rendered:
    """One rendered view. ``image`` is sRGB float32 [H, W, 3] (0..255), or linear luminance float32 [H, W] (0..1)
    for ``gray``; depth in metres."""

    image: np.ndarray
    depth_m: np.ndarray  #: float32 [H, W] z-depth along the optical axis
    x_hit: np.ndarray  #: float32 [H, W] world x of the surface seen by each pixel


class Renderer:
    """Renders a ``World`` from a ``Pose`` for one pinhole camera (``width`` x ``height``, horizontal FOV)."""

    def __init__(self, world: World, width: int, height: int, hfov_deg: float, cam_height_m: float) -> None:
        self.world = world
        self.width, self.height = width, height
        self.fx = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        cx, cy = (width - 1) / 2, (height - 1) / 2
        self.a = ((np.arange(width) - cx) / self.fx).astype(np.float64)  # right offset per column
        self.b = ((cy - np.arange(height)) / self.fx).astype(np.float32)  # up offset per row
        self.z = cam_height_m
        wc = world.config
        self.half_w, self.ceil_h = wc.width_m / 2, wc.height_m
        self.x_end_hi, self.x_end_lo = wc.path_length_m + MARGIN_M, -MARGIN_M
        # per-row floor/ceiling distance does not depend on the pose
        with np.errstate(divide="ignore"):
            self.t_fc = np.where(self.b < 0, -self.z / self.b,
                                 np.where(self.b > 0, (self.ceil_h - self.z) / self.b, np.inf)).astype(np.float32)
        self.is_floor = self.b < 0
        # luminance atlases already linearised, so the DVS path needs no per-pixel gamma
        self.gray = SRGB_TO_LINEAR[cv2.cvtColor(world.atlas, cv2.COLOR_RGB2GRAY)]
        self.gray_blur = SRGB_TO_LINEAR[cv2.cvtColor(world.atlas_blur, cv2.COLOR_RGB2GRAY)]

    def render(self, pose: Pose, gray: bool = False) -> Rendered:
        """Render colour (or linear luminance when ``gray``), depth and hit x from ``pose``."""
        w = self.world
        ppm = w.px_per_m
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        dx = (c + self.a * s).astype(np.float32)
        dy = (s - self.a * c).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_wall = np.where(dy > 1e-9, (self.half_w - pose.y) / dy,
                              np.where(dy < -1e-9, (-self.half_w - pose.y) / dy, np.inf)).astype(np.float32)
            t_end = np.where(dx > 1e-9, (self.x_end_hi - pose.x) / dx,
                             np.where(dx < -1e-9, (self.x_end_lo - pose.x) / dx, np.inf)).astype(np.float32)
        t_side = np.minimum(t_wall, t_end)  # [W]
        side_is_end = t_end < t_wall
        f32 = np.float32
        use_fc = self.t_fc[:, None] < t_side[None, :]  # [H, W]: floor/ceiling hit before the side surface
        t = np.minimum(self.t_fc[:, None], t_side[None, :])
        # atlas coordinates are affine in t per row/column: walls (row from height), floor/ceiling (row from y)
        dxp, dyp, bp = dx * f32(ppm), dy * f32(ppm), self.b * f32(ppm)
        mapx = t * dxp[None, :] + f32((pose.x - self.x_end_lo) * ppm)
        side_row = np.where(side_is_end, w.rows["end"], np.where(dy > 0, w.rows["left"], w.rows["right"]))
        side_a = (side_row + (self.ceil_h - self.z) * ppm).astype(f32)
        fc_a = (np.where(self.is_floor, w.rows["floor"], w.rows["ceiling"]) + (self.half_w - pose.y) * ppm).astype(f32)
        mapy = np.where(use_fc, fc_a[:, None] - t * dyp[None, :], side_a[None, :] - t * bp[:, None])
        ends = np.flatnonzero(side_is_end)
        if ends.size:  # end walls: the column comes from y, not x
            sub = np.s_[:, ends]
            mapx[sub] = np.where(use_fc[sub], mapx[sub], f32((self.half_w - pose.y) * ppm) - t[sub] * dyp[ends])
        xh = t * dx[None, :] + f32(pose.x)
        # free-standing objects ahead (they face -x, so only rays going forward see them); each covers a contiguous
        # block of columns (y on the plane is monotone in the column) and of rows, so work on views of that block
        ob = w.objects
        lo, hi = np.searchsorted(ob.x_m, [pose.x + 0.05, pose.x + _OBJECT_RANGE_M])
        fwd = dx > 1e-6
        for k in range(lo, hi):
            with np.errstate(divide="ignore"):
                t_o = (ob.x_m[k] - pose.x) / dx
            y_o = pose.y + t_o * dy
            cols = np.flatnonzero(fwd & (y_o >= ob.y0_m[k]) & (y_o <= ob.y1_m[k]))
            if cols.size == 0:
                continue
            c0, c1 = int(cols[0]), int(cols[-1]) + 1
            tc = t_o[c0:c1].astype(np.float32)
            t_near, top = float(tc.min()), float(ob.top_m[k])
            # rows whose ray can reach heights 0..top at distances >= t_near (b decreases with the row index)
            b_hi = (top - self.z) / t_near if top > self.z else (top - self.z) / float(tc.max())
            b_lo = -self.z / t_near
            r0 = int(np.searchsorted(-self.b, -b_hi, side="left"))
            r1 = int(np.searchsorted(-self.b, -b_lo, side="right"))
            if r1 <= r0:
                continue
            blk = np.s_[r0:r1, c0:c1]
            z_o = self.z + tc[None, :] * self.b[r0:r1, None]
            hit = (z_o >= 0) & (z_o <= top) & (tc[None, :] < t[blk])
            np.copyto(t[blk], np.broadcast_to(tc[None, :], hit.shape), where=hit)
            np.copyto(xh[blk], np.float32(ob.x_m[k]), where=hit)
            obj_x = (ob.atlas_col[k] + (ob.y1_m[k] - y_o[c0:c1]) * ppm).astype(np.float32)
            np.copyto(mapx[blk], np.broadcast_to(obj_x[None, :], hit.shape), where=hit)
            np.copyto(mapy[blk], w.rows["objects"] + (self.ceil_h - z_o) * np.float32(ppm), where=hit)
        mapx = mapx.astype(np.float32, copy=False)
        mapy = mapy.astype(np.float32, copy=False)
        far = np.clip((t * (ppm / self.fx) - 1.0) * 0.5, 0.0, 1.0)
        if not gray:
            far = far[..., None]
        src, src_b = (self.gray, self.gray_blur) if gray else (w.atlas, w.atlas_blur)
        near_img = cv2.remap(src, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        far_img = cv2.remap(src_b, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        img = near_img + far * (far_img.astype(np.float32, copy=False) - near_img)
        return Rendered(image=img.astype(np.float32, copy=False), depth_m=t.astype(np.float32, copy=False),
                        x_hit=xh.astype(np.float32, copy=False))


def illumination(world: World, light: LightingConfig, x_hit: np.ndarray, t_s: float) -> np.ndarray:
    """Per-pixel illumination factor (float32, same shape as ``x_hit``) of environment ``light`` at time ``t_s``:
    global gain with slow drift, ceiling lamps along x, and cloud shadows moving along x (env2)."""
    g = light.gain
    if light.drift_amp:
        ph = 2 * math.pi * (t_s + light.drift_phase_s) / light.drift_period_s
        g *= 1.0 + light.drift_amp * (0.7 * math.sin(ph) + 0.3 * math.sin(2.7 * ph + 1.3))
    f = np.full(x_hit.shape, g, np.float32)
    if light.ceiling_lights:
        f *= (1.0 - light.ceiling_lights) + light.ceiling_lights * (
            0.5 + 0.5 * np.cos(x_hit * np.float32(2 * math.pi / _LAMP_SPACING_M)))
    if light.cloud_depth:
        # nearest sample of the finely resampled, periodic cloud profile: one gather per pixel
        n = world.cloud_fine.shape[0]
        shift = np.float32(light.cloud_speed_mps * t_s - light.cloud_offset_m)
        idx = ((x_hit - shift) * np.float32(CLOUD_FINE_PER_M)).astype(np.int32)
        f *= 1.0 - light.cloud_depth * world.cloud_fine[idx % n]
    return f
