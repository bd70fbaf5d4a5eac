//! I/O efficiency of the reader, measured with a counting object store: round-trip waves,
//! bytes fetched, and which chunks a row-range read touches. The store injects 30 ms per
//! request so that requests issued together overlap as they would on S3 (wave counting
//! needs overlap; nothing here asserts on time).
#![allow(clippy::single_range_in_vec_init)] // one-range row selections are intended

#[path = "h5_support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float32Type, Float64Type};
use magg::h5::{H5File, MetadataStats, ReadOptions, RowSelection};
use magg::store::{CountingStore, IoStats};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

const CORE: [&str; 5] = ["latitude", "longitude", "h_li", "h_li_sigma", "atl06_quality_summary"];

async fn counted(name: &str) -> (CountingStore, Path) {
    let mem = Arc::new(InMemory::new());
    let p = Path::from(name);
    let bytes = std::fs::read(support::fixtures().join(name)).unwrap();
    mem.put(&p, bytes.into()).await.unwrap();
    (CountingStore::new(mem, Some(Duration::from_millis(30))), p)
}

/// (row offset, stored size) of the chunks of `dataset` in the fixture, as h5py reports.
fn chunks(exp: &serde_json::Value, dataset: &str) -> Vec<(u64, u64)> {
    exp["datasets"][dataset]["chunk_index"]
        .as_array()
        .unwrap_or_else(|| panic!("no chunk index for {dataset}"))
        .iter()
        .map(|c| (c[0].as_u64().unwrap(), c[2].as_u64().unwrap()))
        .collect()
}

/// The ATL06-like granule as libhdf5 writes it with each `libver` (superblock 0 / v1
/// headers / symbol tables / v1 B-tree chunk index; superblock 3 / v2 headers / compact
/// links / extensible-array chunk index with layout message v4 or v5).
const LIBVERS: [&str; 3] = ["atl06_like.h5", "atl06_like_v110.h5", "atl06_like_latest.h5"];

/// Metadata rounds after the open that reading the 5 core datasets of `beam` needs at
/// least, with 32 KiB blocks: the depth of the longest chain of pointers that lead into a
/// block not fetched before (no plan can fetch a block before it knows its address). In
/// the `v110`/`latest` files every beam group and `land_ice_segments` gained links after
/// megabytes of data were written, so the links live in header continuation chunks spread
/// over the file, and extensible-array index blocks sit after the chunks they index. The
/// chains (block numbers, `->` = "holds the address of"):
///
/// - earliest gt1l: 0 -> {17} (names; child headers speculatively with them) -> data
/// - earliest gt2r/gt3r: 0 -> {82} -> {99} (names; child headers with them) -> data
/// - v110 gt1l: 0 -> 81 (root continuation with the gt1l link) -> 16 (h_li link) -> 6 (h_li header) -> data
/// - v110 gt2r: 0 -> 81 (gt2r, land_ice_segments) -> 97/102 (links, headers, indexes) -> data
/// - v110 gt3r: 0 -> 27 -> 102 (root continuations; gt3r link) -> 135 (land_ice_segments)
///   -> 152 (quality header) -> 162 (its index block) -> data
/// - latest gt1l: 0 -> 97 (gt1l link) -> 16 (h_li_sigma header) -> 21 (its index block) -> data
/// - latest gt2r: 0 -> 75 (gt2r link) -> 81 -> 70 (h_li link) -> 82 (h_li header) -> data
/// - latest gt3r: 0 -> 22 -> 135 (root continuations; gt3r link) -> 129 (gt3r header)
///   -> 151/156 (land_ice_segments continuations: links and headers) -> 162 (index blocks) -> data
///
/// So the 4-wave target (open, 2 rounds, data) is met by every `earliest` beam and is
/// impossible for 5 of the 6 `v110`/`latest` beams; for those the planner must not need
/// more rounds than the chain is deep.
fn min_rounds(name: &str, beam: &str) -> u64 {
    match (name, beam) {
        ("atl06_like.h5", "gt1l") => 1,
        ("atl06_like.h5", _) => 2,
        ("atl06_like_v110.h5", "gt1l") => 3,
        ("atl06_like_v110.h5", "gt2r") => 2,
        ("atl06_like_v110.h5", _) => 5,
        ("atl06_like_latest.h5", "gt1l") => 3,
        ("atl06_like_latest.h5", "gt2r") => 4,
        _ => 5,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_beam_costs_bounded_waves_and_bytes() {
    let default_block = ReadOptions::default().block_size;
    let bs = std::env::var("MAGG_TEST_BLOCK").ok().and_then(|v| v.parse().ok()).unwrap_or(default_block);
    for name in LIBVERS {
        let exp = support::expected(name);
        for beam in ["gt1l", "gt2r", "gt3r"] {
            let (store, p) = counted(name).await;
            let dyn_store: Arc<dyn ObjectStore> = Arc::new(store.clone());
            let url = format!("mem://{name}");
            let f = H5File::open(dyn_store, p, &url, &ReadOptions::default().with_block_size(bs)).await.unwrap();
            let reqs: Vec<(String, RowSelection)> =
                CORE.iter().map(|d| (format!("/{beam}/land_ice_segments/{d}"), RowSelection::All)).collect();
            let arrays = f.read_many(&reqs).await.unwrap();
            let IoStats { requests, bytes, waves } = store.stats();
            let chunk_bytes: u64 = reqs.iter().map(|(d, _)| chunks(&exp, d).iter().map(|c| c.1).sum::<u64>()).sum();
            let MetadataStats { bytes: meta, planned_batches: rounds, demand_fetches } = f.metadata_stats();
            eprintln!(
                "{name} {beam}: {waves} waves ({rounds} planned metadata rounds), {requests} requests, {bytes} bytes = chunks {chunk_bytes} + metadata {meta} (+{} other); file {}",
                bytes as i64 - chunk_bytes as i64 - meta as i64,
                f.size()
            );
            for a in &arrays {
                assert_eq!(a.len(), 60_000);
            }
            // The planner foresaw every metadata read: the parser never fetched on its own.
            assert_eq!(demand_fetches, 0, "{name} {beam}: parser fetched metadata on demand");
            // Open, one wave per planned round, one for the data (which overlaps the last
            // rounds for datasets resolved early).
            assert!(waves <= rounds + 2, "{name} {beam}: {waves} waves for {rounds} rounds, expected at most {}", rounds + 2);
            if name == "atl06_like.h5" {
                assert!(waves <= 4, "{name} {beam}: {waves} waves, expected at most 4");
            }
            if bs == default_block {
                let min = min_rounds(name, beam);
                assert!(rounds <= min, "{name} {beam}: {rounds} metadata rounds, the pointer chain needs only {min}");
            }
            let budget = (chunk_bytes + meta) as f64 * 1.10;
            assert!((bytes as f64) <= budget, "{name} {beam}: fetched {bytes} bytes, expected at most {budget}");
            // Metadata must stay a small share of the beam's data, not a whole-file read.
            assert!(meta * 2 < chunk_bytes, "{name} {beam}: metadata {meta} bytes vs chunks {chunk_bytes}");
            if beam == "gt1l" {
                // values are right too (the fixture carries gt1l's values)
                let want = exp["datasets"]["/gt1l/land_ice_segments/latitude"]["values"].as_array().unwrap();
                let got = arrays[0].as_primitive::<Float64Type>();
                for (i, w) in want.iter().enumerate() {
                    assert_eq!(format!("{:x}", got.value(i).to_bits()), w.as_str().unwrap(), "{name} row {i}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_range_fetches_only_overlapping_chunks() {
    let exp = support::expected("atl06_like.h5");
    let (store, p) = counted("atl06_like.h5").await;
    let dyn_store: Arc<dyn ObjectStore> = Arc::new(store.clone());
    let opts = ReadOptions { coalesce_gap: 0, ..ReadOptions::default() };
    let f = H5File::open(dyn_store, p, "mem://atl06_like.h5", &opts).await.unwrap();
    let ds = "/gt2l/land_ice_segments/h_li";
    // Resolve metadata (header and chunk index) first, then count only the data read.
    let info = f.dataset_info(ds).await.unwrap();
    assert_eq!(info.chunk_row_ranges().len(), 6);
    f.read(ds, RowSelection::Ranges(vec![0..1])).await.unwrap();
    let cs = chunks(&exp, ds);
    for (rows, want_chunks) in [(15_000..25_000u64, vec![1usize, 2]), (59_999..60_000, vec![5]), (10_000..10_001, vec![1])] {
        store.reset();
        let a = f.read(ds, RowSelection::Ranges(vec![rows.clone()])).await.unwrap();
        assert_eq!(a.len() as u64, rows.end - rows.start);
        let want: u64 = want_chunks.iter().map(|&i| cs[i].1).sum();
        let s = store.stats();
        assert_eq!(s.bytes, want, "rows {rows:?}: fetched {} bytes, expected chunks {want_chunks:?} = {want}", s.bytes);
        // adjacent chunks are merged into one request
        assert!((1..=want_chunks.len()).contains(&(s.requests as usize)), "rows {rows:?}: {s:?}");
    }
    // Two disjoint ranges in one call share one wave.
    store.reset();
    let a = f.read(ds, RowSelection::Ranges(vec![100..200, 45_000..45_010])).await.unwrap();
    assert_eq!(a.len(), 110);
    let s = store.stats();
    assert_eq!((s.bytes, s.waves), (cs[0].1 + cs[4].1, 1));
    // Values of a partial read equal the same rows of a full read.
    let all = f.read(ds, RowSelection::All).await.unwrap();
    let part = f.read(ds, RowSelection::Ranges(vec![15_000..25_000])).await.unwrap();
    assert_eq!(part.as_primitive::<Float32Type>().values()[..], all.as_primitive::<Float32Type>().values()[15_000..25_000]);
}
