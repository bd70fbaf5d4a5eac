//! HDF5 read benchmark (prints figures; not a timed test). Run with
//! `cargo bench --workspace --bench h5_read`.
//!
//! 1. Decode throughput, local disk, one core: the five core datasets of all six beams of
//!    a 600,000-row-per-beam granule (written by h5py, deflate + shuffle, chunks of
//!    10,000), in MB/s of uncompressed output, against raw libdeflate inflate of the very
//!    same chunk bytes measured in the same run (the physical limit).
//! 2. The same read through a store with 50 ms injected latency per request: wall time
//!    and request waves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use magg::h5::{H5File, ReadOptions, RowSelection};
use magg::store::{CountingStore, StoreOptions};
use object_store::ObjectStore;

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
const GENERATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/h5/generate.py");
const BEAMS: [&str; 6] = ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"];
const CORE: [&str; 5] = ["latitude", "longitude", "h_li", "h_li_sigma", "atl06_quality_summary"];

fn requests() -> Vec<(String, RowSelection)> {
    BEAMS
        .iter()
        .flat_map(|b| CORE.iter().map(move |d| (format!("/{b}/land_ice_segments/{d}"), RowSelection::All)))
        .collect()
}

fn elem(dataset: &str) -> usize {
    match dataset.rsplit('/').next() {
        Some("latitude" | "longitude") => 8,
        Some("h_li" | "h_li_sigma") => 4,
        _ => 1,
    }
}

fn main() {
    assert!(std::path::Path::new(PYTHON).exists(), "{PYTHON} missing: run scripts/setup-venv.sh");
    let dir = tempfile::tempdir().expect("temp dir");
    let st = std::process::Command::new(PYTHON).arg(GENERATOR).arg(dir.path()).arg("--big-only").status().expect("python");
    assert!(st.success(), "generate.py failed");
    let path = dir.path().join("atl06_big.h5");
    let url = path.to_str().expect("utf-8 path").to_string();
    let exp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("atl06_big.h5.expected.json")).expect("json")).expect("json");
    let file_bytes = std::fs::read(&path).expect("read granule");

    // Raw inflate of the same chunk bytes, one core.
    let mut chunks: Vec<(std::ops::Range<usize>, usize)> = Vec::new();
    for (ds, _) in requests() {
        let e = elem(&ds);
        for c in exp["datasets"][&ds]["chunk_index"].as_array().expect("chunk index") {
            let (addr, size) = (c[1].as_u64().unwrap_or(0) as usize, c[2].as_u64().unwrap_or(0) as usize);
            chunks.push((addr..addr + size, 10_000 * e));
        }
    }
    let compressed: usize = chunks.iter().map(|c| c.0.len()).sum();
    let mut d = libdeflater::Decompressor::new();
    let mut out = vec![0u8; 80_000];
    let mut best_inflate = f64::INFINITY;
    let mut inflated = 0usize;
    for _ in 0..5 {
        let t = Instant::now();
        inflated = 0;
        for (r, n) in &chunks {
            inflated += d.zlib_decompress(&file_bytes[r.clone()], &mut out[..*n]).expect("inflate");
        }
        best_inflate = best_inflate.min(t.elapsed().as_secs_f64());
    }
    let inflate_mbs = inflated as f64 / 1e6 / best_inflate;

    // The reader, local disk, one decode thread on a current-thread runtime.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let opts = ReadOptions::default().with_decode_threads(1);
    let mut best_read = f64::INFINITY;
    let mut decoded = 0usize;
    for _ in 0..5 {
        let (secs, bytes) = rt.block_on(async {
            let t = Instant::now();
            let f = H5File::open_url(&url, &StoreOptions::none(), &opts).await.expect("open");
            let arrays = f.read_many(&requests()).await.expect("read");
            let bytes: usize = arrays.iter().map(|a| a.to_data().buffers()[0].len()).sum();
            (t.elapsed().as_secs_f64(), bytes)
        });
        best_read = best_read.min(secs);
        decoded = bytes;
    }
    let read_mbs = decoded as f64 / 1e6 / best_read;
    println!("granule: {} bytes, {} chunks, {compressed} compressed chunk bytes, {decoded} decoded bytes", file_bytes.len(), chunks.len());
    println!("raw libdeflate inflate (1 core): {inflate_mbs:.0} MB/s ({inflated} bytes in {:.1} ms)", best_inflate * 1e3);
    println!(
        "magg h5 reader, open + 30 datasets (1 decode thread, local disk): {read_mbs:.0} MB/s ({:.1} ms) = {:.0}% of raw inflate",
        best_read * 1e3,
        100.0 * read_mbs / inflate_mbs
    );

    // Through a store with 50 ms latency per request.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    for (label, reqs) in [("one beam (5 datasets)", requests()[..5].to_vec()), ("six beams (30 datasets)", requests())] {
        let (secs, stats) = rt.block_on(async {
            let (inner, location) = magg::store::resolve(&url, &StoreOptions::none()).expect("resolve");
            let counting = CountingStore::new(inner, Some(Duration::from_millis(50)));
            let store: Arc<dyn ObjectStore> = Arc::new(counting.clone());
            let t = Instant::now();
            let f = H5File::open(store, location, &url, &ReadOptions::default()).await.expect("open");
            f.read_many(&reqs).await.expect("read");
            (t.elapsed().as_secs_f64(), counting.stats())
        });
        println!(
            "50 ms latency store, open + {label}: {:.0} ms wall, {} waves, {} requests, {} bytes",
            secs * 1e3,
            stats.waves,
            stats.requests,
            stats.bytes
        );
    }
}
