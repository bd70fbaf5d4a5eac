//! Benchmark of the granule table (issue: "Granules as a SQL table").
//!
//! `SELECT count(*), avg(h_li) FROM atl06 WHERE atl06_quality_summary = 0` over 20
//! synthetic granules (60,000 segments per beam, 7.2 M rows), with 1 and 2 threads, and in
//! the same run the raw decode throughput of the reader for the two datasets the query
//! needs (h_li and atl06_quality_summary of every beam, one thread) as the limit.
//!
//! The tokio runtime keeps its default blocking pool: the HDF5 reader parses metadata on
//! blocking threads that wait for object-store reads, which on local files need blocking
//! threads too, so a pool capped at the worker count deadlocks.
//!
//! Run: `cargo bench --workspace --bench table_scan`. Data is cached under
//! `$CARGO_TARGET_DIR/magg-bench/scan20/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use magg::config::PipelineConfig;
use magg::h5::{H5File, ReadOptions, RowSelection};
use magg::session::{self, SessionOptions};
use magg::store::StoreOptions;
use magg::synth::{SynthOptions, generate};
use magg::table::{GranuleRef, GranuleTable, GranuleTableOptions};

const N: usize = 20;

fn granules() -> Vec<String> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("magg-bench").join("scan20");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "h5"))
                .map(|p| p.to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if files.len() != N {
        let out = generate(&SynthOptions { out_dir: dir, granules: N, seed: 99, ..SynthOptions::default() }).expect("synth");
        files = out.granules.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    }
    files.sort();
    files
}

fn main() {
    let files = granules();
    println!("granule table benchmark: {N} granules x 6 beams x 60,000 rows");

    // The limit: decode h_li and atl06_quality_summary of every beam on one thread.
    let rt1 = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (raw_s, raw_rows) = rt1.block_on(async {
        let opts = ReadOptions::default().with_decode_threads(1);
        let mut opened = Vec::new();
        for f in &files {
            opened.push(H5File::open_url(f, &StoreOptions::none(), &opts).await.unwrap());
        }
        let t = Instant::now();
        let mut rows = 0usize;
        for f in &opened {
            for beam in ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"] {
                let reqs = vec![
                    (format!("/{beam}/land_ice_segments/h_li"), RowSelection::All),
                    (format!("/{beam}/land_ice_segments/atl06_quality_summary"), RowSelection::All),
                ];
                rows += f.read_many(&reqs).await.unwrap()[0].len();
            }
        }
        (t.elapsed().as_secs_f64(), rows)
    });
    println!("raw decode (h_li + quality, 1 thread): {:.3} s, {:.1} M rows/s", raw_s, raw_rows as f64 / raw_s / 1e6);

    for threads in [1usize, 2] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .unwrap();
        let best = (0..3)
            .map(|_| {
                rt.block_on(async {
                    let mut o = GranuleTableOptions::new(PipelineConfig::atl06().source().expect("built-in config"));
                    o.store = StoreOptions::none();
                    o.read = ReadOptions::default().with_decode_threads(threads);
                    let g = files.iter().map(|u| GranuleRef { url: u.clone(), cells: None }).collect();
                    let table = Arc::new(GranuleTable::try_new(o, g).await.unwrap());
                    let ctx = session::context(SessionOptions { target_partitions: threads, batch_size: 8192 });
                    session::register_table(&ctx, table).unwrap();
                    let t = Instant::now();
                    let b = ctx
                        .sql("SELECT count(*), avg(h_li) FROM atl06 WHERE atl06_quality_summary = 0")
                        .await
                        .unwrap()
                        .collect()
                        .await
                        .unwrap();
                    let kept = b[0].column(0).as_primitive::<Int64Type>().value(0);
                    (t.elapsed().as_secs_f64(), kept)
                })
            })
            .fold((f64::INFINITY, 0), |acc, r| if r.0 < acc.0 { r } else { acc });
        let (secs, kept) = best;
        println!(
            "{threads} thread(s): {secs:.3} s, {:.1} M rows/s scanned ({kept} kept), {:.2} x the 1-thread raw decode time",
            raw_rows as f64 / secs / 1e6,
            secs / raw_s
        );
    }
}
