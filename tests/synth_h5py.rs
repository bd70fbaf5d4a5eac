//! libhdf5 (through h5py) must open `magg synth` granules and see the ATL06 layout:
//! datasets, dtypes, chunking, filters, unlimited max shape, fill values and attributes,
//! and the same values our own reader (hdf5-reader) decodes.
//!
//! Needs the test venv: `bash scripts/setup-venv.sh`. The test fails, not skips, without
//! it, because CI runs the script first.

use std::path::Path;
use std::process::Command;

use magg::synth::{BEAM_NAMES, Region, SynthOptions, generate, surface_height};
use serde_json::Value;

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");

const SCRIPT: &str = r#"
import json, sys
import h5py, numpy as np

path = sys.argv[1]
out = {"beams": {}}
F32MAX = float(np.finfo(np.float32).max)
with h5py.File(path, "r") as f:
    out["root_groups"] = sorted(f.keys())
    out["short_name"] = f.attrs["short_name"].decode() if isinstance(f.attrs["short_name"], bytes) else str(f.attrs["short_name"])
    out["rgt"] = int(f["orbit_info/rgt"][0])
    out["cycle"] = int(f["orbit_info/cycle_number"][0])
    out["metadata_attrs"] = sorted(f["METADATA"].attrs.keys())
    for beam in ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"]:
        g = f[beam]
        lis = g["land_ice_segments"]
        b = {"groups": sorted(g.keys()), "lis_members": sorted(lis.keys()), "datasets": {}}
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                a = dict(obj.attrs)
                fv = a.get("_FillValue")
                b["datasets"][name] = {
                    "dtype": obj.dtype.str,
                    "shape": list(obj.shape),
                    "maxshape": [None if m is None else int(m) for m in obj.maxshape],
                    "chunks": list(obj.chunks) if obj.chunks else None,
                    "compression": obj.compression,
                    "compression_opts": obj.compression_opts,
                    "shuffle": bool(obj.shuffle),
                    "fillvalue": float(obj.fillvalue),
                    "attr_fill": None if fv is None else float(np.asarray(fv).ravel()[0]),
                    "attr_fill_dtype": None if fv is None else np.asarray(fv).dtype.str,
                    "attrs": sorted(a.keys()),
                }
        g.visititems(visit)
        h = lis["h_li"][:]
        s = lis["h_li_sigma"][:]
        q = lis["atl06_quality_summary"][:]
        b["n"] = int(h.size)
        b["bad"] = int((q == 1).sum())
        b["filled"] = int((h == np.float32(F32MAX)).sum())
        b["filled_sigma"] = int((s == np.float32(F32MAX)).sum())
        b["filled_good"] = int(((h == np.float32(F32MAX)) & (q == 0)).sum())
        b["segment_id_steps"] = sorted(set(np.diff(lis["segment_id"][:]).tolist()))
        b["delta_time_increasing"] = bool((np.diff(lis["delta_time"][:]) > 0).all())
        # First and last rows, bit-exact, for the Rust side to compare with hdf5-reader.
        idx = list(range(5)) + list(range(h.size - 5, h.size))
        b["rows"] = idx
        b["lat"] = [float(v) for v in lis["latitude"][idx]]
        b["lon"] = [float(v) for v in lis["longitude"][idx]]
        b["h_li"] = [float(v) for v in h[idx]]
        b["q"] = [int(v) for v in q[idx]]
        out["beams"][beam] = b
json.dump(out, sys.stdout)
"#;

fn python() -> &'static str {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run `bash scripts/setup-venv.sh` (the h5py check needs the test venv)"
    );
    PYTHON
}

#[test]
fn libhdf5_reads_synthetic_granules() {
    let py = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let rows = 23_456_usize; // three chunks, the last one partial
    let out = generate(&SynthOptions {
        out_dir: dir.path().to_path_buf(),
        granules: 2,
        seed: 11,
        rows_per_beam: rows,
        through: None,
        region: Region::Antarctica,
        parent_order: 6,
    })
    .expect("generate");
    assert_eq!(out.granules.len(), 2);

    for path in &out.granules {
        let run = Command::new(py)
            .arg("-c")
            .arg(SCRIPT)
            .arg(path)
            .output()
            .expect("run python");
        assert!(
            run.status.success(),
            "h5py failed on {}:\n{}",
            path.display(),
            String::from_utf8_lossy(&run.stderr)
        );
        let v: Value = serde_json::from_slice(&run.stdout).expect("python printed JSON");

        let roots: Vec<&str> = v["root_groups"].as_array().expect("roots").iter().filter_map(Value::as_str).collect();
        for g in ["METADATA", "ancillary_data", "orbit_info", "gt1l", "gt3r"] {
            assert!(roots.contains(&g), "{}: root group {g} missing in {roots:?}", path.display());
        }
        assert_eq!(v["short_name"], "ATL06");
        let name = path.file_name().expect("name").to_string_lossy().into_owned();
        let rgt: u64 = name[21..25].parse().expect("rgt in name");
        let cycle: u64 = name[25..27].parse().expect("cycle in name");
        assert_eq!(v["rgt"].as_u64(), Some(rgt), "{name}");
        assert_eq!(v["cycle"].as_u64(), Some(cycle), "{name}");

        let file = hdf5_reader::Hdf5File::open(path).expect("hdf5-reader opens the granule");
        let mut total_bad = 0_u64;
        let mut total_filled = 0_u64;
        let mut total = 0_u64;
        for beam in BEAM_NAMES {
            let b = &v["beams"][beam];
            assert_eq!(b["n"].as_u64(), Some(rows as u64), "{beam}");
            let groups: Vec<&str> = b["groups"].as_array().expect("groups").iter().filter_map(Value::as_str).collect();
            assert_eq!(groups, ["land_ice_segments", "residual_histogram", "segment_quality"], "{beam}");
            let members: Vec<&str> = b["lis_members"].as_array().expect("members").iter().filter_map(Value::as_str).collect();
            for m in [
                "atl06_quality_summary",
                "bias_correction",
                "delta_time",
                "dem",
                "fit_statistics",
                "geophysical",
                "ground_track",
                "h_li",
                "h_li_sigma",
                "latitude",
                "longitude",
                "segment_id",
            ] {
                assert!(members.contains(&m), "{beam}/land_ice_segments/{m} missing: {members:?}");
            }
            let ds = |n: &str| &b["datasets"][n];
            for (n, dtype, fill) in [
                ("land_ice_segments/latitude", "<f8", f64::MAX),
                ("land_ice_segments/longitude", "<f8", f64::MAX),
                ("land_ice_segments/delta_time", "<f8", f64::MAX),
                ("land_ice_segments/h_li", "<f4", f64::from(f32::MAX)),
                ("land_ice_segments/h_li_sigma", "<f4", f64::from(f32::MAX)),
                ("land_ice_segments/atl06_quality_summary", "|i1", 127.0),
                ("land_ice_segments/segment_id", "<i4", f64::from(i32::MAX)),
                ("land_ice_segments/dem/dem_h", "<f4", f64::from(f32::MAX)),
                ("land_ice_segments/fit_statistics/n_fit_photons", "<i4", f64::from(i32::MAX)),
                ("land_ice_segments/fit_statistics/h_robust_sprd", "<f4", f64::from(f32::MAX)),
                ("land_ice_segments/geophysical/tide_ocean", "<f4", f64::from(f32::MAX)),
                ("land_ice_segments/bias_correction/fpb_mean_corr", "<f4", f64::from(f32::MAX)),
                ("land_ice_segments/ground_track/x_atc", "<f8", f64::MAX),
                ("land_ice_segments/ground_track/y_atc", "<f4", f64::from(f32::MAX)),
            ] {
                let d = ds(n);
                assert_eq!(d["dtype"], dtype, "{beam}/{n}");
                assert_eq!(d["shape"], serde_json::json!([rows]), "{beam}/{n}");
                assert_eq!(d["maxshape"], serde_json::json!([null]), "{beam}/{n}: max shape must be unlimited");
                assert_eq!(d["chunks"], serde_json::json!([10000]), "{beam}/{n}");
                assert_eq!(d["compression"], "gzip", "{beam}/{n}");
                assert_eq!(d["compression_opts"], 6, "{beam}/{n}");
                assert_eq!(d["shuffle"], dtype.contains('f'), "{beam}/{n}: shuffle on floats only");
                assert_eq!(d["fillvalue"].as_f64(), Some(fill), "{beam}/{n}: fill value message");
                assert_eq!(d["attr_fill"].as_f64(), Some(fill), "{beam}/{n}: _FillValue attribute");
                assert_eq!(d["attr_fill_dtype"], dtype, "{beam}/{n}: _FillValue has the dataset's dtype");
                let attrs: Vec<&str> = d["attrs"].as_array().expect("attrs").iter().filter_map(Value::as_str).collect();
                for a in ["_FillValue", "description", "long_name", "units"] {
                    assert!(attrs.contains(&a), "{beam}/{n}: attribute {a} missing: {attrs:?}");
                }
            }
            assert!(ds("land_ice_segments/h_li")["attrs"].as_array().expect("attrs").contains(&Value::from("coordinates")));
            assert!(ds("residual_histogram/delta_time").is_object(), "{beam}: residual_histogram dataset");
            assert!(ds("segment_quality/segment_id").is_object(), "{beam}: segment_quality dataset");

            assert_eq!(b["segment_id_steps"], serde_json::json!([1]), "{beam}: segment_id must step by 1");
            assert_eq!(b["delta_time_increasing"], true, "{beam}");
            assert_eq!(b["filled"], b["filled_sigma"], "{beam}: h_li and h_li_sigma fill together");
            assert_eq!(b["filled_good"], 0, "{beam}: fill values only on quality-1 rows");
            total += rows as u64;
            total_bad += b["bad"].as_u64().expect("bad");
            total_filled += b["filled"].as_u64().expect("filled");

            // Bit-exact agreement with hdf5-reader on the first and last rows, and heights
            // on the synthetic surface.
            let read_f64 = |n: &str| -> Vec<f64> {
                file.dataset(&format!("/{beam}/land_ice_segments/{n}"))
                    .and_then(|d| d.read_array::<f64>())
                    .map(|a| a.iter().copied().collect())
                    .unwrap_or_else(|e| panic!("hdf5-reader {beam}/{n}: {e}"))
            };
            let h: Vec<f32> = file
                .dataset(&format!("/{beam}/land_ice_segments/h_li"))
                .and_then(|d| d.read_array::<f32>())
                .map(|a| a.iter().copied().collect())
                .unwrap_or_else(|e| panic!("hdf5-reader {beam}/h_li: {e}"));
            let (lat, lon) = (read_f64("latitude"), read_f64("longitude"));
            for (i, row) in b["rows"].as_array().expect("rows").iter().enumerate() {
                let r = row.as_u64().expect("row") as usize;
                assert_eq!(b["lat"][i].as_f64(), Some(lat[r]), "{beam} latitude row {r}");
                assert_eq!(b["lon"][i].as_f64(), Some(lon[r]), "{beam} longitude row {r}");
                assert_eq!(b["h_li"][i].as_f64(), Some(f64::from(h[r])), "{beam} h_li row {r}");
                if b["q"][i] == 0 {
                    let want = surface_height(lat[r], lon[r]);
                    assert!(
                        (f64::from(h[r]) - want).abs() < 0.6,
                        "{beam} row {r}: h_li {} vs surface {want}",
                        h[r]
                    );
                }
            }
        }
        let bad = total_bad as f64 / total as f64;
        assert!((0.04..0.06).contains(&bad), "{name}: quality-1 fraction {bad}");
        let filled = total_filled as f64 / total_bad as f64;
        assert!((0.25..0.42).contains(&filled), "{name}: filled fraction of bad rows {filled}");
    }
}
