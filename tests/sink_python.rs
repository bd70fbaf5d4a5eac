//! zarr-python 3, xarray and xdggs (zarr convention) must read what the sink writes, the
//! way the reference's users read its stores.
//!
//! Needs the test venv: `bash scripts/setup-venv.sh`. The test fails, not skips, without
//! it, because CI runs the script first.

use std::path::Path as FsPath;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, UInt64Array};
use arrow::datatypes::DataType;
use magg::sink::{Codec, StoreLayout, StoreTemplate, VariableSpec, ZarrSink};
use magg_udfs::healpix::LatitudeMode;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use serde_json::{Map, Value, json};

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");

const SCRIPT: &str = r#"
import json, sys, warnings
import numpy as np
import zarr, xarray as xr, xdggs

warnings.simplefilter("ignore")
path = sys.argv[1]
out = {}
root = zarr.open_group(path, mode="r")
cm = root.metadata.consolidated_metadata
out["consolidated_keys"] = sorted(cm.flattened_metadata.keys()) if cm is not None else None
g = zarr.open_group(path, path="12", mode="r")
out["arrays"] = sorted(name for name, _ in g.arrays())
out["group_attrs"] = dict(g.attrs)
arrs = {}
for name, a in g.arrays():
    arrs[name] = {"shape": list(a.shape), "chunks": list(a.chunks), "dtype": str(a.dtype),
                  "fill": None if (np.issubdtype(a.dtype, np.floating) and np.isnan(a.fill_value)) else a.fill_value.item(),
                  "dims": list(a.metadata.dimension_names), "attrs": dict(a.attrs)}
out["array_meta"] = arrs

ds = xr.open_zarr(path, group="12")
out["dims"] = {k: int(v) for k, v in ds.sizes.items()}
count = ds["count"].values
mean = ds["h_mean"].values
ids = ds["cell_ids"].values
mort = ds["morton"].values
out["count_sum"] = int(count.sum())
out["count_nonzero"] = int((count > 0).sum())
out["mean_finite"] = int(np.isfinite(mean).sum())
nz = np.nonzero(count)[0]
out["rows"] = [{"i": int(i), "count": int(count[i]), "mean": float(mean[i]), "cell": int(ids[i]),
                "morton": int(mort[i])} for i in nz[:20]]
out["ids_first"] = [int(v) for v in ids[:3]]
out["ids_chunk1_first"] = int(ids[4096])
out["ids_chunk2"] = [int(ids[8192]), int(ids[-1])]
out["count_chunk2_sum"] = int(count[8192:].sum())

decoded = xdggs.decode(ds, convention="zarr", name="cell_ids")
info = decoded.dggs.grid_info
out["grid"] = {"level": int(info.level), "indexing_scheme": str(info.indexing_scheme),
               "type": type(info).__name__}
out["decoded_attrs"] = sorted(decoded.attrs.keys())
centers = decoded.dggs.cell_centers()
lon = centers["longitude"].values
lat = centers["latitude"].values
out["center0"] = [float(lat[int(nz[0])]), float(lon[int(nz[0])])]
json.dump(out, sys.stdout, allow_nan=False)
"#;

fn python() -> &'static str {
    assert!(
        FsPath::new(PYTHON).exists(),
        "{PYTHON} is missing: run `bash scripts/setup-venv.sh` (the zarr/xarray/xdggs check needs the test venv)"
    );
    PYTHON
}

fn template(parents: Vec<i64>) -> StoreTemplate {
    let attrs = |long: &str| {
        let mut m = Map::new();
        m.insert("long_name".into(), json!(long));
        m
    };
    StoreTemplate {
        parent_order: 6,
        child_order: 12,
        layout: StoreLayout::Compact { parents },
        variables: vec![
            VariableSpec {
                name: "count".into(),
                data_type: DataType::Int32,
                fill_value: 0.0,
                attributes: attrs("number of observations"),
            },
            VariableSpec {
                name: "h_mean".into(),
                data_type: DataType::Float32,
                fill_value: f64::NAN,
                attributes: attrs("weighted mean height"),
            },
        ],
        codec: Codec::None,
        attributes: Map::new(),
    }
}

#[tokio::test]
async fn zarr_python_xarray_and_xdggs_read_the_store() {
    let py = python();
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).expect("local store"));
    let parents: Vec<i64> = [(-75.0, -100.0), (-80.0, 30.0), (-70.0, 160.0)]
        .iter()
        .map(|&(lat, lon)| magg_udfs::morton::from_lat_lon(lat, lon, 6, LatitudeMode::Sphere).expect("morton"))
        .collect();
    let url = dir.path().join("out.zarr").display().to_string();
    let sink = ZarrSink::create(Arc::clone(&store), Path::from("out.zarr"), &url, &template(parents.clone()), false)
        .await
        .expect("create");

    // Parent 0: 50 children with data (every 80th child); parent 1: written empty;
    // parent 2: never written (zarr must read fill values).
    let (p0, _) = magg_udfs::morton::to_nested(parents[0]).expect("nested");
    let first = p0 * 4096;
    let offsets: Vec<u64> = (0..50).map(|k| k * 80 + 7).collect();
    let cells = UInt64Array::from(offsets.iter().map(|o| first + o).collect::<Vec<_>>());
    let counts: ArrayRef = Arc::new(Int64Array::from((0..50).map(|k| k + 1).collect::<Vec<i64>>()));
    let means: ArrayRef = Arc::new(Float64Array::from((0..50_i32).map(|k| 2000.0 + f64::from(k) * 0.5).collect::<Vec<_>>()));
    sink.write_cell(parents[0], &cells, &[counts, means]).await.expect("write parent 0");
    let empty_counts: ArrayRef = Arc::new(Int64Array::from(Vec::<i64>::new()));
    let empty_means: ArrayRef = Arc::new(Float32Array::from(Vec::<f32>::new()));
    sink.write_cell(parents[1], &UInt64Array::from(Vec::<u64>::new()), &[empty_counts, empty_means])
        .await
        .expect("write parent 1");
    sink.consolidate().await.expect("consolidate");

    let run = Command::new(py)
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir.path().join("out.zarr"))
        .output()
        .expect("run python");
    assert!(run.status.success(), "python failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let v: Value = serde_json::from_slice(&run.stdout).expect("python printed JSON");

    assert_eq!(
        v["consolidated_keys"],
        json!(["12", "12/cell_ids", "12/count", "12/h_mean", "12/morton"]),
        "root zarr.json must carry consolidated metadata zarr-python understands"
    );
    assert_eq!(v["arrays"], json!(["cell_ids", "count", "h_mean", "morton"]));
    let meta = &v["array_meta"];
    for (name, dtype, fill) in [
        ("count", "int32", json!(0)),
        ("h_mean", "float32", Value::Null),
        ("cell_ids", "uint64", json!(0)),
        ("morton", "int64", json!(0)),
    ] {
        assert_eq!(meta[name]["shape"], json!([3 * 4096]), "{name}");
        assert_eq!(meta[name]["chunks"], json!([4096]), "{name}");
        assert_eq!(meta[name]["dtype"], dtype, "{name}");
        assert_eq!(meta[name]["fill"], fill, "{name} (null = NaN)");
        assert_eq!(meta[name]["dims"], json!(["cells"]), "{name}");
    }
    assert_eq!(meta["count"]["attrs"], json!({"long_name": "number of observations"}));
    let ga = &v["group_attrs"];
    assert_eq!(ga["dggs"]["name"], "healpix");
    assert_eq!(ga["dggs"]["refinement_level"], 12);
    assert_eq!(ga["dggs"]["coordinate"], "cell_ids");
    assert_eq!(ga["zarr_conventions"][0]["name"], "dggs");

    assert_eq!(v["dims"], json!({"cells": 3 * 4096}));
    assert_eq!(v["count_sum"], (1..=50).sum::<i64>());
    assert_eq!(v["count_nonzero"], 50);
    assert_eq!(v["mean_finite"], 50);
    for (k, row) in v["rows"].as_array().expect("rows").iter().enumerate() {
        let off = offsets[k];
        assert_eq!(row["i"], off, "row {k}");
        assert_eq!(row["count"], k as u64 + 1, "row {k}");
        assert_eq!(row["mean"].as_f64(), Some(2000.0 + k as f64 * 0.5), "row {k}");
        assert_eq!(row["cell"], first + off, "row {k}");
        assert_eq!(row["morton"], magg_udfs::morton::from_nested(first + off, 12).expect("morton"), "row {k}");
    }
    assert_eq!(v["ids_first"], json!([first, first + 1, first + 2]));
    let (p1, _) = magg_udfs::morton::to_nested(parents[1]).expect("nested");
    assert_eq!(v["ids_chunk1_first"], p1 * 4096, "empty cells still get their coordinates");
    assert_eq!(v["ids_chunk2"], json!([0, 0]), "an unwritten chunk reads as the fill value");
    assert_eq!(v["count_chunk2_sum"], 0);

    assert_eq!(v["grid"]["level"], 12);
    assert_eq!(v["grid"]["indexing_scheme"], "nested");
    let decoded_attrs: Vec<&str> = v["decoded_attrs"].as_array().expect("attrs").iter().filter_map(Value::as_str).collect();
    assert!(!decoded_attrs.contains(&"dggs"), "xdggs consumed the dggs block: {decoded_attrs:?}");
    // The DGGS block declares the WGS84 ellipsoid (as the reference does), so xdggs reads
    // cell latitudes as authalic and converts them to geodetic: its centres are our
    // authalic-mode centres, not the spherical ones the reference binned points with.
    let cell = first + offsets[0];
    let (lat, lon) = magg_udfs::healpix::center_with_mode(cell, 12, LatitudeMode::Authalic).expect("center");
    let c = &v["center0"];
    let (plat, plon) = (c[0].as_f64().expect("lat"), c[1].as_f64().expect("lon"));
    let dlon = ((plon - lon + 540.0) % 360.0 - 180.0).abs();
    assert!((plat - lat).abs() < 1e-6 && dlon < 1e-6, "xdggs centre ({plat}, {plon}) vs ours ({lat}, {lon})");
    let (sphere_lat, _) = magg_udfs::healpix::center(cell, 12).expect("center");
    assert!((plat - sphere_lat).abs() > 0.01, "authalic and spherical centres should differ at -75");
}
