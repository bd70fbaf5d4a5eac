#!/usr/bin/env python3
"""Write tiny libhdf5 files as the fuzz corpus seed: one per libver, each with a chunked
deflate+shuffle+fletcher32 dataset, an unlimited (extensible array) one, a contiguous and
a compact one, attributes and a dense group. Usage: make_seeds.py OUT_DIR"""
import sys
from pathlib import Path

import h5py
import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for lv in ("earliest", "v108", "v110", "latest"):
    with h5py.File(out / f"seed_{lv}.h5", "w", libver=lv) as f:
        g = f.create_group("b/s")
        g.create_dataset("h", data=np.arange(40, dtype="f4"), chunks=(16,), compression="gzip", shuffle=True, fletcher32=True, fillvalue=3.4028235e38)
        g.create_dataset("u", data=np.arange(40, dtype=">i2"), chunks=(8,), maxshape=(None,))
        g.create_dataset("c", data=np.arange(10, dtype="f8"))
        g["h"].attrs["units"] = "m"
        g["h"].attrs["v"] = np.int32(3)
        d = f.create_group("d")
        for i in range(10):
            d.create_dataset(f"x{i}", data=np.array([i], dtype="i1"))
