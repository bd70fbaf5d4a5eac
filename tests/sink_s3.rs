//! The sink writes `s3://` stores through the same object_store code path as local ones:
//! template, chunks, resume detection, consolidation and overwrite against moto_server
//! (from the test venv) on 127.0.0.1.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, UInt64Array};
use arrow::datatypes::DataType;
use magg::sink::{Codec, SinkError, StoreLayout, StoreTemplate, VariableSpec, ZarrSink};
use magg_udfs::healpix::LatitudeMode;
use object_store::ObjectStore;
use serde_json::{Map, Value};
use zarrs_object_store::AsyncObjectStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_round_trip_on_s3() {
    let s3 = common::Moto::start();
    s3.create_bucket("out");
    let opts = s3.store_options();
    let url = "s3://out/runs/antarctica.zarr";
    let (store, prefix) = magg::store::resolve(url, &opts).expect("resolve s3 url");
    let parents: Vec<i64> = [(-75.0, -100.0), (-80.0, 30.0)]
        .iter()
        .map(|&(lat, lon)| magg_udfs::morton::from_lat_lon(lat, lon, 6, LatitudeMode::Sphere).expect("morton"))
        .collect();
    let template = StoreTemplate {
        parent_order: 6,
        child_order: 9,
        layout: StoreLayout::Compact { parents: parents.clone() },
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
                attributes: Map::new(),
            },
        ],
        codec: Codec::Zstd { level: 3 },
        attributes: Map::new(),
    };
    let sink = ZarrSink::create(Arc::clone(&store), prefix.clone(), url, &template, false)
        .await
        .expect("create on s3");

    // Two concurrent writers of different cells (as Lambda workers would be).
    let write = |sink: ZarrSink, parent: i64, base: i64| async move {
        let (nested, _) = magg_udfs::morton::to_nested(parent).expect("nested");
        let cells = UInt64Array::from(vec![nested * 64 + 1, nested * 64 + 63]);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![base, base + 1])),
            Arc::new(Float64Array::from(vec![1000.0 + base as f64, 1500.5])),
        ];
        sink.write_cell(parent, &cells, &cols).await
    };
    let (a, b) = tokio::join!(
        tokio::spawn(write(sink.clone(), parents[0], 10)),
        tokio::spawn(write(sink.clone(), parents[1], 20))
    );
    assert_eq!(a.expect("join").expect("write 0").cells_with_data, 2);
    assert_eq!(b.expect("join").expect("write 1").cells_with_data, 2);
    sink.consolidate().await.expect("consolidate");

    // A worker that only knows the url sees the template and the finished cells.
    let worker = ZarrSink::open(Arc::clone(&store), prefix.clone(), url).await.expect("open on s3");
    assert_eq!(worker.template().layout, template.layout);
    assert_eq!(worker.template().codec, Codec::Zstd { level: 3 });
    for p in &parents {
        assert!(worker.cell_complete(*p).await.expect("check"), "cell {p} complete on s3");
    }

    // zarrs reads the chunks back from S3.
    let prefixed: Arc<dyn ObjectStore> = Arc::new(object_store::prefix::PrefixStore::new(Arc::clone(&store), prefix.clone()));
    let zstore = Arc::new(AsyncObjectStore::new(prefixed));
    let count = zarrs::array::Array::async_open(Arc::clone(&zstore), "/9/count").await.expect("open count");
    let c: Vec<i32> = count.async_retrieve_chunk(&[1]).await.expect("chunk 1");
    assert_eq!((c[1], c[63], c[0]), (20, 21, 0));
    let m = zarrs::array::Array::async_open(Arc::clone(&zstore), "/9/h_mean").await.expect("open mean");
    let m: Vec<f32> = m.async_retrieve_chunk(&[0]).await.expect("chunk 0");
    assert_eq!((m[1], m[63]), (1010.0, 1500.5));
    assert!(m[2].is_nan());
    let root = zarrs::group::Group::async_open(Arc::clone(&zstore), "/").await.expect("root group");
    let root_json: Value = serde_json::to_value(root.metadata()).expect("json");
    assert!(root_json.get("consolidated_metadata").is_some(), "root metadata: {root_json}");

    // Refuses to clobber; overwrite empties the prefix.
    let err = ZarrSink::create(Arc::clone(&store), prefix.clone(), url, &template, false)
        .await
        .expect_err("exists");
    assert!(matches!(err, SinkError::Exists { .. }) && err.to_string().contains(url), "{err}");
    let fresh = ZarrSink::create(Arc::clone(&store), prefix, url, &template, true).await.expect("overwrite");
    assert!(!fresh.cell_complete(parents[0]).await.expect("check"));
}
