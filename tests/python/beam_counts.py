"""Independent truth for the granule-table tests: per granule and beam, the number of
rows and of rows with atl06_quality_summary == 0, read with h5py (libhdf5).

usage: beam_counts.py GRANULE.h5 [...]   -> JSON {file name: {beam: [rows, good]}}
"""
import json
import os
import sys

import h5py

out = {}
for path in sys.argv[1:]:
    beams = {}
    with h5py.File(path, "r") as f:
        for beam in ("gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"):
            if f"{beam}/land_ice_segments/latitude" not in f:
                continue
            q = f[f"{beam}/land_ice_segments/atl06_quality_summary"][:]
            beams[beam] = [int(q.size), int((q == 0).sum())]
    out[os.path.basename(path)] = beams
print(json.dumps(out))
