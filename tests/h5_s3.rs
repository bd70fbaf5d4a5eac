//! Reading through `s3://` against a real S3-compatible server (moto_server from the test
//! venv, started by the shared `common::Moto`) on 127.0.0.1: same values as h5py wrote,
//! typed NotFound for a missing key.
#![allow(clippy::single_range_in_vec_init)] // one-range row selections are intended

mod common;
#[path = "h5_support.rs"]
mod support;

use arrow::array::AsArray;
use arrow::datatypes::Float32Type;
use magg::h5::{H5Error, H5File, ReadOptions, RowSelection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_s3_compatible_server() {
    let s3 = common::Moto::start();
    s3.create_bucket("granules");
    s3.upload("granules", "ATL06/atl06_like.h5", &support::fixtures().join("atl06_like.h5"));
    let opts = s3.store_options();
    let url = "s3://granules/ATL06/atl06_like.h5";
    let f = H5File::open_url(url, &opts, &ReadOptions::default()).await.unwrap();
    let exp = support::expected("atl06_like.h5");
    let want = exp["datasets"]["/gt1l/land_ice_segments/h_li"]["values"].as_array().unwrap();
    let got = f.read("/gt1l/land_ice_segments/h_li", RowSelection::All).await.unwrap();
    let got = got.as_primitive::<Float32Type>();
    assert_eq!(got.len(), want.len());
    for (i, w) in want.iter().enumerate() {
        assert_eq!(format!("{:x}", got.value(i).to_bits()), w.as_str().unwrap(), "row {i}");
    }
    let part = f.read("/gt1l/land_ice_segments/h_li", RowSelection::Ranges(vec![19_990..20_010])).await.unwrap();
    assert_eq!(part.as_primitive::<Float32Type>().values()[..], got.values()[19_990..20_010]);

    // The planned read of one beam's core datasets (libver latest: v2 headers, extensible
    // arrays), every value as h5py wrote it, and no metadata fetched behind the planner.
    s3.upload("granules", "ATL06/atl06_like_latest.h5", &support::fixtures().join("atl06_like_latest.h5"));
    let f = H5File::open_url("s3://granules/ATL06/atl06_like_latest.h5", &opts, &ReadOptions::default()).await.unwrap();
    let exp = support::expected("atl06_like_latest.h5");
    let names = ["latitude", "longitude", "h_li", "h_li_sigma", "atl06_quality_summary"];
    let reqs: Vec<(String, RowSelection)> =
        names.iter().map(|d| (format!("/gt1l/land_ice_segments/{d}"), RowSelection::All)).collect();
    let arrays = f.read_many(&reqs).await.unwrap();
    for ((path, _), a) in reqs.iter().zip(&arrays) {
        let want = exp["datasets"][path.as_str()]["values"].as_array().unwrap();
        assert_eq!(a.len(), want.len(), "{path}");
    }
    let lat = arrays[0].as_primitive::<arrow::datatypes::Float64Type>();
    let want = exp["datasets"]["/gt1l/land_ice_segments/latitude"]["values"].as_array().unwrap();
    for (i, w) in want.iter().enumerate() {
        assert_eq!(format!("{:x}", lat.value(i).to_bits()), w.as_str().unwrap(), "latitude row {i}");
    }
    assert_eq!(f.metadata_stats().demand_fetches, 0);

    let missing = "s3://granules/ATL06/nope.h5";
    let e = H5File::open_url(missing, &opts, &ReadOptions::default()).await.unwrap_err();
    assert!(matches!(e, H5Error::NotFound { .. }) && e.to_string().contains(missing), "{e}");
}
