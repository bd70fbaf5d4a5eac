use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, UInt64Array};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Map, Value, json};
use zarrs::array::Array as ZArray;
use zarrs_object_store::AsyncObjectStore;

use super::*;

const URL: &str = "memory://test/out.zarr";

fn parents() -> Vec<i64> {
    [(-75.0, -100.0), (-80.0, 30.0), (-70.0, 160.0)]
        .iter()
        .map(|&(lat, lon)| {
            magg_udfs::morton::from_lat_lon(lat, lon, 6, magg_udfs::healpix::LatitudeMode::Sphere).expect("morton")
        })
        .collect()
}

fn template(layout: StoreLayout, codec: Codec) -> StoreTemplate {
    let mut units = Map::new();
    units.insert("units".into(), json!("m"));
    StoreTemplate {
        parent_order: 6,
        child_order: 8,
        layout,
        variables: vec![
            VariableSpec {
                name: "count".into(),
                data_type: DataType::Int32,
                fill_value: 0.0,
                attributes: Map::new(),
            },
            VariableSpec {
                name: "h_mean".into(),
                data_type: DataType::Float32,
                fill_value: f64::NAN,
                attributes: units,
            },
            VariableSpec {
                name: "h_var".into(),
                data_type: DataType::Float64,
                fill_value: f64::NAN,
                attributes: Map::new(),
            },
        ],
        codec,
        attributes: {
            let mut a = Map::new();
            a.insert("source".into(), json!("unit test"));
            a
        },
    }
}

fn first_child(parent: i64) -> u64 {
    let (nested, order) = magg_udfs::morton::to_nested(parent).expect("nested");
    assert_eq!(order, 6);
    nested * 16
}

/// Rows for children 5, 0 and 9 of the parent (out of order), one null mean.
fn rows(parent: i64) -> (UInt64Array, Vec<ArrayRef>) {
    let f = first_child(parent);
    let cells = UInt64Array::from(vec![f + 5, f, f + 9]);
    let count: ArrayRef = Arc::new(Int64Array::from(vec![3_i64, 1, 7]));
    let mean: ArrayRef = Arc::new(Float64Array::from(vec![Some(101.5), None, Some(99.25)]));
    let var: ArrayRef = Arc::new(Float32Array::from(vec![0.5_f32, 0.0, 2.25]));
    (cells, vec![count, mean, var])
}

async fn store_with(t: &StoreTemplate) -> (Arc<dyn ObjectStore>, ZarrSink) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let sink = ZarrSink::create(Arc::clone(&store), Path::from("out.zarr"), URL, t, false)
        .await
        .expect("create");
    (store, sink)
}

async fn zarray(store: &Arc<dyn ObjectStore>, name: &str) -> ZArray<AsyncObjectStore<Arc<dyn ObjectStore>>> {
    let prefixed: Arc<dyn ObjectStore> = Arc::new(object_store::prefix::PrefixStore::new(Arc::clone(store), "out.zarr"));
    ZArray::async_open(Arc::new(AsyncObjectStore::new(prefixed)), &format!("/8/{name}"))
        .await
        .unwrap_or_else(|e| panic!("zarrs opens 8/{name}: {e}"))
}

async fn object(store: &Arc<dyn ObjectStore>, key: &str) -> Option<bytes::Bytes> {
    match store.get(&Path::from(format!("out.zarr/{key}"))).await {
        Ok(r) => Some(r.bytes().await.expect("bytes")),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{key}: {e}"),
    }
}

#[tokio::test]
async fn compact_round_trip_through_zarrs() {
    let ps = parents();
    let t = template(StoreLayout::Compact { parents: ps.clone() }, Codec::None);
    let (store, sink) = store_with(&t).await;
    assert_eq!(sink.chunk_len(), 16);
    assert_eq!(sink.chunk_index(ps[1]).expect("index"), 1);
    let (cells, cols) = rows(ps[1]);
    let stats = sink.write_cell(ps[1], &cells, &cols).await.expect("write");
    assert_eq!(stats.cells_with_data, 3);
    // 16 cells x (4 + 4 + 8 + 8 + 8) bytes, uncompressed.
    assert_eq!(stats.bytes_written, 16 * 32);

    let count = zarray(&store, "count").await;
    assert_eq!(count.shape(), &[48]);
    let c: Vec<i32> = count.async_retrieve_chunk(&[1]).await.expect("count chunk");
    let mut want = vec![0_i32; 16];
    want[5] = 3;
    want[0] = 1;
    want[9] = 7;
    assert_eq!(c, want);
    let m: Vec<f32> = zarray(&store, "h_mean").await.async_retrieve_chunk(&[1]).await.expect("mean chunk");
    assert_eq!(m[5], 101.5);
    assert_eq!(m[9], 99.25);
    assert!(m[0].is_nan(), "null row must be the fill value, got {}", m[0]);
    assert_eq!(m.iter().filter(|v| v.is_nan()).count(), 14);
    let v: Vec<f64> = zarray(&store, "h_var").await.async_retrieve_chunk(&[1]).await.expect("var chunk");
    assert_eq!((v[0], v[5], v[9]), (0.0, 0.5, 2.25));
    assert!(v[1].is_nan());

    let f = first_child(ps[1]);
    let ids: Vec<u64> = zarray(&store, "cell_ids").await.async_retrieve_chunk(&[1]).await.expect("ids");
    assert_eq!(ids, (f..f + 16).collect::<Vec<_>>());
    let mortons: Vec<i64> = zarray(&store, "morton").await.async_retrieve_chunk(&[1]).await.expect("mortons");
    for (id, m) in ids.iter().zip(&mortons) {
        assert_eq!(*m, magg_udfs::morton::from_nested(*id, 8).expect("morton"));
        assert_eq!(magg_udfs::morton::parent(*m, 6).expect("parent"), ps[1], "child {m} of {}", ps[1]);
    }
    // Untouched parents have no chunks: they read as fill.
    assert!(object(&store, "8/count/c/0").await.is_none());
    assert!(object(&store, "8/count/c/1").await.is_some());
}

#[tokio::test]
async fn metadata_matches_zarr_python() {
    let ps = parents();
    let t = template(StoreLayout::Compact { parents: ps.clone() }, Codec::None);
    let (store, sink) = store_with(&t).await;
    let doc: Value = serde_json::from_slice(&object(&store, "8/h_mean/zarr.json").await.expect("array json")).expect("json");
    let keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "shape",
            "data_type",
            "chunk_grid",
            "chunk_key_encoding",
            "fill_value",
            "codecs",
            "attributes",
            "dimension_names",
            "zarr_format",
            "node_type",
            "storage_transformers"
        ]
    );
    assert_eq!(doc["shape"], json!([48]));
    assert_eq!(doc["data_type"], "float32");
    assert_eq!(doc["fill_value"], "NaN");
    assert_eq!(doc["chunk_grid"], json!({"name": "regular", "configuration": {"chunk_shape": [16]}}));
    assert_eq!(doc["chunk_key_encoding"], json!({"name": "default", "configuration": {"separator": "/"}}));
    assert_eq!(doc["codecs"], json!([{"name": "bytes", "configuration": {"endian": "little"}}]));
    assert_eq!(doc["dimension_names"], json!(["cells"]));
    assert_eq!(doc["attributes"], json!({"units": "m"}));
    let ids: Value = serde_json::from_slice(&object(&store, "8/cell_ids/zarr.json").await.expect("ids json")).expect("json");
    assert_eq!((ids["data_type"].clone(), ids["fill_value"].clone()), (json!("uint64"), json!(0)));
    let count: Value = serde_json::from_slice(&object(&store, "8/count/zarr.json").await.expect("count json")).expect("json");
    assert_eq!((count["data_type"].clone(), count["fill_value"].clone()), (json!("int32"), json!(0)));

    let group: Value = serde_json::from_slice(&object(&store, "8/zarr.json").await.expect("group json")).expect("json");
    let attrs = &group["attributes"];
    assert_eq!(attrs["zarr_conventions"][0]["uuid"], "7b255807-140c-42ca-97f6-7a1cfecdbc38");
    assert_eq!(attrs["zarr_conventions"][0]["name"], "dggs");
    assert_eq!(
        attrs["dggs"],
        json!({"name": "healpix", "refinement_level": 8, "indexing_scheme": "nested",
               "spatial_dimension": "cells",
               "ellipsoid": {"name": "WGS84", "semimajor_axis": 6378137.0, "inverse_flattening": 298.257223563},
               "coordinate": "cell_ids", "compression": "none"})
    );
    assert_eq!(attrs["source"], "unit test");
    assert_eq!(attrs["magg"]["parents"], json!(ps));

    sink.consolidate().await.expect("consolidate");
    let root: Value = serde_json::from_slice(&object(&store, "zarr.json").await.expect("root")).expect("json");
    assert_eq!(root["node_type"], "group");
    assert_eq!(root["consolidated_metadata"]["kind"], "inline");
    assert_eq!(root["consolidated_metadata"]["must_understand"], false);
    let members: Vec<&String> = root["consolidated_metadata"]["metadata"].as_object().expect("members").keys().collect();
    assert_eq!(members, ["8", "8/cell_ids", "8/count", "8/h_mean", "8/h_var", "8/morton"]);
    assert_eq!(root["consolidated_metadata"]["metadata"]["8/h_mean"], doc);
    assert_eq!(
        root["consolidated_metadata"]["metadata"]["8"]["consolidated_metadata"],
        json!({"kind": "inline", "must_understand": false, "metadata": {}})
    );
}

#[tokio::test]
async fn rewrite_is_byte_identical() {
    let ps = parents();
    for codec in [Codec::None, Codec::Zstd { level: 3 }] {
        let t = template(StoreLayout::Compact { parents: ps.clone() }, codec);
        let (store, sink) = store_with(&t).await;
        let (cells, cols) = rows(ps[2]);
        sink.write_cell(ps[2], &cells, &cols).await.expect("write");
        let names = ["count", "h_mean", "h_var", "morton", "cell_ids"];
        let mut first = Vec::new();
        for n in names {
            first.push(object(&store, &format!("8/{n}/c/2")).await.expect("chunk"));
        }
        // Same rows in another order: same bytes.
        let idx = arrow::array::UInt32Array::from(vec![2_u32, 0, 1]);
        let cells2 = arrow::compute::take(&cells, &idx, None).expect("take");
        let cells2 = cells2.as_any().downcast_ref::<UInt64Array>().expect("u64").clone();
        let cols2: Vec<ArrayRef> = cols.iter().map(|c| arrow::compute::take(c, &idx, None).expect("take")).collect();
        sink.write_cell(ps[2], &cells2, &cols2).await.expect("rewrite");
        for (n, before) in names.iter().zip(&first) {
            let after = object(&store, &format!("8/{n}/c/2")).await.expect("chunk");
            assert!(after == *before, "{codec:?}: chunk 8/{n}/c/2 changed on rewrite");
        }
    }
}

#[tokio::test]
async fn resume_detects_complete_cells() {
    let ps = parents();
    let t = template(StoreLayout::Compact { parents: ps.clone() }, Codec::None);
    let (store, sink) = store_with(&t).await;
    assert!(!sink.cell_complete(ps[0]).await.expect("check"));
    let (cells, cols) = rows(ps[0]);
    sink.write_cell(ps[0], &cells, &cols).await.expect("write");
    assert!(sink.cell_complete(ps[0]).await.expect("check"));
    assert!(!sink.cell_complete(ps[1]).await.expect("check"));
    // A lost variable chunk makes the cell incomplete even with the marker present.
    store.delete(&Path::from("out.zarr/8/h_var/c/0")).await.expect("delete");
    assert!(!sink.cell_complete(ps[0]).await.expect("check"));
    sink.write_cell(ps[0], &cells, &cols).await.expect("write");
    // Without the marker (a crash before the last put) the cell is incomplete.
    store.delete(&Path::from("out.zarr/8/cell_ids/c/0")).await.expect("delete");
    assert!(!sink.cell_complete(ps[0]).await.expect("check"));

    // A worker reopening the store sees the same template and state.
    let reopened = ZarrSink::open(Arc::clone(&store), Path::from("out.zarr"), URL).await.expect("open");
    assert_eq!(reopened.template().parent_order, t.parent_order);
    assert_eq!(reopened.template().child_order, t.child_order);
    assert_eq!(reopened.template().layout, t.layout);
    assert_eq!(reopened.template().codec, t.codec);
    assert_eq!(reopened.template().attributes, t.attributes);
    let names: Vec<&str> = reopened.template().variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["count", "h_mean", "h_var"]);
    assert_eq!(reopened.template().variables[0].data_type, DataType::Int32);
    assert!(reopened.template().variables[1].fill_value.is_nan());
    assert_eq!(reopened.template().variables[1].attributes, t.variables[1].attributes);
    assert!(!reopened.cell_complete(ps[0]).await.expect("check"));
    reopened.write_cell(ps[0], &cells, &cols).await.expect("write");
    assert!(sink.cell_complete(ps[0]).await.expect("check"));
}

#[tokio::test]
async fn open_without_template_names_the_store() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let err = ZarrSink::open(store, Path::from("nothing.zarr"), "s3://bucket/nothing.zarr")
        .await
        .expect_err("no template");
    assert!(matches!(err, SinkError::TemplateMissing { .. }), "{err}");
    assert!(err.to_string().contains("s3://bucket/nothing.zarr"), "{err}");
}

#[tokio::test]
async fn full_sphere_layout_indexes_by_nested_id() {
    let ps = parents();
    let t = template(StoreLayout::FullSphere, Codec::None);
    let (store, sink) = store_with(&t).await;
    let (nested, _) = magg_udfs::morton::to_nested(ps[0]).expect("nested");
    assert_eq!(sink.chunk_index(ps[0]).expect("index"), nested);
    let (cells, cols) = rows(ps[0]);
    sink.write_cell(ps[0], &cells, &cols).await.expect("write");
    let count = zarray(&store, "count").await;
    assert_eq!(count.shape(), &[12 * 4_u64.pow(6) * 16]);
    let c: Vec<i32> = count.async_retrieve_chunk(&[nested]).await.expect("chunk");
    assert_eq!((c[0], c[5], c[9], c[1]), (1, 3, 7, 0));
    let ids: Vec<u64> = zarray(&store, "cell_ids").await.async_retrieve_chunk(&[nested]).await.expect("ids");
    assert_eq!(ids[0], nested * 16);
    assert!(sink.cell_complete(ps[0]).await.expect("check"));
    // A parent at the wrong order has no chunk.
    let coarse = magg_udfs::morton::parent(ps[0], 5).expect("parent");
    let err = sink.chunk_index(coarse).expect_err("wrong order");
    assert!(err.to_string().contains(&coarse.to_string()), "{err}");
}

#[tokio::test]
async fn zstd_chunks_are_compressed_and_read_back() {
    let ps = parents();
    let t = template(StoreLayout::Compact { parents: ps.clone() }, Codec::Zstd { level: 3 });
    let (store, sink) = store_with(&t).await;
    let (cells, cols) = rows(ps[0]);
    let stats = sink.write_cell(ps[0], &cells, &cols).await.expect("write");
    assert!(stats.bytes_written < 16 * 32, "zstd wrote {} bytes", stats.bytes_written);
    let raw = object(&store, "8/count/c/0").await.expect("chunk");
    assert_eq!(&raw[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd frame magic");
    let doc: Value = serde_json::from_slice(&object(&store, "8/count/zarr.json").await.expect("json")).expect("json");
    assert_eq!(doc["codecs"][1], json!({"name": "zstd", "configuration": {"level": 3, "checksum": false}}));
    let c: Vec<i32> = zarray(&store, "count").await.async_retrieve_chunk(&[0]).await.expect("chunk");
    assert_eq!((c[0], c[5], c[9], c[15]), (1, 3, 7, 0));
    let reopened = ZarrSink::open(Arc::clone(&store), Path::from("out.zarr"), URL).await.expect("open");
    assert_eq!(reopened.template().codec, Codec::Zstd { level: 3 });
}

#[tokio::test]
async fn existing_store_needs_overwrite() {
    let ps = parents();
    let t = template(StoreLayout::Compact { parents: ps.clone() }, Codec::None);
    let (store, sink) = store_with(&t).await;
    let (cells, cols) = rows(ps[0]);
    sink.write_cell(ps[0], &cells, &cols).await.expect("write");
    let err = ZarrSink::create(Arc::clone(&store), Path::from("out.zarr"), URL, &t, false)
        .await
        .expect_err("must refuse");
    let msg = err.to_string();
    assert!(matches!(err, SinkError::Exists { .. }), "{msg}");
    assert!(msg.contains(URL) && msg.contains("--overwrite"), "{msg}");
    // Nothing was touched.
    assert!(object(&store, "8/count/c/0").await.is_some());
    let fresh = ZarrSink::create(Arc::clone(&store), Path::from("out.zarr"), URL, &t, true)
        .await
        .expect("overwrite");
    assert!(object(&store, "8/count/c/0").await.is_none(), "old chunks must go");
    assert!(!fresh.cell_complete(ps[0]).await.expect("check"));
    // A sibling store under another prefix is not affected by the overwrite.
    let other = ZarrSink::create(Arc::clone(&store), Path::from("other.zarr"), "memory://other", &t, false)
        .await
        .expect("sibling");
    other.write_cell(ps[0], &cells, &cols).await.expect("write");
    ZarrSink::create(Arc::clone(&store), Path::from("out.zarr"), URL, &t, true).await.expect("overwrite");
    assert!(other.cell_complete(ps[0]).await.expect("check"));
    // Overwrite never deletes a location that is not a zarr store.
    store
        .put(&Path::from("notes/readme.txt"), bytes::Bytes::from_static(b"keep me").into())
        .await
        .expect("put");
    let err = ZarrSink::create(Arc::clone(&store), Path::from("notes"), "memory://notes", &t, true)
        .await
        .expect_err("not a store");
    assert!(matches!(err, SinkError::NotAStore { objects: 1, .. }), "{err}");
    assert!(err.to_string().contains("memory://notes"), "{err}");
    let kept = store.get(&Path::from("notes/readme.txt")).await.expect("kept").bytes().await.expect("bytes");
    assert_eq!(&kept[..], b"keep me");
}

#[tokio::test]
async fn bad_rows_are_rejected_with_names() {
    let ps = parents();
    let t = template(StoreLayout::Compact { parents: ps.clone() }, Codec::None);
    let (_store, sink) = store_with(&t).await;
    let (_, cols) = rows(ps[0]);
    let outside = first_child(ps[1]) + 3;
    let f = first_child(ps[0]);
    let err = sink
        .write_cell(ps[0], &UInt64Array::from(vec![f, outside, f + 1]), &cols)
        .await
        .expect_err("outside");
    let msg = err.to_string();
    assert!(matches!(err, SinkError::CellOutsideParent { .. }), "{msg}");
    assert!(msg.contains(&outside.to_string()) && msg.contains(&ps[0].to_string()), "{msg}");
    assert!(!sink.cell_complete(ps[0]).await.expect("check"), "a rejected write must write nothing");

    let err = sink
        .write_cell(ps[0], &UInt64Array::from(vec![f, f + 2, f]), &cols)
        .await
        .expect_err("duplicate");
    assert!(matches!(err, SinkError::DuplicateCell { cell, .. } if cell == f), "{err}");

    let err = sink
        .write_cell(ps[0], &UInt64Array::from(vec![f, f + 1, f + 2]), &cols[..2])
        .await
        .expect_err("columns");
    assert!(err.to_string().contains("got 2 columns, expected 3"), "{err}");

    let unknown = magg_udfs::morton::from_lat_lon(10.0, 10.0, 6, magg_udfs::healpix::LatitudeMode::Sphere).expect("m");
    let err = sink.chunk_index(unknown).expect_err("unknown");
    assert!(matches!(err, SinkError::UnknownParent { parent, count: 3, .. } if parent == unknown), "{err}");

    // A count too large for int32 is an error, not a silent fill.
    let big: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1_i64 << 40, 1, 1])),
        Arc::clone(&cols[1]),
        Arc::clone(&cols[2]),
    ];
    let err = sink
        .write_cell(ps[0], &UInt64Array::from(vec![f, f + 1, f + 2]), &big)
        .await
        .expect_err("overflow");
    assert!(matches!(&err, SinkError::Cast { variable, .. } if variable == "count"), "{err}");
}

#[tokio::test]
async fn invalid_templates_are_rejected() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut t = template(StoreLayout::FullSphere, Codec::None);
    t.variables[0].fill_value = 0.5;
    let err = ZarrSink::create(Arc::clone(&store), Path::from("a"), "memory://a", &t, false)
        .await
        .expect_err("fractional int fill");
    assert!(err.to_string().contains("count") && err.to_string().contains("0.5"), "{err}");
    let mut t = template(StoreLayout::FullSphere, Codec::None);
    t.variables[1].name = "cell_ids".into();
    assert!(ZarrSink::create(Arc::clone(&store), Path::from("b"), "memory://b", &t, false).await.is_err());
    let mut t = template(StoreLayout::FullSphere, Codec::None);
    t.variables[2].data_type = DataType::Utf8;
    let err = ZarrSink::create(Arc::clone(&store), Path::from("c"), "memory://c", &t, false)
        .await
        .expect_err("utf8");
    assert!(err.to_string().contains("h_var"), "{err}");
    let t = template(StoreLayout::Compact { parents: vec![123] }, Codec::None);
    assert!(ZarrSink::create(store, Path::from("d"), "memory://d", &t, false).await.is_err());
}
