"""Recompute a magg store the way the reference tool does and compare.

For every catalog cell: read each granule's beams with h5py, hash every point at order 18
with healpy (geodetic latitude on the sphere, like the reference's mortie/healpy), keep
rows inside the parent cell with atl06_quality_summary == 0, truncate to the child order,
and compute numpy statistics per child cell: len, min, max, average weighted by 1/s^2,
1/sqrt(sum(1/s^2)), var (ddof 0), quantile 0.25/0.5/0.75 (linear). Statistics are computed
in float64 (the exact values) and in float32 (what the reference's numpy does with
float32 inputs), then compared with the store, opened with zarr-python.

usage: reference_check.py STORE CATALOG  -> JSON report on stdout
"""
import json
import sys

import h5py
import healpy as hp
import numpy as np
import zarr

store_path, catalog_path = sys.argv[1], sys.argv[2]
catalog = json.load(open(catalog_path))
P = catalog["metadata"]["parent_order"]
root = zarr.open_group(store_path, mode="r")
C = next(int(k) for k in root.group_keys() if k.isdigit())
group = root[str(C)]
L = 4 ** (C - P)


def morton_to_nested(m):
    s = str(abs(m))
    lead = int(s[0])
    base = lead - 1 if m > 0 else lead + 5
    sub = 0
    for ch in s[1:]:
        d = int(ch)
        assert 1 <= d <= 4, m
        sub = sub * 4 + (d - 1)
    order = len(s) - 1
    return base * 4**order + sub, order


def nested_to_morton(n, order):
    base, sub = divmod(n, 4**order)
    digits = []
    for _ in range(order):
        digits.append(str(sub % 4 + 1))
        sub //= 4
    lead = base + 1 if base < 6 else base - 5
    v = int(str(lead) + "".join(reversed(digits)))
    return v if base < 6 else -v


VARS = ["count", "h_min", "h_max", "h_mean", "h_sigma", "h_variance", "h_q25", "h_q50", "h_q75"]


def stats(h, s, dtype):
    h = h.astype(dtype)
    s = s.astype(dtype)
    w = dtype(1.0) / (s**2)
    q = np.quantile(h, [0.25, 0.5, 0.75])
    return [len(h), h.min(), h.max(), np.sum(h * w) / np.sum(w), dtype(1.0) / np.sqrt(np.sum(w)), np.var(h), q[0], q[1], q[2]]


report = {"cells": 0, "children_with_data": 0, "count_mismatches": 0, "coord_mismatches": 0,
          "fill_mismatches": 0, "max_rel_err_f64": {}, "max_rel_err_f32_reference": {}, "obs": 0}
arrays = {v: group[v][:] for v in VARS + ["cell_ids", "morton"]}
for chunk, (key, urls) in enumerate(catalog["catalog"].items()):
    parent, order = morton_to_nested(int(key))
    assert order == P
    rows = {}
    for url in urls:
        with h5py.File(url, "r") as f:
            for beam in ("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"):
                if f"{beam}/land_ice_segments/latitude" not in f:
                    continue
                g = f[f"{beam}/land_ice_segments"]
                lat, lon = g["latitude"][:], g["longitude"][:]
                n18 = hp.ang2pix(2**18, lon, lat, nest=True, lonlat=True).astype(np.int64)
                keep = ((n18 >> (2 * (18 - P))) == parent) & (g["atl06_quality_summary"][:] == 0)
                child = n18[keep] >> (2 * (18 - C))
                h, s = g["h_li"][:][keep], g["h_li_sigma"][:][keep]
                for c in np.unique(child):
                    m = child == c
                    hs, ss = rows.setdefault(int(c), ([], []))
                    hs.append(h[m])
                    ss.append(s[m])
    sl = slice(chunk * L, (chunk + 1) * L)
    ids = arrays["cell_ids"][sl]
    expect_ids = np.arange(parent * L, (parent + 1) * L, dtype=np.uint64)
    report["coord_mismatches"] += int((ids != expect_ids).sum())
    for i in (0, L // 2, L - 1):
        if int(arrays["morton"][sl][i]) != nested_to_morton(int(expect_ids[i]), C):
            report["coord_mismatches"] += 1
    report["cells"] += 1
    counts = arrays["count"][sl]
    with_data = np.zeros(L, dtype=bool)
    for c, (hs, ss) in rows.items():
        i = c - parent * L
        with_data[i] = True
        h, s = np.concatenate(hs), np.concatenate(ss)
        exact = stats(h, s, np.float64)
        ref32 = stats(h, s, np.float32)
        report["obs"] += len(h)
        if int(counts[i]) != len(h):
            report["count_mismatches"] += 1
        for k, v in enumerate(VARS[1:], start=1):
            got = float(arrays[v][sl][i])
            for name, want in (("max_rel_err_f64", exact[k]), ("max_rel_err_f32_reference", ref32[k])):
                want = float(want)
                err = abs(got - want) / max(abs(want), 1e-30)
                report[name][v] = max(report[name].get(v, 0.0), err)
    report["children_with_data"] += int(with_data.sum())
    # Children without data: count 0 and NaN everywhere else.
    empty = ~with_data
    report["count_mismatches"] += int((counts[empty] != 0).sum())
    for v in VARS[1:]:
        report["fill_mismatches"] += int((~np.isnan(arrays[v][sl][empty])).sum())
print(json.dumps(report))
