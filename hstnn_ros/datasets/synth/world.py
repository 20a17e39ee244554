"""Procedurally generated, seeded corridor/street world with distinct, repeatable places.

The world is a straight open path along +x from 0 to ``path_length_m``; walls at y = +-width/2, floor z = 0,
ceiling z = height. Each place (equal-length segment) gets its own palette, wall pattern, floor tiles, posters and
free-standing objects (upright rectangles facing the camera at several depths). All surfaces are stored in one RGB
texture atlas so that the renderer samples every pixel with a single ``cv2.remap``.
"""

from __future__ import annotations

import colorsys
import functools
import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from hstnn_ros.datasets.synth.config import WorldConfig

log = logging.getLogger(__name__)

#: Extra corridor beyond both ends of the path (metres), closed by end walls.
MARGIN_M = 6.0
#: Samples per metre of the resampled cloud profile used for shadow lookups.
CLOUD_FINE_PER_M = 20
_MAX_ATLAS_COLS = 32000  # cv2.remap maps are limited to 32767 pixels per side


@dataclass(frozen=True)
class WorldObjects:
    """Free-standing upright rectangles facing -x (towards the camera), columnar arrays of length K."""

    x_m: np.ndarray  #: float64 [K] position along the path
    y0_m: np.ndarray  #: float64 [K] lateral extent (left edge is y1, right edge y0; y to the left)
    y1_m: np.ndarray
    top_m: np.ndarray  #: float64 [K] height of the top edge
    atlas_col: np.ndarray  #: float64 [K] first atlas column of the object's texture patch


@dataclass(frozen=True)
class World:
    """Geometry and textures of one route; identical for every traversal and lighting environment."""

    config: WorldConfig
    seed: int
    atlas: np.ndarray  #: uint8 [rows, cols, 3] sRGB texture atlas
    atlas_blur: np.ndarray  #: the atlas low-passed, sampled for distant surfaces (cheap mip level)
    px_per_m: float
    rows: dict[str, int]  #: first atlas row of each surface: left, right, floor, ceiling, objects, end
    objects: WorldObjects
    cloud: np.ndarray  #: float32 [n] periodic 1-D cloud-cover profile (0..1) along x, 0.5 m per sample

    @functools.cached_property
    def cloud_fine(self) -> np.ndarray:
        """The cloud profile linearly resampled to ``CLOUD_FINE_PER_M`` samples per metre (still periodic)."""
        n = self.cloud.shape[0]
        k = CLOUD_FINE_PER_M // 2
        u = np.arange(n * k) / k
        return np.interp(u, np.arange(n + 1), np.append(self.cloud, self.cloud[0])).astype(np.float32)

    @property
    def length_m(self) -> float:
        return self.config.path_length_m

    def place_of(self, s_m: np.ndarray | float) -> np.ndarray:
        """Ground-truth place of a distance along the path: ``num_places`` equal-length bins, clipped."""
        n = self.config.num_places
        s = np.asarray(s_m, dtype=np.float64)
        return np.clip((s / self.config.path_length_m * n).astype(np.int64), 0, n - 1)


def _palette(rng: np.random.Generator) -> np.ndarray:
    """Three related colours (uint8 [3,3]) with a place-specific hue."""
    h = rng.random()
    out = []
    for dh, s, v in ((0.0, 0.55, 0.85), (0.08, 0.7, 0.45), (0.5, 0.6, 0.7)):
        r, g, b = colorsys.hsv_to_rgb((h + dh + rng.normal(0, 0.03)) % 1.0, s * rng.uniform(0.6, 1.0),
                                      v * rng.uniform(0.7, 1.1))
        out.append([r, g, b])
    return np.clip(np.array(out) * 255, 0, 255).astype(np.uint8)


def _wall_pattern(rng: np.random.Generator, h: int, w: int, pal: np.ndarray, ppm: float) -> np.ndarray:
    """A place-specific wall texture (uint8 [h, w, 3]): one of bricks, stripes, blobs, tiles, panels."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = pal[0]
    kind = rng.integers(5)
    if kind == 0:  # bricks
        bh, bw = int(rng.uniform(0.12, 0.25) * ppm), int(rng.uniform(0.3, 0.6) * ppm)
        for r, y in enumerate(range(0, h, bh)):
            off = (bw // 2) * (r % 2)
            for x in range(-off, w, bw):
                c = pal[1] if rng.random() < 0.5 else pal[0]
                cv2.rectangle(img, (x + 1, y + 1), (x + bw - 2, y + bh - 2), tuple(int(v) for v in c), -1)
            cv2.line(img, (0, y), (w, y), tuple(int(v) for v in pal[2] // 2), 1)
    elif kind == 1:  # vertical stripes of varying width
        x = 0
        while x < w:
            sw = int(rng.uniform(0.05, 0.4) * ppm) + 1
            c = pal[rng.integers(3)]
            img[:, x:x + sw] = c
            x += sw
    elif kind == 2:  # blobs
        for _ in range(int(w * h / (ppm * ppm) * 6)):
            c = pal[rng.integers(3)]
            cv2.ellipse(img, (int(rng.integers(w)), int(rng.integers(h))),
                        (int(rng.uniform(0.03, 0.2) * ppm), int(rng.uniform(0.03, 0.2) * ppm)),
                        float(rng.uniform(0, 180)), 0, 360, tuple(int(v) for v in c), -1)
    elif kind == 3:  # tiles with a dado line
        ts = int(rng.uniform(0.15, 0.35) * ppm)
        for y in range(0, h, ts):
            for x in range(0, w, ts):
                c = pal[0] if (x // ts + y // ts) % 2 else pal[1]
                img[y:y + ts, x:x + ts] = c
        yd = int(h * rng.uniform(0.4, 0.7))
        img[yd:yd + max(2, int(0.05 * ppm))] = pal[2]
    else:  # panels with frames
        pw = int(rng.uniform(0.6, 1.2) * ppm)
        for x in range(0, w, pw):
            cv2.rectangle(img, (x + 3, int(0.1 * h)), (x + pw - 3, int(0.9 * h)), tuple(int(v) for v in pal[1]), 3)
            cv2.circle(img, (x + pw // 2, h // 2), max(2, pw // 6), tuple(int(v) for v in pal[2]), -1)
    # low-contrast grain so that no surface is perfectly flat (real walls never are)
    grain = cv2.resize(rng.normal(0, 6, (h // 4 + 1, w // 4 + 1)).astype(np.float32), (w, h))[:, :, None]
    return np.clip(img.astype(np.float32) + grain, 0, 255).astype(np.uint8)


def _poster_rect(rng: np.random.Generator, w: int, wall_h: int, ppm: float) -> tuple[int, int, int, int]:
    """Where a wall poster goes: ``(x0, y0, width, height)`` in pixels of a wall texture ``w`` wide."""
    pw, ph = int(rng.uniform(0.4, 1.2) * ppm), int(rng.uniform(0.4, 1.0) * ppm)
    return int(rng.integers(0, max(1, w - pw))), int(rng.uniform(0.2, 0.5) * wall_h), pw, ph


def _poster(img: np.ndarray, rng: np.random.Generator, rect: tuple[int, int, int, int]) -> None:
    """Paint a landmark poster (random coloured shapes on a frame) into ``img`` in place."""
    x0, y0, pw, ph = rect
    h, w = img.shape[:2]
    x1, y1 = min(w, x0 + pw), min(h, y0 + ph)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return
    sub = img[y0:y1, x0:x1]
    sub[:] = rng.integers(0, 256, 3, dtype=np.uint8)
    for _ in range(int(rng.integers(3, 9))):
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            p = rng.integers(0, [x1 - x0, y1 - y0], size=(2, 2))
            cv2.rectangle(sub, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), c, -1)
        else:
            cv2.circle(sub, (int(rng.integers(x1 - x0)), int(rng.integers(y1 - y0))),
                       int(rng.integers(2, max(3, min(x1 - x0, y1 - y0) // 2))), c, -1)
    cv2.rectangle(sub, (0, 0), (x1 - x0 - 1, y1 - y0 - 1), (20, 20, 20), 2)


def alias_sources(config: WorldConfig, seed: int) -> np.ndarray:
    """For every place, the place whose look it has: itself, or (for ``round(alias_fraction * n)`` places chosen by
    the seed) another place of the route that is not aliased itself, at least 3 places away."""
    n = config.num_places
    src = np.arange(n)
    k = round(config.alias_fraction * n)
    if k == 0 or n < 5:
        return src
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xA11A5]))
    aliased = rng.choice(n, size=k, replace=False)
    originals = np.setdiff1d(np.arange(n), aliased)
    for a in aliased:
        far = originals[np.abs(originals - a) >= 3]
        src[a] = rng.choice(far if len(far) else originals)
    return src


def build_world(config: WorldConfig, seed: int) -> World:
    """Generate the world of ``seed`` (deterministic: same config and seed -> identical arrays)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x57A7]))
    total_m = config.path_length_m + 2 * MARGIN_M
    ppm = min(config.px_per_m, _MAX_ATLAS_COLS / total_m)
    cols = int(np.ceil(total_m * ppm))
    wall_h = int(np.ceil(config.height_m * ppm))
    floor_h = int(np.ceil(config.width_m * ppm))
    obj_h = wall_h
    rows = {"left": 0, "right": wall_h, "floor": 2 * wall_h, "ceiling": 2 * wall_h + floor_h,
            "objects": 2 * wall_h + 2 * floor_h, "end": 3 * wall_h + 2 * floor_h}
    atlas = np.zeros((4 * wall_h + 2 * floor_h, cols, 3), np.uint8)
    n = config.num_places
    seg_m = config.path_length_m / n
    # segment boundaries in atlas columns; the margins continue the first/last place
    bounds = [0, *[int((MARGIN_M + k * seg_m) * ppm) for k in range(1, n)], cols]
    obj_x, obj_y0, obj_y1, obj_top, obj_col = [], [], [], [], []
    obj_cursor = 0
    look = alias_sources(config, seed)
    for k in range(n):
        prng = np.random.default_rng(np.random.SeedSequence([seed, 0x9ACE, k]))
        lrng, detail = prng, 1.0  # a place of its own: one stream for look and details (as without aliasing)
        if look[k] != k:  # the look (palette, wall pattern, floor) of the place it aliases; fewer details of its own
            lrng = np.random.default_rng(np.random.SeedSequence([seed, 0x9ACE, int(look[k])]))
            prng = np.random.default_rng(np.random.SeedSequence([seed, 0xDE7A, k]))
            detail = config.alias_detail
        c0, c1 = bounds[k], bounds[k + 1]
        w = c1 - c0
        pal = _palette(lrng)
        for side in ("left", "right"):
            r0 = rows[side]
            tex = _wall_pattern(lrng, wall_h, w, pal, ppm)
            for _ in range(int(lrng.poisson(config.posters_per_place / 2))):
                _poster(tex, lrng, _poster_rect(lrng, w, wall_h, ppm))
            if lrng is not prng:  # an aliased place: the same wall and posters, and a few details of its own
                for _ in range(int(prng.poisson(detail * config.posters_per_place / 2))):
                    _poster(tex, prng, _poster_rect(prng, w, wall_h, ppm))
            atlas[r0:r0 + wall_h, c0:c1] = tex
        # floor: tiles in a second palette colour, ceiling: panels with lamps
        fl = np.empty((floor_h, w, 3), np.uint8)
        ts = int(lrng.uniform(0.3, 0.6) * ppm)
        yy, xx = np.mgrid[0:floor_h, 0:w]
        checker = ((yy // ts + (xx + c0) // ts) % 2).astype(bool)
        fl[:] = (pal[1].astype(np.float32) * 0.6).astype(np.uint8)
        fl[checker] = (pal[0].astype(np.float32) * 0.5).astype(np.uint8)
        atlas[rows["floor"]:rows["floor"] + floor_h, c0:c1] = fl
        ce = np.full((floor_h, w, 3), 200, np.uint8)
        ce[:, (np.arange(w) + c0) % int(0.6 * ppm) < 2] = 140
        atlas[rows["ceiling"]:rows["ceiling"] + floor_h, c0:c1] = ce
        # free-standing objects: a texture patch each in the object strip
        for _ in range(int(prng.poisson(detail * config.objects_per_place))):
            ow = prng.uniform(0.3, 0.9)
            top = prng.uniform(0.6, min(2.4, config.height_m - 0.2))
            side_sign = 1 if prng.random() < 0.5 else -1
            y_edge = side_sign * (config.width_m / 2 - prng.uniform(0.0, 0.15))
            y_in = y_edge - side_sign * ow
            ow_px = int(np.ceil(ow * ppm)) + 1
            if obj_cursor + ow_px > cols:
                log.debug("object atlas full; place %d gets fewer objects", k)
                break
            patch = _wall_pattern(prng, obj_h, ow_px, _palette(prng), ppm)
            _poster(patch, prng, (2, int(obj_h * (1 - top / config.height_m)) + 2, ow_px - 4, int(0.3 * ppm)))
            atlas[rows["objects"]:rows["objects"] + obj_h, obj_cursor:obj_cursor + ow_px] = patch
            obj_x.append(prng.uniform(k * seg_m, (k + 1) * seg_m))
            obj_y0.append(min(y_edge, y_in))
            obj_y1.append(max(y_edge, y_in))
            obj_top.append(top)
            obj_col.append(obj_cursor)
            obj_cursor += ow_px
    # end walls (both ends share one texture strip of width = corridor width)
    end = _wall_pattern(rng, wall_h, floor_h, _palette(rng), ppm)
    atlas[rows["end"]:rows["end"] + wall_h, :floor_h] = end
    order = np.argsort(np.asarray(obj_x), kind="stable")
    objects = WorldObjects(*(np.asarray(a, np.float64)[order] for a in (obj_x, obj_y0, obj_y1, obj_top, obj_col)))
    cloud_n = int(np.ceil(total_m * 2)) + 64
    cloud = gaussian_filter1d(rng.random(cloud_n), sigma=3.0, mode="wrap")
    cloud = np.clip((cloud - cloud.mean()) * 8 + 0.5, 0, 1)
    # painted surfaces are far from black/white: compress contrast towards mid-grey (keeps event rates realistic)
    atlas = cv2.addWeighted(atlas, config.texture_contrast, np.full_like(atlas, 128), 1 - config.texture_contrast, 0)
    sharp = cv2.GaussianBlur(atlas, (0, 0), sigmaX=0.7)
    blur = cv2.GaussianBlur(atlas, (0, 0), sigmaX=3.0)
    return World(config=config, seed=seed, atlas=sharp, atlas_blur=blur, px_per_m=ppm, rows=rows,
                 objects=objects, cloud=cloud.astype(np.float32))
