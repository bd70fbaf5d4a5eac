//! Conformance: every value the reader returns equals what libhdf5 (h5py 3.16, HDF5 2.0)
//! wrote, for libver earliest (superblock 0, layout v3, v1 B-trees), v108 (superblock 2),
//! v110 (superblock 3, layout v4) and latest (layout v5), across chunk indexes, filters,
//! byte orders, integer widths, compact/contiguous layouts and dense groups/attributes.
#![allow(clippy::single_range_in_vec_init)] // one-range row selections are intended

#[path = "h5_support.rs"]
mod support;

use std::collections::BTreeSet;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::*;
use magg::h5::{AttrValue, ChunkIndexKind, FillValue, H5Error, H5File, Layout, ReadOptions, RowSelection, TreeEntry};
use magg::store::StoreOptions;
use serde_json::Value;

const LIBVERS: [&str; 4] = ["earliest", "v108", "v110", "latest"];

async fn open(name: &str) -> H5File {
    let p = support::fixtures().join(name);
    H5File::open_url(p.to_str().unwrap(), &StoreOptions::none(), &ReadOptions::default()).await.unwrap()
}

/// The array's values in the JSON encoding generate.py uses (floats as bit patterns).
fn encode(a: &ArrayRef) -> Vec<Value> {
    macro_rules! ints {
        ($t:ty) => {
            a.as_primitive::<$t>().values().iter().map(|v| Value::from(*v)).collect()
        };
    }
    match a.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Float32 => a.as_primitive::<Float32Type>().values().iter().map(|v| Value::from(format!("{:x}", v.to_bits()))).collect(),
        DataType::Float64 => a.as_primitive::<Float64Type>().values().iter().map(|v| Value::from(format!("{:x}", v.to_bits()))).collect(),
        DataType::Utf8 => a.as_string::<i32>().iter().map(|v| Value::from(v.unwrap_or("<null>"))).collect(),
        other => panic!("unexpected type {other}"),
    }
}

fn arrow_type(numpy: &str) -> Option<DataType> {
    let k = &numpy[1..];
    Some(match k {
        "i1" => DataType::Int8,
        "i2" => DataType::Int16,
        "i4" => DataType::Int32,
        "i8" => DataType::Int64,
        "u1" => DataType::UInt8,
        "u2" => DataType::UInt16,
        "u4" => DataType::UInt32,
        "u8" => DataType::UInt64,
        "f4" => DataType::Float32,
        "f8" => DataType::Float64,
        _ if k.starts_with('S') => DataType::Utf8,
        _ => return None,
    })
}

fn check_attrs(ctx: &str, got: &[(String, AttrValue)], want: &Value) {
    let want = want.as_object().unwrap();
    assert_eq!(got.len(), want.len(), "{ctx}: attribute count; got {got:?}");
    for (name, w) in want {
        let g = &got.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{ctx}: attribute {name} missing")).1;
        let vals = w["values"].as_array().unwrap();
        match (w["kind"].as_str().unwrap(), g) {
            ("float", AttrValue::Float(v)) => {
                // serde_json's float parsing may be off by an ulp; the attribute is exact.
                let exp: Vec<f64> = vals.iter().map(|x| x.as_f64().unwrap()).collect();
                assert_eq!(v.len(), exp.len(), "{ctx}@{name}");
                for (g, w) in v.iter().zip(&exp) {
                    assert!((g - w).abs() <= 1e-15 * w.abs(), "{ctx}@{name}: got {g}, expected {w}");
                }
            }
            ("int", AttrValue::Int(v)) => assert_eq!(v, &vals.iter().map(|x| x.as_i64().unwrap()).collect::<Vec<_>>(), "{ctx}@{name}"),
            ("uint", AttrValue::UInt(v)) => assert_eq!(v, &vals.iter().map(|x| x.as_u64().unwrap()).collect::<Vec<_>>(), "{ctx}@{name}"),
            ("string", AttrValue::String(v)) => assert_eq!(v, &vals.iter().map(|x| x.as_str().unwrap().to_string()).collect::<Vec<_>>(), "{ctx}@{name}"),
            (k, g) => panic!("{ctx}@{name}: expected {k}, got {g:?}"),
        }
    }
}

async fn check_file(libver: &str) {
    let name = format!("conf_{libver}.h5");
    let f = open(&name).await;
    // The same file read another way: `f` (defaults) reads local metadata on demand,
    // resolves each dataset before reading it (the one-pipeline path of `read_many`) and
    // decodes these small reads in the calling task; `f_pool` runs the metadata planner,
    // reads without resolving first, and decodes every read on the rayon pool.
    let pooled = ReadOptions { inline_decode_bytes: 0, plan_local_metadata: true, ..ReadOptions::default() };
    let f_pool = H5File::open_url(support::fixtures().join(&name).to_str().unwrap(), &StoreOptions::none(), &pooled).await.unwrap();
    let exp = support::expected(&name);
    let datasets = exp["datasets"].as_object().unwrap();
    let mut checked_values = 0usize;
    for (path, want) in datasets {
        let ctx = format!("{libver} {path}");
        let info = f.dataset_info(path).await.unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let shape: Vec<u64> = want["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        assert_eq!(info.shape, shape, "{ctx} shape");
        if let Some(t) = arrow_type(want["dtype"].as_str().unwrap()) {
            assert_eq!(info.data_type, t, "{ctx} type");
        }
        let be = want["dtype"].as_str().unwrap().starts_with('>');
        if matches!(info.data_type, DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 | DataType::Float32 | DataType::Float64) {
            assert_eq!(info.hdf5_type.ends_with(" be"), be, "{ctx} byte order {}", info.hdf5_type);
        }
        let layout = want["layout"].as_str().unwrap();
        match (layout, info.layout) {
            ("compact", Layout::Compact) | ("contiguous", Layout::Contiguous) | ("chunked", Layout::Chunked { .. }) => {}
            (w, g) => panic!("{ctx}: layout got {g:?}, expected {w}"),
        }
        let chunks = want["chunks"].as_array().map(|c| c.iter().map(|x| x.as_u64().unwrap()).collect::<Vec<_>>());
        assert_eq!(info.chunk_shape, chunks, "{ctx} chunks");
        let maxshape = want["maxshape"].as_array().map(|c| c.iter().map(|x| x.as_i64().map_or(0, |v| if v < 0 { u64::MAX } else { v as u64 })).collect::<Vec<_>>());
        assert_eq!(info.max_shape.clone().unwrap_or(info.shape.clone()), maxshape.unwrap_or(shape.clone()), "{ctx} maxshape");
        assert_eq!(info.filters.iter().any(|x| x.starts_with("deflate")), want["compression"] == "gzip", "{ctx} {:?}", info.filters);
        assert_eq!(info.filters.iter().any(|x| x == "shuffle"), want["shuffle"] == true, "{ctx} {:?}", info.filters);
        assert_eq!(info.filters.iter().any(|x| x == "fletcher32"), want["fletcher32"] == true, "{ctx} {:?}", info.filters);
        check_attrs(&ctx, &info.attributes, &want["attrs"]);
        if let Some(fv) = want.get("fillvalue") {
            let got = match info.fill_value {
                None => None,
                Some(FillValue::Float(v)) if info.data_type == DataType::Float32 => Some(Value::from(format!("{:x}", (v as f32).to_bits()))),
                Some(FillValue::Float(v)) => Some(Value::from(format!("{:x}", v.to_bits()))),
                Some(FillValue::Int(v)) => Some(Value::from(v)),
                Some(FillValue::UInt(v)) => Some(Value::from(v)),
            };
            let zero = fv.as_i64() == Some(0) || fv.as_str() == Some("0");
            assert!(got.as_ref() == Some(fv) || (got.is_none() && zero), "{ctx} fill: got {got:?}, expected {fv}");
        }
        if let Some(values) = want.get("values") {
            let a = f.read(path, RowSelection::All).await.unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(a.null_count(), 0, "{ctx}: fill values must not become nulls");
            assert_eq!(&encode(&a), values.as_array().unwrap(), "{ctx} values");
            let b = f_pool.read(path, RowSelection::All).await.unwrap_or_else(|e| panic!("{ctx} (decoded on the pool): {e}"));
            assert_eq!(&encode(&b), values.as_array().unwrap(), "{ctx} values decoded on the pool");
            checked_values += a.len();
            // Row ranges: pick a few ranges that straddle chunk boundaries.
            let n = a.len() as u64;
            if n > 10 {
                let rs = vec![1..3, n / 3..n / 3 + 7, n - 5..n];
                let part = f.read(path, RowSelection::Ranges(rs.clone())).await.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                let all = values.as_array().unwrap();
                let want_part: Vec<Value> = rs.iter().flat_map(|r| all[r.start as usize..r.end as usize].iter().cloned()).collect();
                assert_eq!(encode(&part), want_part, "{ctx} ranges {rs:?}");
            }
        }
    }
    assert!(checked_values > 20_000, "{libver}: only {checked_values} values compared");

    // Root attributes: fixed and variable-length strings, numbers.
    let tree = f.tree().await.unwrap();
    let TreeEntry::Group { path, attributes } = &tree[0] else { panic!("first entry is not the root group") };
    assert_eq!(path, "/");
    check_attrs(&format!("{libver} /"), attributes, &exp["root_attrs"]);
    // The tree lists exactly the groups and datasets h5py sees.
    let groups: BTreeSet<String> = tree.iter().filter_map(|e| match e { TreeEntry::Group { path, .. } if path != "/" => Some(path.clone()), _ => None }).collect();
    let want_groups: BTreeSet<String> = exp["groups"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().to_string()).collect();
    assert_eq!(groups, want_groups, "{libver} groups");
    let ds: BTreeSet<String> = tree.iter().filter_map(|e| match e { TreeEntry::Dataset(d) => Some(d.path.clone()), _ => None }).collect();
    let want_ds: BTreeSet<String> = datasets.keys().cloned().collect();
    assert_eq!(ds, want_ds, "{libver} datasets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earliest_values_match_h5py() {
    check_file("earliest").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v108_values_match_h5py() {
    check_file("v108").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v110_values_match_h5py() {
    check_file("v110").await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_values_match_h5py() {
    check_file("latest").await;
}

/// The chunk indexes each libver produces are the ones we claim to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_index_kinds_per_libver() {
    use ChunkIndexKind::*;
    for lv in LIBVERS {
        let f = open(&format!("conf_{lv}.h5")).await;
        let kind = |p: &'static str| {
            let f = f.clone();
            async move {
                match f.dataset_info(p).await.unwrap().layout {
                    Layout::Chunked { index } => index,
                    l => panic!("{p}: {l:?}"),
                }
            }
        };
        let got = [
            kind("/gt1r/land_ice_segments/h_li").await,
            kind("/gt2l/land_ice_segments/h_li").await,
            kind("/extras/single_chunk").await,
            kind("/extras/implicit_i8").await,
            kind("/extras/btree2_2d").await,
        ];
        let want = match lv {
            "earliest" | "v108" => [BTreeV1; 5],
            _ => [ExtensibleArray, FixedArray, SingleChunk, Implicit, BTreeV2],
        };
        assert_eq!(got, want, "{lv}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_empty_and_unsupported_are_typed() {
    for lv in LIBVERS {
        // Resolved together, each path gets its own result: a missing dataset does not
        // fail its neighbours, and the read that follows finds them resolved.
        let f = open(&format!("conf_{lv}.h5")).await;
        let paths = ["/gt1l/land_ice_segments/h_li", "/gt3r/land_ice_segments/h_li", "gt1l/land_ice_segments/latitude"].map(String::from);
        let infos = f.dataset_infos(&paths).await;
        assert_eq!(infos.len(), 3, "{lv}");
        assert_eq!(infos[0].as_ref().map(|i| i.data_type.clone()).ok(), Some(DataType::Float32), "{lv}");
        assert!(matches!(&infos[1], Err(H5Error::NotFound { path, .. }) if path == "/gt3r/land_ice_segments/h_li"), "{lv}: {:?}", infos[1]);
        assert_eq!(infos[2].as_ref().map(|i| i.path.clone()).ok().as_deref(), Some("/gt1l/land_ice_segments/latitude"), "{lv}");
        let both = f
            .read_many(&[("/gt1l/land_ice_segments/h_li".into(), RowSelection::All), ("/gt1l/land_ice_segments/latitude".into(), RowSelection::Ranges(vec![3..9]))])
            .await
            .unwrap();
        assert_eq!((both[0].len(), both[1].len()), (2500, 6), "{lv}");
        let fresh = open(&format!("conf_{lv}.h5")).await;
        let lat = fresh.read("/gt1l/land_ice_segments/latitude", RowSelection::Ranges(vec![3..9])).await.unwrap();
        assert_eq!(encode(&both[1]), encode(&lat), "{lv}: resolved-first and planned reads agree");
        let f = open(&format!("conf_{lv}.h5")).await;
        assert!(!f.exists("/gt3r").await.unwrap(), "{lv}");
        assert!(f.exists("/gt3l/land_ice_segments").await.unwrap(), "{lv}");
        assert!(f.exists("/gt1l/land_ice_segments/h_li").await.unwrap(), "{lv}");
        let e = f.dataset_info("/gt3r/land_ice_segments/h_li").await.unwrap_err();
        assert!(matches!(e, H5Error::NotFound { .. }), "{lv}: {e}");
        let msg = e.to_string();
        assert!(msg.contains("/gt3r/land_ice_segments/h_li") && msg.contains(&format!("conf_{lv}.h5")), "{msg}");
        let empty = f.read("/gt3l/land_ice_segments/h_li", RowSelection::All).await.unwrap();
        assert_eq!((empty.len(), empty.data_type()), (0, &DataType::Float32), "{lv}");
        let e = f.read("/extras/two_d", RowSelection::All).await.unwrap_err();
        assert!(matches!(e, H5Error::Unsupported { .. }) && e.to_string().contains("/extras/two_d"), "{lv}: {e}");
        let e = f.read("/gt1l/land_ice_segments/h_li", RowSelection::Ranges(vec![0..10, 5..20])).await.unwrap_err();
        assert!(matches!(e, H5Error::InvalidSelection { .. }), "{lv}: {e}");
        let e = f.read("/gt1l/land_ice_segments/h_li", RowSelection::Ranges(vec![0..2501])).await.unwrap_err();
        assert!(e.to_string().contains("got end 2501, expected at most 2500"), "{lv}: {e}");
    }
    let e = H5File::open_url("/nonexistent/granule.h5", &StoreOptions::none(), &ReadOptions::default()).await.unwrap_err();
    assert!(matches!(e, H5Error::NotFound { .. }) && e.to_string().contains("/nonexistent/granule.h5"), "{e}");
}

/// Truncated copies give typed errors naming the url, never a panic and never wrong
/// values: every read either fails or returns exactly what h5py wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_files_are_typed_errors_never_wrong_values() {
    let src = std::fs::read(support::fixtures().join("conf_earliest.h5")).unwrap();
    let exp = support::expected("conf_earliest.h5");
    let dir = tempfile::tempdir().unwrap();
    for (i, cut) in [0usize, 7, 100, 1000, 5000, src.len() / 2, src.len() - 10].into_iter().enumerate() {
        let p = dir.path().join(format!("cut{i}.h5"));
        std::fs::write(&p, &src[..cut]).unwrap();
        let url = p.to_str().unwrap().to_string();
        // With and without the metadata planner (local files skip it by default).
        for opts in [ReadOptions::default(), ReadOptions { plan_local_metadata: true, ..ReadOptions::default() }] {
            let mut errors = 0;
            let f = match H5File::open_url(&url, &StoreOptions::none(), &opts).await {
                Ok(f) => f,
                Err(e) => {
                    assert!(e.to_string().contains(&url), "{e}");
                    assert!(cut < 5000, "{url}: {e}");
                    continue;
                }
            };
            for (path, want) in exp["datasets"].as_object().unwrap() {
                let Some(values) = want.get("values") else { continue };
                match f.read(path, RowSelection::All).await {
                    Ok(a) => assert_eq!(&encode(&a), values.as_array().unwrap(), "{url} {path}: wrong values from a truncated file"),
                    Err(e) => {
                        errors += 1;
                        assert!(e.to_string().contains(&url) && e.to_string().contains(path.as_str()), "{e}");
                        assert!(matches!(e, H5Error::Corrupt { .. } | H5Error::NotFound { .. }), "{e:?}");
                    }
                }
            }
            if cut <= src.len() / 2 {
                assert!(errors > 0, "{url}: truncated to {cut} of {} bytes yet every read succeeded", src.len());
            }
        }
    }
}

/// Flipped metadata bytes never panic in magg's own code (the wave planner scans headers,
/// heaps and index nodes of arbitrary bytes; a panic inside `hdf5-reader` is caught and
/// typed, but ours must not happen at all). Values read from such files are not checked:
/// HDF5 metadata without checksums cannot always be told from valid metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_metadata_never_panics_in_our_code() {
    use std::sync::{Arc, Mutex};
    static OURS: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location().filter(|l| l.file().contains("src/h5/")) {
            OURS.lock().unwrap().push(format!("{}:{}: {info}", l.file(), l.line()));
        }
        default(info);
    }));
    let paths = [
        "/gt1l/land_ice_segments/h_li",
        "/gt1r/land_ice_segments/latitude",
        "/gt2l/land_ice_segments/atl06_quality_summary",
        "/dense_group/d17",
        "/extras/contiguous_f8",
        "/extras/compact_i2",
    ];
    let reqs: Vec<(String, RowSelection)> = paths.iter().map(|p| (p.to_string(), RowSelection::Ranges(vec![1..3]))).collect();
    let mut opened = 0;
    for libver in ["earliest", "latest"] {
        let src = std::fs::read(support::fixtures().join(format!("conf_{libver}.h5"))).unwrap();
        let positions = (0..src.len().min(16 * 1024)).step_by(41).chain((16 * 1024..src.len()).step_by(1999));
        for pos in positions {
            let mut bytes = src.clone();
            bytes[pos] ^= 0xa5;
            let mem = Arc::new(object_store::memory::InMemory::new());
            let p = object_store::path::Path::from("x.h5");
            object_store::ObjectStoreExt::put(mem.as_ref(), &p, bytes.into()).await.unwrap();
            let opts = ReadOptions { block_size: 4096, ..ReadOptions::default() };
            let Ok(f) = H5File::open(mem, p, "mem://x.h5", &opts).await else { continue };
            opened += 1;
            let _ = f.read_many(&reqs).await;
            let _ = f.dataset_info("/gt2r/land_ice_segments/h_li_sigma").await;
        }
    }
    assert!(opened > 500, "only {opened} corrupted files opened");
    let ours = OURS.lock().unwrap();
    assert!(ours.is_empty(), "panics in magg's h5 code:\n{}", ours.join("\n"));
}
