#!/usr/bin/env python3
"""Write the golden vectors the magg-udfs tests compare against.

Run from the repository root with the project's venv (scripts/setup-venv.sh):

    .venv/bin/python udfs/tests/golden/generate.py

Peers: healpy (ang2pix / pix2ang, NESTED, lonlat=True), mortie 0.6.x (geo2mort,
mort2healpix; 1.0 moved to a packed-word encoding), numpy (quantile, median, var, std,
average) and mpmath (authalic latitude at 50 digits). The output is deterministic
(fixed seeds) and small (< 1 MB in total); the files are committed.

Files written next to this script:

healpix_points.csv
    lat,lon,cell29,cell_exc,mortie18,mortie_exc,kind
    `cell29` is healpy's nested id at order 29. healpy computes every order on its own,
    so the id at order k is `cell29 >> 2*(29-k)` except where floating point puts a point
    that lies on a cell boundary on the other side at order k; those orders are listed
    in `cell_exc` as `k:id;k:id`. The tests rebuild the id at every order 0..=29 and
    compare exactly. `mortie18` is mortie.geo2mort(lat, lon, 18); mortie's value at
    order k is `sign * (|m18| // 10**(18-k))` except the orders in `mortie_exc`
    (`k:morton;...`). `kind` says why the point is there (random, antarctic, pole,
    antimeridian, corner, center, near-corner, theta-switch, mortie-disagrees).
healpix_centers.csv
    order,cell,lat,lon from healpy.pix2ang(nside, cell, nest=True, lonlat=True), with
    the longitude moved from [0, 360) to [-180, 180) by subtracting 360 (exact).
authalic.csv
    lat,authalic_lat in degrees, WGS84, exact formula evaluated with mpmath (50 digits).
aggregates.json
    groups of values (float64 and float32) with weights, and numpy's results (var and
    std with ddof 0 and 1).
"""

import csv
import json
import math
import os
import sys

import healpy as hp
import mortie
import mpmath
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_ORDER = 29
MORTON_MAX_ORDER = 18

assert mortie.__version__.startswith("0.6."), f"need mortie 0.6.x, have {mortie.__version__}"


def healpy_cells(lat, lon):
    """healpy nested ids at orders 0..=29, shape (30, n)."""
    return np.stack(
        [hp.ang2pix(2**k, lon, lat, nest=True, lonlat=True) for k in range(MAX_ORDER + 1)]
    )


def mortie_mortons(lat, lon):
    """mortie.geo2mort at orders 1..=18, shape (19, n); row 0 unused (zeros)."""
    out = np.zeros((MORTON_MAX_ORDER + 1, len(lat)), dtype=np.int64)
    for k in range(1, MORTON_MAX_ORDER + 1):
        out[k] = mortie.geo2mort(lat, lon, order=k)
    return out


def encode_morton(cell, order):
    """REFERENCE.md section 2, written independently of mortie."""
    base = cell >> (2 * order)
    digits = 0
    for level in range(order):
        shift = 2 * (order - 1 - level)
        digits = digits * 10 + ((cell >> shift) & 3) + 1
    if base < 6:
        return (base + 1) * 10**order + digits
    return -((base - 5) * 10**order + digits)


def encode_morton_np(cells, order):
    """Vectorised encode_morton for an int64 array of nested ids at one order."""
    cells = np.asarray(cells, dtype=np.int64)
    base = cells >> (2 * order)
    digits = np.zeros_like(cells)
    for level in range(order):
        digits = digits * 10 + ((cells >> (2 * (order - 1 - level))) & 3) + 1
    lead = np.where(base < 6, base + 1, base - 5)
    m = lead * np.int64(10) ** order + digits
    return np.where(base < 6, m, -m)


def clip_morton(m, order):
    """Parent at `order` of an order-18 morton: sign(m) * (|m| // 10**(18-order))."""
    a = abs(int(m)) // 10 ** (MORTON_MAX_ORDER - order)
    return -a if m < 0 else a


def points():
    rng = np.random.default_rng(20261123)
    lat, lon, kind = [], [], []

    def add(la, lo, k):
        lat.append(float(la))
        lon.append(float(lo))
        kind.append(k)

    # Uniform on the sphere.
    n = 2500
    for la, lo in zip(
        np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n)
    ):
        add(la, lo, "random")
    # Where ICESat-2 land ice lives: Antarctica (to -88) and Greenland.
    for la, lo in zip(rng.uniform(-88.0, -60.0, 800), rng.uniform(-180, 180, 800)):
        add(la, lo, "antarctic")
    for la, lo in zip(rng.uniform(59.0, 84.0, 200), rng.uniform(-75, -10, 200)):
        add(la, lo, "greenland")
    # Poles, exactly and nearly.
    for la in (90.0, -90.0, 89.999999999, -89.999999999, np.nextafter(90.0, 0.0),
               np.nextafter(-90.0, 0.0)):
        for lo in (0.0, -0.0, 45.0, 90.0, 135.0, 180.0, -180.0, -45.0, 360.0, 17.3):
            add(la, lo, "pole")
    # The antimeridian and longitude wrapping.
    for la in (0.0, 10.0, -10.0, 45.0, -45.0, 70.0, -70.0, -85.0, 85.0):
        for lo in (180.0, -180.0, 360.0, -360.0, 540.0, -540.0, 720.0, 179.99999999999997,
                   -179.99999999999997, 0.0, -0.0, 1e-300, -1e-300):
            add(la, lo, "antimeridian")
    # Where healpy switches to sin(theta) near the poles (theta = 0.01 rad).
    t = 90.0 - math.degrees(0.01)
    for la in (t, np.nextafter(t, 0.0), np.nextafter(t, 90.0), -t, np.nextafter(-t, 0.0)):
        for lo in (0.0, 33.0, -120.0):
            add(la, lo, "theta-switch")
    # Base-cell and cell corners at orders 0, 1, 2, 6 and 12 (healpy.boundaries, step 1),
    # and the points one ulp either side of them in latitude.
    for order, cells in ((0, range(12)), (1, range(48)), (2, range(0, 192, 7)),
                         (6, rng.integers(0, 12 * 4**6, 40)),
                         (12, rng.integers(0, 12 * 4**12, 40))):
        for c in cells:
            v = hp.boundaries(2**order, int(c), step=1, nest=True)
            clon, clat = hp.vec2ang(v.T, lonlat=True)
            for la, lo in zip(clat, clon):
                lo = lo - 360.0 if lo >= 180.0 else lo
                add(la, lo, "corner")
                if abs(la) < 90.0:
                    add(np.nextafter(la, 90.0), lo, "near-corner")
                    add(np.nextafter(la, -90.0), lo, "near-corner")
    # The transition latitude asin(2/3) and the equator on meridians of base-cell corners.
    tl = math.degrees(math.asin(2.0 / 3.0))
    for la in (tl, -tl, 0.0):
        for lo in np.arange(-180.0, 360.0, 22.5):
            add(la, lo, "corner")
    # Cell centres (exact healpy output) at a few orders.
    for order in (1, 3, 6, 12, 18, 29):
        cells = rng.integers(0, 12 * 4**order, 8)
        clon, clat = hp.pix2ang(2**order, cells, nest=True, lonlat=True)
        for la, lo in zip(clat, clon):
            add(la, lo, "center")
    # Points where mortie 0.6 (Rust `healpix` 0.3 crate) and healpy disagree at order 18.
    found = 0
    srng = np.random.default_rng(7)
    while found < 8:
        m = 1_000_000
        la = np.degrees(np.arcsin(srng.uniform(-1, 1, m)))
        lo = srng.uniform(-180, 180, m)
        ours = encode_morton_np(hp.ang2pix(2**18, lo, la, nest=True, lonlat=True), 18)
        theirs = mortie.geo2mort(la, lo, order=18)
        for i in np.nonzero(ours != theirs)[0][: 8 - found]:
            add(la[i], lo[i], "mortie-disagrees")
            found += 1
    return np.array(lat), np.array(lon), kind


def write_points():
    lat, lon, kind = points()
    cells = healpy_cells(lat, lon)
    morts = mortie_mortons(lat, lon)
    n_cell_exc = n_mortie_exc = n_disagree = 0
    with open(os.path.join(HERE, "healpix_points.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["lat", "lon", "cell29", "cell_exc", "mortie18", "mortie_exc", "kind"])
        for i in range(len(lat)):
            c29 = int(cells[MAX_ORDER, i])
            exc = []
            for k in range(MAX_ORDER):
                if int(cells[k, i]) != c29 >> (2 * (MAX_ORDER - k)):
                    exc.append(f"{k}:{int(cells[k, i])}")
            m18 = int(morts[MORTON_MAX_ORDER, i])
            mexc = []
            for k in range(1, MORTON_MAX_ORDER):
                if int(morts[k, i]) != clip_morton(m18, k):
                    mexc.append(f"{k}:{int(morts[k, i])}")
            for k in range(1, MORTON_MAX_ORDER + 1):
                # mortie's own round trip, and our encoding of healpy's cell.
                mc, mo = mortie.mort2healpix(int(morts[k, i]))
                assert mo == k
                if encode_morton(int(cells[k, i]), k) != int(morts[k, i]):
                    n_disagree += 1
                    assert encode_morton(mc, k) == int(morts[k, i])
            n_cell_exc += len(exc)
            n_mortie_exc += len(mexc)
            w.writerow([repr(float(lat[i])), repr(float(lon[i])), c29, ";".join(exc), m18,
                        ";".join(mexc), kind[i]])
    print(f"healpix_points.csv: {len(lat)} points, {n_cell_exc} healpy order exceptions, "
          f"{n_mortie_exc} mortie order exceptions, {n_disagree} (point, order) pairs where "
          f"mortie != encode(healpy)", file=sys.stderr)


def write_centers():
    rng = np.random.default_rng(99)
    rows = []
    for order in range(MAX_ORDER + 1):
        nside = 2**order
        npf = 4**order
        cells = set()
        for b in range(12):
            cells.update((b * npf, (b + 1) * npf - 1))
        cells.update(int(c) for c in rng.integers(0, 12 * npf, 16))
        if order > 0:
            # Cells next to the poles and on the equator.
            cells.update((npf - 1, npf - 2, 8 * npf, 8 * npf + 1, 4 * npf + npf // 2))
        cells = np.array(sorted(cells), dtype=np.int64)
        lon, lat = hp.pix2ang(nside, cells, nest=True, lonlat=True)
        for c, la, lo in zip(cells, lat, lon):
            lo = float(lo)
            if lo >= 180.0:
                lo -= 360.0
            rows.append((order, int(c), repr(float(la)), repr(lo)))
    with open(os.path.join(HERE, "healpix_centers.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["order", "cell", "lat", "lon"])
        w.writerows(rows)
    print(f"healpix_centers.csv: {len(rows)} cells", file=sys.stderr)


def write_authalic():
    mpmath.mp.dps = 50
    a = mpmath.mpf(6378137)
    f = 1 / mpmath.mpf("298.257223563")
    e2 = f * (2 - f)
    e = mpmath.sqrt(e2)

    def q(s):
        return (1 - e2) * (s / (1 - e2 * s * s) + mpmath.atanh(e * s) / e)

    qp = q(mpmath.mpf(1))
    rows = []
    lats = [0.0, 1e-9, 0.5, 10.0, 30.0, 45.0, 60.0, 70.0, 80.0, 85.0, 89.0, 89.9, 89.999,
            89.9999999, 90.0]
    lats += [float(x) for x in np.random.default_rng(5).uniform(-90, 90, 40)]
    lats += [-x for x in lats[:15] if x != 0.0]
    for la in lats:
        phi = mpmath.radians(mpmath.mpf(la))
        beta = mpmath.asin(q(mpmath.sin(phi)) / qp)
        rows.append((repr(la), mpmath.nstr(mpmath.degrees(beta), 25)))
    with open(os.path.join(HERE, "authalic.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["lat", "authalic_lat"])
        w.writerows(rows)
    rq = a * mpmath.sqrt(qp / 2)
    print(f"authalic.csv: {len(rows)} latitudes; authalic radius {mpmath.nstr(rq, 15)} m",
          file=sys.stderr)


def numpy_results(x, w, qs):
    x64 = np.asarray(x, dtype=np.float64)
    res = {
        "quantile": {repr(q): repr(float(np.quantile(x64, q))) for q in qs},
        "median": repr(float(np.median(x64))),
        "var": repr(float(np.var(x64))),
        "std": repr(float(np.std(x64))),
        # ddof=1 (the sample variance); NaN for a single value, as numpy (with a warning).
        "var_ddof1": repr(float(np.var(x64, ddof=1))) if len(x64) > 1 else "nan",
        "std_ddof1": repr(float(np.std(x64, ddof=1))) if len(x64) > 1 else "nan",
    }
    if w is not None:
        res["weighted_mean"] = repr(float(np.average(x64, weights=np.asarray(w, np.float64))))
    return res


def write_aggregates():
    rng = np.random.default_rng(314)
    qs = [0.0, 0.25, 0.5, 0.75, 1.0, 0.1, 0.9, 0.33, 0.999, 1e-9, 0.6, 0.7]
    groups = []

    def add(name, dtype, x, w=None):
        x = np.asarray(x, dtype=dtype)
        if w is not None:
            w = np.asarray(w, dtype=dtype)
        groups.append({
            "name": name,
            "dtype": dtype,
            # float32 values are written as the float64 they widen to (exact).
            "x": [repr(float(v)) for v in x],
            "w": None if w is None else [repr(float(v)) for v in w],
            "numpy": numpy_results(x, w, qs),
        })

    def heights(n, dtype):
        h = rng.normal(1500.0, 40.0, n)
        s = rng.uniform(0.01, 0.5, n)
        return h.astype(dtype), (1.0 / s.astype(dtype).astype(np.float64) ** 2)

    for n in (1, 2, 3, 4, 5, 7, 8, 9, 16, 101, 1000):
        h, w = heights(n, np.float64)
        add(f"f64_n{n}", "float64", h, w)
    for n in (1, 2, 6, 33, 500, 1200):
        h, w = heights(n, np.float32)
        # numpy.average of a float32 array with float64 weights computes in float64.
        add(f"f32_n{n}", "float32", h, w.astype(np.float32))
    add("ties", "float64", [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, -4.5], [1, 2, 3, 4, 5, 6, 7, 8])
    add("negative", "float64", -np.abs(rng.normal(0, 1e3, 50)), rng.uniform(0.1, 2, 50))
    add("mixed_sign", "float64", rng.normal(0, 1, 200), rng.uniform(0.1, 2, 200))
    # Large mean, tiny spread: the hard case for variance.
    add("offset_var", "float64", 3000.0 + rng.normal(0, 0.01, 1000), np.ones(1000))
    add("offset_var_f32", "float32", (2500.0 + rng.normal(0, 0.05, 800)), np.ones(800))
    add("wide_range", "float64", rng.lognormal(0, 8, 300), rng.uniform(0.5, 1, 300))
    add("integers", "float64", rng.integers(-100, 100, 64).astype(np.float64),
        rng.integers(1, 5, 64).astype(np.float64))
    with open(os.path.join(HERE, "aggregates.json"), "w") as f:
        json.dump({"quantiles": [repr(q) for q in qs], "groups": groups}, f, indent=None)
        f.write("\n")
    print(f"aggregates.json: {len(groups)} groups", file=sys.stderr)


if __name__ == "__main__":
    print(f"healpy {hp.__version__}, mortie {mortie.__version__}, numpy {np.__version__}, "
          f"mpmath {mpmath.__version__}", file=sys.stderr)
    write_points()
    write_centers()
    write_authalic()
    write_aggregates()
