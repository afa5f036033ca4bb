"""A procedural driving-scene simulator: forward-camera street scenes with pixel-exact CamVid labels.

Everything is vectorised numpy. A scene is a straight street seen by a pinhole camera: a ground
plane (road with lane markings, kerbs and pavements), facades along both sides, a far block,
trees, poles, street lights, signs, fences, cars, pedestrians and bicyclists at plausible metric
size and position, painted far to near with a depth test. Colour and label are written by the
same masks, so labels are exact. Domain randomisation: materials and textures, colours, lighting
and shadows, season (crowns in leaf, sparse or bare), time of day, weather (fog, rain, sensor noise,
blur), camera height, pitch, yaw and field of view. ``DrivingSimulator(seed).frame(i)`` is deterministic in ``(seed, i)``.

    sim = DrivingSimulator(height=360, width=480, seed=0)
    rgb, label = sim.frame(0)          # (360, 480, 3) uint8, (360, 480) uint8 CamVid ids
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schema import CAMVID_CLASSES

SIM_VERSION = 3  # bumped whenever the same (seed, index) renders a different frame; keys frame caches
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
_TILE = 256


@dataclass
class SimConfig:
    """Ranges the simulator draws from (domain randomisation); ``randomize=False`` gives clean daylight."""

    camera_height: tuple[float, float] = (1.1, 1.9)  # metres
    pitch_deg: tuple[float, float] = (-4.0, 5.0)  # positive tilts the camera down (horizon moves up)
    yaw_deg: tuple[float, float] = (-7.0, 7.0)
    fov_deg: tuple[float, float] = (55.0, 75.0)
    lanes: tuple[int, int] = (1, 3)  # lanes per direction
    cars: tuple[int, int] = (2, 12)
    pedestrians: tuple[int, int] = (0, 8)
    bicyclists: tuple[int, int] = (0, 3)
    trees: tuple[int, int] = (0, 14)
    seasons: tuple[float, float, float] = (0.4, 0.3, 0.3)  # chance of crowns in leaf, sparse, bare
    fog: float = 0.25  # probability of fog
    rain: float = 0.2
    night: float = 0.1
    randomize: bool = True


def _value_noise(rng: np.random.Generator, size: int, octaves: int = 5) -> np.ndarray:
    """Tileable fractal noise in [0, 1], ``(size, size)`` float32."""
    out = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        n = 4 * 2 ** o
        grid = rng.random((n, n)).astype(np.float32)
        idx = np.arange(size) * n / size
        i0 = np.floor(idx).astype(int)
        t = (idx - i0).astype(np.float32)
        t = t * t * (3 - 2 * t)
        i1 = (i0 + 1) % n
        rows = grid[i0] * (1 - t)[:, None] + grid[i1] * t[:, None]
        layer = rows[:, i0] * (1 - t)[None] + rows[:, i1] * t[None]
        out += amp * layer
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / max(1e-6, float(out.max() - out.min()))


class DrivingSimulator:
    """Renders random street scenes with CamVid labels; ``frame(i)`` is deterministic in ``(seed, i)``."""

    classes = CAMVID_CLASSES

    def __init__(self, height: int = 360, width: int = 480, seed: int = 0, config: SimConfig | None = None):
        self.height, self.width, self.seed = int(height), int(width), int(seed)
        self.config = config or SimConfig()
        rng = np.random.default_rng([self.seed, 7919])
        self._noise = np.stack([_value_noise(rng, _TILE, octaves=o) for o in (3, 4, 5, 6, 6, 7)])
        self._yy, self._xx = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        self._gauss = rng.standard_normal((2 * self.height, 2 * self.width)).astype(np.float32)
        tiles = -(-2 * max(self.height, self.width) // _TILE)
        self._smooth = np.tile(self._noise[4], (tiles, tiles))[:2 * self.height, :2 * self.width]
        dx = (self._xx[0] - self.width / 2) / (self.width / 2)
        dy = (self._yy[:, 0] - self.height / 2) / (self.height / 2)
        self._radius2 = ((dy[:, None] ** 2 + dx[None] ** 2) / 2).astype(np.float32)

    # --- public -------------------------------------------------------------------------------
    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """One scene: RGB ``(H, W, 3)`` uint8 and CamVid ids ``(H, W)`` uint8."""
        rng = np.random.default_rng([self.seed, int(index)])
        return _Scene(self, rng).render()

    def frames(self, n: int, start: int = 0):
        """``n`` consecutive frames as arrays ``(n, H, W, 3)`` and ``(n, H, W)``."""
        rgbs, labels = zip(*(self.frame(i) for i in range(start, start + n)))
        return np.stack(rgbs), np.stack(labels)


class _Scene:
    """One frame's random world and its rendering (colour, label and depth buffers)."""

    def __init__(self, sim: DrivingSimulator, rng: np.random.Generator):
        self.sim, self.rng, self.cfg = sim, rng, sim.config
        H, W = sim.height, sim.width
        self.H, self.W = H, W
        c, r = self.cfg, rng
        u = (lambda lo, hi: float(r.uniform(lo, hi))) if c.randomize else (lambda lo, hi: (lo + hi) / 2)
        self.cam_h = u(*c.camera_height)
        fov = np.deg2rad(u(*c.fov_deg))
        self.f = (W / 2) / np.tan(fov / 2)
        self.cx = W / 2 + (r.normal(0, W * 0.01) if c.randomize else 0.0)
        self.horizon = H * 0.45 - self.f * np.tan(np.deg2rad(u(*c.pitch_deg)))
        self.yaw = np.tan(np.deg2rad(u(*c.yaw_deg)))
        self.rgb = np.empty((H, W, 3), np.float32)
        self.label = np.empty((H, W), np.uint8)
        self.depth = np.full((H, W), np.inf, np.float32)
        # the street
        self.lanes = int(r.integers(c.lanes[0], c.lanes[1] + 1))
        self.lane_w = float(r.uniform(2.8, 3.6))
        self.one_way = r.random() < 0.25
        half = self.lane_w * self.lanes * (1 if self.one_way else 2) / 2
        self.ego_x = -half + self.lane_w * (0.5 + (int(r.integers(0, self.lanes)) if self.one_way else self.lanes))
        if r.random() < 0.5 and not self.one_way:
            self.ego_x = self.lane_w * (self.lanes - 0.5)  # in the rightmost lane (right-hand traffic)
        self.ego_x += float(r.normal(0, 0.3))
        self.road_l, self.road_r = -half - self.ego_x, half - self.ego_x  # road edges relative to the camera
        self.pave_l, self.pave_r = float(r.uniform(1.5, 5.0)), float(r.uniform(1.5, 5.0))
        self.far = float(r.uniform(60, 220))  # depth of the block that closes the street
        self.palette()

    # --- appearance ---------------------------------------------------------------------------
    def palette(self):
        r, rand = self.rng, self.cfg.randomize
        hour = str(r.choice(["day", "day", "overcast", "dusk", "dawn"]))
        if rand and r.random() < self.cfg.night:
            hour = "night"
        self.hour = hour if rand else "day"
        light = {"day": (1.0, 1.0, 1.0), "overcast": (0.85, 0.88, 0.92), "dusk": (0.85, 0.65, 0.5),
                 "dawn": (0.9, 0.78, 0.72), "night": (0.25, 0.27, 0.38)}[self.hour]
        self.light = np.array(light, np.float32) * (float(r.uniform(0.8, 1.2)) if rand else 1.0)
        skies = {"day": ((110, 160, 225), (200, 220, 240)), "overcast": ((170, 175, 185), (215, 215, 220)),
                 "dusk": ((80, 90, 150), (250, 170, 110)), "dawn": ((120, 140, 200), (245, 200, 170)),
                 "night": ((10, 12, 30), (40, 40, 60))}[self.hour]
        jitter = (lambda: r.normal(0, 12, 3)) if rand else (lambda: np.zeros(3))
        self.sky_top = np.clip(np.array(skies[0]) + jitter(), 0, 255).astype(np.float32)
        self.sky_bottom = np.clip(np.array(skies[1]) + jitter(), 0, 255).astype(np.float32)
        grey = float(r.uniform(60, 125)) if rand else 90.0
        self.road_col = np.array([grey, grey, grey * float(r.uniform(0.95, 1.1))], np.float32) + jitter() * 0.4
        p = float(r.uniform(110, 190)) if rand else 150.0
        self.pave_col = np.array([p, p * float(r.uniform(0.85, 1.0)), p * float(r.uniform(0.75, 1.0))], np.float32)
        self.marking = np.array([235, 235, 225] if r.random() < 0.8 else [230, 200, 60], np.float32)
        self.fog = rand and r.random() < self.cfg.fog
        self.rain = rand and r.random() < self.cfg.rain
        self.fog_dist = float(r.uniform(25, 120))
        self.fog_col = np.clip(self.sky_bottom * 0.5 + 110, 0, 255)
        # season: share of a crown in leaf (1 summer; below 0.7 sparse, near 0 bare winter branches)
        self.foliage = float(r.choice([1.0, r.uniform(0.3, 0.7), r.uniform(0.0, 0.3)], p=list(self.cfg.seasons))) \
            if rand else 1.0

    def _facade_colour(self):
        r = self.rng
        kind = r.integers(0, 4)
        if kind == 0:  # brick
            return np.array([r.uniform(120, 180), r.uniform(55, 95), r.uniform(40, 75)], np.float32)
        if kind == 1:  # concrete / stone
            v = r.uniform(110, 200)
            return np.array([v, v * r.uniform(0.92, 1.0), v * r.uniform(0.85, 1.0)], np.float32)
        if kind == 2:  # painted
            return r.uniform(90, 230, 3).astype(np.float32)
        v = r.uniform(50, 110)  # dark
        return np.array([v, v, v * r.uniform(0.9, 1.2)], np.float32)

    def _tex(self, k: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Texture ``k`` sampled at continuous coordinates (in texels)."""
        return self.sim._noise[k][v.astype(np.int32) & (_TILE - 1), u.astype(np.int32) & (_TILE - 1)]

    def _screen(self, h0: int, h1: int, w0: int, w1: int, smooth: bool = False) -> np.ndarray:
        """A random window of precomputed screen-space noise (Gaussian, or smooth in [0, 1])."""
        field = self.sim._smooth if smooth else self.sim._gauss
        oy, ox = self.rng.integers(0, self.H), self.rng.integers(0, self.W)
        return field[oy + h0:oy + h1, ox + w0:ox + w1]

    # --- geometry helpers ---------------------------------------------------------------------
    def proj_x(self, X, Z):
        return self.cx + self.f * (np.asarray(X) + self.yaw * np.asarray(Z)) / Z

    def proj_y(self, Y, Z):
        """Image row of a point ``Y`` metres above the ground at depth ``Z``."""
        return self.horizon + self.f * (self.cam_h - np.asarray(Y)) / Z

    def _box(self, x0, x1, y0, y1):
        """Clip a box to the image; ``None`` when empty. Returns integer slices and the grids."""
        xa, xb = max(0, int(np.floor(x0))), min(self.W, int(np.ceil(x1)) + 1)
        ya, yb = max(0, int(np.floor(y0))), min(self.H, int(np.ceil(y1)) + 1)
        if xa >= xb or ya >= yb:
            return None
        return slice(ya, yb), slice(xa, xb)

    def paint(self, sl, mask, colour, label, z):
        """Write ``colour`` (RGB or per-pixel ``(h, w, 3)``) and ``label`` where ``mask`` and nearer than the depth buffer."""
        ys, xs = sl
        mask = mask & (self.depth[ys, xs] > z)
        if not mask.any():
            return
        rgb = self.rgb[ys, xs]
        if np.ndim(colour) == 1:
            rgb[mask] = colour
        else:
            rgb[mask] = colour[mask]
        self.label[ys, xs][mask] = label
        self.depth[ys, xs][mask] = z if np.ndim(z) == 0 else z[mask]

    # --- layers -------------------------------------------------------------------------------
    def render(self):
        self.sky()
        self.ground()
        self.facades()
        self.objects()
        self.weather_and_camera()
        return self.out_rgb, self.label

    def sky(self):
        hb = int(np.clip(np.ceil(self.horizon) + 2, 1, self.H))  # the ground covers everything below
        t = np.clip(self.sim._yy[:hb, :1] / max(1.0, self.horizon), 0, 1)
        rows = self.sky_top * (1 - t) + self.sky_bottom * t  # (hb, 3)
        self.rgb[:hb] = rows[:, None, :]
        if self.hour != "night":
            clouds = self._screen(0, hb, 0, self.W, smooth=True)
            cover = float(self.rng.uniform(0.2, 0.9))
            amount = np.clip((clouds - (1 - cover)) * 2.5, 0, 1) * (1 - t * 0.5)
            white = np.array([235, 235, 240], np.float32) * (0.75 if self.hour == "overcast" else 1.0)
            self.rgb[:hb] += (white - self.rgb[:hb]) * amount[..., None]
        self.label[:] = SKY

    def ground(self):
        """Road, markings and pavements on the ground plane; material ids then one colour lookup."""
        r = self.rng
        y0 = int(max(0, np.floor(self.horizon) + 1))
        if y0 >= self.H:
            return
        Z1 = (self.f * self.cam_h / np.maximum(self.sim._yy[y0:, :1] - self.horizon, 0.5)).astype(np.float32)
        Z = np.broadcast_to(Z1, (self.H - y0, self.W))
        X = (self.sim._xx[y0:] - self.cx) * (Z1 / self.f) - self.yaw * Z1
        road = (X > self.road_l) & (X < self.road_r)
        # materials: 0 road, 1 marking, 2 pavement, 3 kerb
        mat = np.where(road, 0, 2).astype(np.uint8)
        w = self.lane_w
        n_lines = self.lanes * (1 if self.one_way else 2)
        dash = (np.floor(Z1 / float(r.uniform(3, 6))) % 2) == 0
        lw = float(r.uniform(0.1, 0.16))
        offset = X - self.road_l
        marks = np.zeros(X.shape, bool)
        for k in range(1, n_lines):
            solid = (not self.one_way) and k == self.lanes and r.random() < 0.5
            near = np.abs(offset - k * w) < lw
            marks |= near if solid else (near & dash)
        if r.random() < 0.7:
            marks |= (np.abs(offset - 0.35) < lw * 0.8) | (np.abs(X - (self.road_r - 0.35)) < lw * 0.8)
        if r.random() < 0.25:  # zebra crossing
            zc = float(r.uniform(8, 30))
            marks |= ((Z1 > zc) & (Z1 < zc + 4)) & ((np.floor(offset / 0.6) % 2) == 0)
        mat[marks & road] = 1
        kerb = ~road & ((np.abs(X - self.road_l) < 0.2) | (np.abs(X - self.road_r) < 0.2))
        mat[kerb] = 3
        # shading: perspective-correct grain, pavement joints, patches, shadows
        grain = self._tex(1, X * 40, Z * 40)
        shade = 0.8 + 0.4 * grain
        slab = float(r.uniform(0.4, 0.8))
        joints = (mat == 2) & ((np.mod(Z1, slab * 1.5) < 0.05) | (np.mod(X, slab) < 0.03))
        shade[joints] *= 0.8
        patches = road & (self._tex(2, X * 4 + 100, Z * 1.5) > float(r.uniform(0.6, 0.85)))
        shade[patches] *= float(r.uniform(0.7, 0.95))
        worn = (mat == 1) & (grain < 0.25)
        mat[worn] = 0
        if self.hour not in ("night", "overcast") and r.random() < 0.7:
            side = 1 if r.random() < 0.5 else -1
            edge = float(r.uniform(-4, 4)) + side * self._shadow_wave(Z1)
            shade[(X - edge) * side > 0] *= float(r.uniform(0.45, 0.7))
        lut = np.stack([self.road_col, self.marking, self.pave_col, self.pave_col * 1.1]) * self.light
        self.rgb[y0:] = lut[mat] * shade[..., None]
        self.label[y0:] = np.where(road, ROAD, PAVEMENT)
        self.depth[y0:] = Z

    def _shadow_wave(self, Z):
        return 3 * np.sin(Z / float(self.rng.uniform(6, 20))) * (np.sin(Z / 7.0) > 0)

    def facades(self):
        r = self.rng
        for side in (-1, 1):
            edge = (self.road_l - self.pave_l) if side < 0 else (self.road_r + self.pave_r)
            segs, z = [], float(r.uniform(-5, 8))
            while z < self.far:
                length = float(r.uniform(8, 40))
                if r.random() < 0.15:  # a gap (side street, park)
                    z += length * 0.6
                    continue
                height = float(r.uniform(5, 30))
                segs.append((z, z + length, height, edge + side * float(r.uniform(0, 1.0)), self._facade_colour(),
                             float(r.uniform(1.2, 3.0)), float(r.uniform(2.8, 3.6)), int(r.integers(0, 6))))
                z += length
            self._wall_side(side, segs)
        self._far_block()

    def _wall_side(self, side, segs):
        """Facades on one side: vertical planes parallel to the street, one column at a time."""
        if not segs:
            return
        xs = self.sim._xx[0]
        Xw = np.array([s[3] for s in segs], np.float32)
        # per column and segment: depth where the column meets that segment's plane
        denom = (xs[:, None] - self.cx) / self.f - self.yaw
        with np.errstate(divide="ignore", invalid="ignore"):
            Zc = Xw[None, :] / denom
        z0 = np.array([s[0] for s in segs], np.float32)
        z1 = np.array([s[1] for s in segs], np.float32)
        inside = (Zc > np.maximum(z0, 0.5)[None]) & (Zc < z1[None])
        Zc = np.where(inside, Zc, np.inf)
        k = np.argmin(Zc, axis=1)
        Zcol = Zc[np.arange(len(xs)), k]
        cols = np.isfinite(Zcol)
        if not cols.any():
            return
        xa, xb = np.flatnonzero(cols)[[0, -1]]
        cs = slice(xa, xb + 1)
        Zcol, k, seen = Zcol[cs], k[cs], cols[cs]
        Zcol = np.where(seen, Zcol, 1e4).astype(np.float32)  # columns in a gap: masked out below
        heights = np.array([s[2] for s in segs], np.float32)[k]
        top = self.proj_y(heights, Zcol)
        bottom = self.proj_y(0.0, Zcol)
        yy = self.sim._yy[:, cs]
        mask = (yy >= top[None]) & (yy < bottom[None]) & seen[None]
        # facade coordinates: along the street (metres, per column) and height above the ground
        hgt = self.cam_h - (yy - self.horizon) * (Zcol / self.f)[None]
        base = np.stack([s[4] for s in segs])[k]  # (w, 3)
        win_w = np.array([s[5] for s in segs], np.float32)[k]
        floor_h = np.array([s[6] for s in segs], np.float32)[k][None]
        style = np.array([s[7] for s in segs])[k]
        fx = np.mod(Zcol / win_w, 1.0)
        col_shade = 0.85 + 0.3 * self._tex(5, Zcol * 30 + k * 37, k * 11.0)
        shade = col_shade[None] * (1 + 0.06 * self._screen(0, self.H, xa, xb + 1))
        fy = np.mod(hgt / floor_h, 1.0)
        win_col = ((fx > 0.2) & (fx < 0.8) & (style > 0))[None]
        window = win_col & (fy > 0.3) & (fy < 0.8) & (hgt > 2.5)
        shop = ((style >= 4) & (fx > 0.05) & (fx < 0.95))[None] & (hgt < 3.0) & (hgt > 0.3)
        col = base[None] * shade[..., None]
        glass_v = 40 + 60 * self._tex(2, np.broadcast_to(Zcol * 8, hgt.shape), hgt * 8)
        if self.hour == "night":
            glass_v = glass_v + 150 * (self._tex(3, np.floor(Zcol / win_w)[None] * 9 + 0 * hgt,
                                                 np.floor(hgt / floor_h) * 9) > 0.6)
        glass = np.stack([glass_v, glass_v * 1.05, glass_v * 1.15], -1)
        col = np.where(window[..., None], glass, col)
        col[shop] = col[shop] * 0.4 + 30
        col *= self.light * (0.85 if side > 0 else 1.0)
        self.paint((slice(0, self.H), cs), mask, col, BUILDING, np.broadcast_to(Zcol[None], yy.shape))

    def _far_block(self):
        r = self.rng
        Z = self.far
        x0 = self.proj_x(self.road_l - self.pave_l - 2, Z)
        x1 = self.proj_x(self.road_r + self.pave_r + 2, Z)
        h = float(r.uniform(6, 40))
        y0, y1 = self.proj_y(h, Z), self.proj_y(0, Z)
        box = self._box(x0, x1, y0, y1)
        if box is None:
            return
        col = self._facade_colour() * self.light * 0.9
        mask = np.ones((box[0].stop - box[0].start, box[1].stop - box[1].start), bool)
        self.paint(box, mask, col, BUILDING, Z)

    # --- objects ------------------------------------------------------------------------------
    def objects(self):
        r, c = self.rng, self.cfg
        items = []  # (depth, draw function)
        pl = (self.road_l - self.pave_l, self.road_l)
        pr = (self.road_r, self.road_r + self.pave_r)
        # street lights and sign posts along the kerbs
        spacing = float(r.uniform(15, 35))
        for side, (a, b) in ((-1, pl), (1, pr)):
            if r.random() < 0.8:
                z = float(r.uniform(3, spacing))
                while z < self.far:
                    X = (b - 0.4) if side < 0 else (a + 0.4)  # at the kerb
                    items.append((z, self.street_light, (X, z, side)))
                    z += spacing * float(r.uniform(0.8, 1.2))
            for _ in range(int(r.integers(0, 4))):
                z = float(r.uniform(4, min(60, self.far)))
                X = float(r.uniform(a + 0.3, b - 0.3))
                items.append((z, self.sign_post, (X, z)))
        for _ in range(int(r.integers(*c.trees) if c.randomize else 4)):
            side = -1 if r.random() < 0.5 else 1
            a, b = pl if side < 0 else pr
            z = float(r.uniform(4, self.far))
            X = float(r.uniform(a, b)) if r.random() < 0.6 else (a - 1 if side < 0 else b + 1)
            items.append((z, self.tree, (X, z)))
        if c.randomize and r.random() < 0.35:  # an avenue: a row of street trees along one pavement
            side = -1 if r.random() < 0.5 else 1
            a, b = pl if side < 0 else pr
            X, z, step = float(r.uniform(a, b)), float(r.uniform(3, 12)), float(r.uniform(6, 14))
            while z < min(self.far, 120):
                items.append((z, self.tree, (X + float(r.normal(0, 0.2)), z)))
                z += step * float(r.uniform(0.85, 1.15))
        first = -1 if r.random() < 0.5 else 1
        for side, chance in ((first, 0.8), (-first, 0.3)):  # fences and railings along the pavements
            if r.random() >= chance:
                continue
            X = (self.road_l - 0.25) if side < 0 else (self.road_r + 0.25)  # at the kerb
            if r.random() < 0.6:  # at the back of the pavement, in front of the facades
                X = (self.road_l - self.pave_l + 0.2) if side < 0 else (self.road_r + self.pave_r - 0.2)
            z0 = float(r.uniform(2, 30))
            items.append((z0, self.fence, (X, z0, z0 + float(r.uniform(8, 80)))))
        for _ in range(int(r.integers(*c.cars) if c.randomize else 5)):
            z = float(r.uniform(5, min(self.far - 5, 90)))
            lane = int(r.integers(0, self.lanes * (1 if self.one_way else 2)))
            if r.random() < 0.35:  # parked by the kerb
                X = (self.road_l + 1.1) if r.random() < 0.5 else (self.road_r - 1.1)
            else:
                X = self.road_l + self.lane_w * (lane + 0.5) + float(r.normal(0, 0.2))
                if abs(X) < 1.2 and z < 12:
                    continue  # the ego lane ahead stays mostly free
            items.append((z, self.car, (X, z)))
        for _ in range(int(r.integers(*c.pedestrians) if c.randomize else 3)):
            a, b = pl if r.random() < 0.5 else pr
            z = float(r.uniform(3, min(self.far, 60)))
            X = float(r.uniform(a + 0.2, b - 0.2)) if r.random() < 0.85 else float(r.uniform(self.road_l, self.road_r))
            items.append((z, self.pedestrian, (X, z)))
        for _ in range(int(r.integers(*c.bicyclists) if c.randomize else 1)):
            z = float(r.uniform(4, 50))
            X = (self.road_r - 0.8) if r.random() < 0.6 else (self.road_l + 0.8)
            items.append((z, self.bicyclist, (X, z)))
        for _, fn, args in sorted(items, key=lambda t: -t[0]):
            fn(*args)

    def _grid(self, X, Z, half_w, height, lift=0.0):
        """Bounding box of an upright object at ground point ``(X, Z)``: slices and local coordinates
        ``u`` (metres across, 0 at the centre) and ``v`` (metres above the ground)."""
        if Z < 0.8:
            return None
        x0, x1 = self.proj_x(X - half_w, Z), self.proj_x(X + half_w, Z)
        y0, y1 = self.proj_y(height + lift, Z), self.proj_y(lift, Z)
        box = self._box(x0, x1, y0, y1)
        if box is None:
            return None
        ys, xs = box
        u = (self.sim._xx[0, xs] - self.cx) * Z / self.f - self.yaw * Z - X
        v = self.cam_h - (self.sim._yy[ys, 0] - self.horizon) * Z / self.f
        return box, u[None, :], v[:, None]

    def street_light(self, X, Z, side):
        r = self.rng
        h = float(r.uniform(5, 9))
        g = self._grid(X - side * 0.9, Z, 1.6, h + 0.3)
        if g is None:
            return
        box, u, v = g
        u = u - side * 0.9  # 0 at the pole
        pw = max(0.09, 0.6 * Z / self.f)  # at least ~half a pixel wide
        pole = (np.abs(u) < pw) & (v < h)
        arm = (v > h - 0.2) & (v < h) & (u * -side > 0) & (u * -side < 1.5)
        col = np.array([r.uniform(60, 140)] * 3, np.float32) * self.light
        self.paint(box, pole | arm, col, POLE, Z)
        lamp = (v > h - 0.35) & (v < h) & (u * -side > 1.1) & (u * -side < 1.6)
        self.paint(box, lamp, np.array([200, 200, 190], np.float32) * self.light, POLE, Z - 0.01)

    def sign_post(self, X, Z):
        r = self.rng
        h = float(r.uniform(2.0, 3.2))
        size = float(r.uniform(0.5, 0.9))
        g = self._grid(X, Z, size, h + size)
        if g is None:
            return
        box, u, v = g
        pw = max(0.05, 0.6 * Z / self.f)
        self.paint(box, (np.abs(u) < pw) & (v < h), np.array([120, 120, 125], np.float32) * self.light, POLE, Z)
        shape = int(r.integers(0, 4))
        cv, hs = h + size / 2, size / 2
        if shape == 0:
            plate = (u ** 2 + (v - cv) ** 2) < hs ** 2
        elif shape == 1:
            plate = (np.abs(u) < hs) & (np.abs(v - cv) < hs)
        elif shape == 2:
            plate = (v > h) & (v < h + size) & (np.abs(u) < (h + size - v) * 0.58)
        else:  # traffic light: a dark box
            plate = (np.abs(u) < 0.2) & (v > h) & (v < h + 0.9)
        colours = [(200, 30, 30), (30, 70, 170), (230, 230, 230), (240, 200, 30), (40, 40, 40)]
        col = np.array(colours[4 if shape == 3 else int(r.integers(0, 4))], np.float32)
        fill = np.broadcast_to(col, (*plate.shape, 3)).copy()
        if shape in (0, 1):
            rim = plate & ((u ** 2 + (v - cv) ** 2) > (hs * 0.7) ** 2) if shape == 0 else \
                plate & ((np.abs(u) > hs * 0.8) | (np.abs(v - cv) > hs * 0.8))
            fill[rim] = (235, 235, 235) if col[0] < 200 else (200, 30, 30)
        if shape == 3:
            for i, lc in enumerate([(220, 40, 40), (230, 180, 30), (40, 200, 80)]):
                on = (u ** 2 + (v - (h + 0.75 - i * 0.3)) ** 2) < 0.1 ** 2
                fill[on] = lc if r.random() < 0.4 else (60, 60, 60)
        self.paint(box, plate, fill * self.light, SIGN, Z - 0.01)

    def tree(self, X, Z):
        """A tree: trunk, branches and a crown whose foliage follows the scene's season. As in CamVid's
        labels, a bare or sparse crown is labelled tree over its whole outline, twigs and the gaps between
        them alike; a leafy crown only where its leaves are."""
        r = self.rng
        h = float(r.uniform(4, 14))
        crown = float(r.uniform(1.5, 5.5))
        fork = h - crown * 0.7
        width = max(0.05, 0.6 * Z / self.f)  # of the limbs: at least ~half a pixel wide
        bark = np.array([r.uniform(55, 100), r.uniform(45, 80), r.uniform(35, 60)], np.float32) * self.light
        g = self._grid(X, Z, 0.3, fork)
        if g is not None:  # the trunk, painted first: in front of the crown's lowest limbs
            box, u, v = g
            self.paint(box, np.abs(u) < 0.15 + 0.1 * (v < 0.5) + 0.04 * (fork - v) / fork, bark * 1.1, TREE, Z)
        lift = max(0.0, fork - 1.6 * width - 0.05)  # the crown's box: from just under the fork to the top
        g = self._grid(X, Z, crown * 1.1, h + crown * 0.85 - lift, lift=lift)
        if g is None:
            return
        box, u, v = g
        u, v = np.broadcast_arrays(u, v)
        outline = np.zeros(u.shape, bool)
        for _ in range(int(r.integers(2, 6))):
            cu, cv = float(r.normal(0, crown * 0.35)), h - float(r.uniform(0, crown * 0.8))
            ru, rv = crown * float(r.uniform(0.5, 0.9)), crown * float(r.uniform(0.4, 0.8))
            outline |= ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 < 1
        branches = np.zeros(u.shape, bool)
        for _ in range(int(r.integers(4, 10))):  # limbs from the fork towards the crown's edge
            angle = float(r.uniform(0.15, np.pi - 0.15))
            end_u, end_v = np.cos(angle) * crown, fork + np.sin(angle) * crown * float(r.uniform(0.8, 1.5))
            t = np.clip((u * end_u + (v - fork) * (end_v - fork)) / (end_u ** 2 + (end_v - fork) ** 2), 0, 1)
            branches |= np.hypot(u - t * end_u, v - fork - t * (end_v - fork)) < width * (1.6 - t)
        branches &= outline | (v < h)
        leaves = self._tex(5, u * 25 + X * 13, v * 25)
        leafy = outline & (leaves > 0.25 + 0.8 * (1 - self.foliage))
        green = np.array([r.uniform(40, 110), r.uniform(80, 150), r.uniform(20, 70)], np.float32)
        if r.random() < 0.15:  # autumn
            green = np.array([r.uniform(140, 200), r.uniform(90, 140), r.uniform(20, 50)], np.float32)
        ys, xs = box
        col = self.rgb[ys, xs].copy()  # what shows between the twigs
        if self.foliage < 0.7:
            fine = float(r.uniform(25, 45))  # twigs: thin ridges of fractal noise
            twigs = (np.abs(self._tex(4, u * fine + X * 7, v * fine) - 0.5) < 0.03) | \
                    (np.abs(self._tex(3, u * fine * 0.5 + X * 3, v * fine * 0.5) - 0.5) < 0.02)
            haze = self._tex(2, u * 6 + X, v * 6) * 0.45 * (1 - self.foliage)
            cover = np.clip(twigs * 0.7 + haze, 0, 1)[..., None]
            col = col * (1 - cover) + bark * cover
        col = np.where(branches[..., None], bark, col)
        col = np.where(leafy[..., None], green * (0.55 + 0.6 * leaves[..., None]) * self.light, col)
        crown_label = outline if self.foliage < 0.7 else leafy | (branches & outline)
        self.paint(box, crown_label | branches, col, TREE, Z)

    def fence(self, X, z0, z1):
        """A fence: a vertical band parallel to the street between depths ``z0`` and ``z1``; a railing of
        bars, a wire mesh or solid panels. As in CamVid's labels, the whole band is fence, the bars or wires
        and the gaps between them alike."""
        r = self.rng
        h = float(r.uniform(0.8, 2.2))
        style = str(r.choice(["railing", "mesh", "panel"], p=[0.55, 0.2, 0.25])) if self.cfg.randomize else "panel"
        span = self._plane_columns(X, z0, z1)
        if span is None:
            return
        cs, Zc, yy = span
        top, bottom = self.proj_y(h, Zc), self.proj_y(0, Zc)
        hgt = self.cam_h - (yy - self.horizon) * Zc[None] / self.f
        band = (yy >= top[None]) & (yy < bottom[None])
        grey = float(r.uniform(15, 90)) if r.random() < 0.7 else float(r.uniform(90, 210))  # mostly dark metal
        col = np.array([grey, grey * r.uniform(0.9, 1.1), grey * r.uniform(0.8, 1.05)], np.float32) * self.light
        col = np.broadcast_to(col, (*yy.shape, 3)).astype(np.float32)
        if style == "panel":
            col = col * (0.85 + 0.3 * self._tex(2, np.broadcast_to(Zc[None] * 20, hgt.shape), hgt * 20))[..., None]
        else:  # what is behind shows through, a little darker
            step = float(r.uniform(0.1, 0.3))
            if style == "railing":
                wire = np.mod(Zc / step, 1.0)[None] < float(r.uniform(0.15, 0.45))
            else:
                along = Zc[None] / step
                wire = (np.mod(along + hgt / step, 1.0) < 0.2) | (np.mod(along - hgt / step, 1.0) < 0.2)
            wire = wire | (np.abs(hgt - h) < 0.06) | (np.abs(hgt - h * 0.15) < 0.05)  # top and bottom rails
            col = np.where(wire[..., None], col, self.rgb[:, cs] * float(r.uniform(0.55, 0.9)))
        self.paint((slice(0, self.H), cs), band, col, FENCE, np.broadcast_to(Zc[None], yy.shape))

    def car(self, X, Z):
        r = self.rng
        w, hgt, length = float(r.uniform(1.6, 2.0)), float(r.uniform(1.3, 1.8)), float(r.uniform(3.8, 4.8))
        if r.random() < 0.1:  # van / bus
            hgt, length = float(r.uniform(2.2, 3.2)), float(r.uniform(5, 11))
        paint_col = np.array(r.choice([(200, 200, 205), (30, 30, 35), (150, 20, 20), (30, 60, 140), (120, 120, 125),
                                       (230, 230, 230), (60, 100, 60), (200, 170, 40)]), np.float32)
        paint_col = np.clip(paint_col + r.normal(0, 15, 3), 0, 255)
        # visible side face: the side turned to the camera, from Z to Z + length
        side_x = X + (w / 2 if X + self.yaw * Z < 0 else -w / 2)
        self._car_side(side_x, Z, Z + length, hgt, paint_col)
        g = self._grid(X, Z, w / 2, hgt)
        if g is None:
            return
        box, u, v = g
        a = np.abs(u) / (w / 2)
        body = (v < hgt * 0.58) & (a < 1) & ~((v < 0.25) & (a > 0.92))
        cabin = (v >= hgt * 0.58) & (v < hgt) & (a < 0.92 - 0.25 * (v - hgt * 0.58) / (hgt * 0.42))
        col = np.broadcast_to(paint_col, (*body.shape, 3)).copy()
        col *= (0.85 + 0.25 * (v / hgt))[..., None]
        glass = cabin & (a < 0.8 - 0.25 * (v - hgt * 0.58) / (hgt * 0.42)) & (v < hgt * 0.95)
        col[glass] = np.array([40, 50, 60], np.float32) + 40 * (v / hgt)[..., 0:1].repeat(col.shape[1], 1)[glass, None]
        lights = (np.abs(v - hgt * 0.45) < hgt * 0.06) & (a > 0.7) & (a < 0.95)
        col[lights] = (200, 30, 30) if r.random() < 0.7 else (230, 230, 200)
        wheels = (v < 0.3) & (a > 0.55) & (a < 0.95)
        col[wheels] = (20, 20, 22)
        plate = (np.abs(v - hgt * 0.3) < 0.07) & (a < 0.22)
        col[plate] = (220, 220, 210)
        shadow_rows = v < 0.12
        col[shadow_rows & body] *= 0.6
        self.paint(box, body | cabin, col * self.light, CAR, Z)

    def _plane_columns(self, X, z0, z1):
        """Image columns where a vertical plane parallel to the street at lateral ``X`` lies between depths
        ``z0`` and ``z1``: ``(column slice, depth per column (inf outside), pixel rows of those columns)``."""
        xs = self.sim._xx[0]
        denom = (xs - self.cx) / self.f - self.yaw
        with np.errstate(divide="ignore", invalid="ignore"):
            Zc = X / denom
        cols = (Zc > max(z0, 0.8)) & (Zc < z1)
        if not cols.any():
            return None
        xa, xb = np.flatnonzero(cols)[[0, -1]]
        cs = slice(xa, xb + 1)
        return cs, np.where(cols[cs], Zc[cs], np.inf), self.sim._yy[:, cs]

    def _car_side(self, Xs, z0, z1, hgt, colour):
        span = self._plane_columns(Xs, z0, z1)
        if span is None:
            return
        cs, Zc, yy = span
        t = (Zc - z0) / (z1 - z0)
        roof = hgt * np.where((t > 0.2) & (t < 0.75), 1.0, 0.6)
        top, bottom = self.proj_y(roof, Zc), self.proj_y(0.1, Zc)
        hv = self.cam_h - (yy - self.horizon) * Zc[None] / self.f
        mask = (yy >= top[None]) & (yy < bottom[None])
        col = np.broadcast_to(colour * 0.8, (*yy.shape, 3)).copy()
        glass = (hv > hgt * 0.62) & (hv < hgt * 0.95)
        col[glass] = (45, 55, 65)
        wheel = (hv < 0.55) & ((np.abs(t - 0.15) < 0.07) | (np.abs(t - 0.85) < 0.07))[None]
        col[wheel] = (20, 20, 20)
        self.paint((slice(0, self.H), cs), mask, col * self.light, CAR, np.broadcast_to(Zc[None], yy.shape))

    def _person_mask(self, u, v, h, walking: float):
        head = (u ** 2 + (v - h * 0.93) ** 2) < (h * 0.065) ** 2
        torso = (np.abs(u) < h * 0.13 - (v - h * 0.55) * 0.05) & (v > h * 0.5) & (v < h * 0.86)
        legs = (v < h * 0.52) & ((np.abs(u - walking * (h * 0.52 - v) * 0.3 - h * 0.05) < h * 0.05)
                                 | (np.abs(u + walking * (h * 0.52 - v) * 0.3 + h * 0.05) < h * 0.05))
        arms = (v > h * 0.45) & (v < h * 0.83) & (np.abs(np.abs(u) - h * 0.15) < h * 0.035)
        return head, torso | arms, legs

    def pedestrian(self, X, Z):
        r = self.rng
        h = float(r.uniform(1.5, 1.95))
        g = self._grid(X, Z, h * 0.25, h)
        if g is None:
            return
        box, u, v = g
        head, body, legs = self._person_mask(u, v, h, float(r.uniform(-0.6, 0.6)))
        col = np.empty((*np.broadcast_shapes(u.shape, v.shape), 3), np.float32)
        col[:] = r.uniform(20, 220, 3)
        col[legs] = r.uniform(20, 120, 3)
        col[head] = np.array([r.uniform(90, 230)] * 3) * np.array([1, 0.8, 0.65])
        self.paint(box, head | body | legs, col * self.light, PEDESTRIAN, Z)

    def bicyclist(self, X, Z):
        r = self.rng
        h = float(r.uniform(1.6, 1.9))
        side_view = r.random() < 0.4
        half = 0.9 if side_view else 0.35
        g = self._grid(X, Z, half, h + 0.3)
        if g is None:
            return
        box, u, v = g
        rw = 0.34
        if side_view:
            d1 = np.sqrt((u - 0.55) ** 2 + (v - rw) ** 2)
            d2 = np.sqrt((u + 0.55) ** 2 + (v - rw) ** 2)
            wheels = (np.abs(d1 - rw) < 0.05) | (np.abs(d2 - rw) < 0.05)
            frame = (np.abs(v - rw - 0.25) < 0.04) & (np.abs(u) < 0.5)
            bike = wheels | frame
            head, body, legs = self._person_mask(u, v - 0.3, h * 0.9, 0.5)
        else:
            bike = (np.abs(u) < 0.05) & (v < rw * 2)
            head, body, legs = self._person_mask(u, v - 0.35, h * 0.85, 0.0)
        rider = head | body | legs
        col = np.empty((*np.broadcast_shapes(u.shape, v.shape), 3), np.float32)
        col[:] = r.uniform(20, 230, 3)
        col[bike] = (30, 30, 30)
        col[head] = (150, 120, 100)
        self.paint(box, rider | bike, col * self.light, BICYCLIST, Z)

    # --- camera and weather -------------------------------------------------------------------
    def weather_and_camera(self):
        r, rand = self.rng, self.cfg.randomize
        img = self.rgb
        if self.fog:
            d = np.where(np.isfinite(self.depth), self.depth, self.fog_dist * 3)
            t = np.exp(-d / self.fog_dist)[..., None]
            img = img * t + self.fog_col * (1 - t)
        if self.rain:
            img = img * 0.8 + 15
            n = int(r.integers(300, 1200))
            ys = r.integers(0, self.H, n)
            xs = r.integers(0, self.W, n)
            length = int(r.integers(6, 18))
            slant = float(r.uniform(-0.3, 0.3))
            k = np.arange(length)
            yy = np.clip(ys[:, None] + k[None], 0, self.H - 1)
            xx = np.clip((xs[:, None] + slant * k[None]).astype(int), 0, self.W - 1)
            img[yy, xx] = img[yy, xx] * 0.6 + 90
        if rand:
            vign = float(r.uniform(0, 0.35))
            if vign > 0.05:
                img = img * (1 - vign * self.sim._radius2)[..., None]
            sigma = float(r.uniform(0, 8))
            if sigma > 0.5:
                img = img + sigma * self._screen(0, self.H, 0, self.W)[..., None]
        out = np.clip(img, 0, 255).astype(np.uint8)
        if rand:  # exposure and gamma as a lookup table
            gain, gamma = float(r.uniform(0.75, 1.25)), float(r.uniform(0.8, 1.25))
            lut = (255 * np.clip(np.arange(256) * gain / 255, 0, 1) ** gamma).astype(np.uint8)
            out = lut[out]
        if rand and r.random() < 0.5:
            from PIL import Image, ImageFilter

            out = np.asarray(Image.fromarray(out).filter(ImageFilter.GaussianBlur(float(r.uniform(0.3, 1.2)))))
        self.out_rgb = out
