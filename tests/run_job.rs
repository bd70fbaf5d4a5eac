//! The main job end to end: config -> SQL -> Zarr, checked against the reference's
//! algorithm recomputed with numpy/healpy and read back with zarr-python.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use magg::catalog::Catalog;
use magg::config::PipelineConfig;
use magg::h5::ReadOptions;
use magg::run::{RunConfig, run};
use magg::store::StoreOptions;

fn config(catalog: &Catalog, store: &Path, workers: usize) -> RunConfig {
    RunConfig {
        pipeline: PipelineConfig::atl06(),
        parent_order: catalog.metadata.parent_order,
        catalog_parents: catalog.cells().iter().map(|c| c.morton).collect(),
        cells: catalog.cells(),
        store_url: store.to_string_lossy().into_owned(),
        store: StoreOptions::none(),
        read: ReadOptions::default(),
        workers,
        overwrite: true,
        resume: false,
    }
}

/// Every chunk file of a store, path -> bytes.
fn chunks(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![store.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "zarr.json") {
                out.insert(p.strip_prefix(store).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_equals_the_reference_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(&dir.path().join("g"), 3, 6000, 11);
    let store = dir.path().join("out.zarr");
    let summary = run(&config(&out.catalog, &store, 2), |_| {}).await.unwrap();
    assert_eq!(summary.failed(), 0, "{:?}", summary.cells);
    assert_eq!(summary.cells.len(), out.catalog.catalog.len());

    let report: serde_json::Value = serde_json::from_str(&common::run_python(
        "reference_check.py",
        &[store.to_str().unwrap(), out.catalog_path.to_str().unwrap()],
    ))
    .unwrap();
    eprintln!("reference check: {report}");
    assert_eq!(report["count_mismatches"], 0, "{report}");
    assert_eq!(report["coord_mismatches"], 0, "{report}");
    assert_eq!(report["fill_mismatches"], 0, "{report}");
    assert_eq!(report["cells"].as_u64().unwrap() as usize, out.catalog.catalog.len());
    assert_eq!(report["obs"].as_u64().unwrap(), summary.total_obs(), "{report}");
    assert!(report["obs"].as_u64().unwrap() > 10_000, "{report}");
    // float32 outputs of float64 statistics: within float32 rounding of the exact value.
    for (var, err) in report["max_rel_err_f64"].as_object().unwrap() {
        let limit = if var == "h_variance" { 1e-6 } else { 2.5e-7 };
        assert!(err.as_f64().unwrap() <= limit, "{var}: relative error {err} vs exact numpy; {report}");
    }
    let with_data: u64 = summary.cells.iter().map(|c| c.cells_with_data).sum();
    assert_eq!(report["children_with_data"].as_u64().unwrap(), with_data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_is_byte_identical_and_resume_skips_complete_cells() {
    let dir = tempfile::tempdir().unwrap();
    // 25,000 rows: three 10,000-row chunks per beam, so a cell can skip some.
    let out = common::synth(&dir.path().join("g"), 2, 25_000, 12);
    let store = dir.path().join("out.zarr");
    let cfg = config(&out.catalog, &store, 2);
    run(&cfg, |_| {}).await.unwrap();
    let first = chunks(&store);
    assert!(first.len() >= 11 * out.catalog.catalog.len(), "{} chunk files", first.len());
    // One worker instead of two: same bytes.
    let one = run(&config(&out.catalog, &store, 1), |_| {}).await.unwrap();
    assert_eq!(chunks(&store), first);
    // With one worker, cells run one after another, so the run's coordinate index is warm
    // for every cell after a granule's first: those decode only the coordinate chunks that
    // reach them, and far fewer rows are examined than cells x granules x beams x rows.
    let examined: u64 = one.cells.iter().map(|c| c.rows_read).sum();
    let naive: u64 = one.cells.iter().map(|c| c.granule_count as u64 * 6 * 25_000).sum();
    eprintln!("rows examined {examined} of {naive} without the index, {} cells", one.cells.len());
    assert!(one.cells.len() >= 2, "need several cells per granule");
    assert!(examined * 3 < naive * 2, "{examined} vs {naive}");

    // A fresh store with only the first cell, then a resumed full run: the first cell is
    // skipped and the result equals the full run.
    let store2 = dir.path().join("resumed.zarr");
    let mut partial = config(&out.catalog, &store2, 2);
    partial.cells.truncate(1);
    run(&partial, |_| {}).await.unwrap();
    let mut resumed = config(&out.catalog, &store2, 2);
    resumed.overwrite = false;
    resumed.resume = true;
    let summary = run(&resumed, |_| {}).await.unwrap();
    let skipped: Vec<i64> = summary.cells.iter().filter(|c| c.skipped).map(|c| c.parent_morton).collect();
    assert_eq!(skipped, vec![out.catalog.cells()[0].morton]);
    assert_eq!(chunks(&store2), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_granule_fails_only_its_cell() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(&dir.path().join("g"), 2, 3000, 13);
    let mut catalog = out.catalog.clone();
    assert!(catalog.catalog.len() >= 2, "need two cells: {:?}", catalog.catalog.keys());
    // Replace the first cell's granules by a truncated copy of one of them.
    let first_key = catalog.catalog.keys().next().unwrap().clone();
    let victim = catalog.catalog[&first_key][0].clone();
    let bytes = std::fs::read(&victim).unwrap();
    let broken = dir.path().join("ATL06_20200101000000_00010101_007_01.h5");
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    catalog.catalog.insert(first_key.clone(), vec![broken.to_string_lossy().into_owned()]);
    let store = dir.path().join("out.zarr");
    let summary = run(&config(&catalog, &store, 2), |_| {}).await.unwrap();
    let failed: Vec<_> = summary.cells.iter().filter(|c| c.error.is_some()).collect();
    assert_eq!(failed.len(), 1, "{:?}", summary.cells);
    assert_eq!(failed[0].parent_morton.to_string(), first_key);
    let msg = failed[0].error.as_deref().unwrap();
    assert!(msg.contains(&broken.to_string_lossy().into_owned()), "error names the granule: {msg}");
    assert!(summary.cells.iter().filter(|c| c.error.is_none()).all(|c| c.total_obs > 0));
    // Chunk 0 (the failed cell) was not written; others were.
    let files = chunks(&store);
    assert!(!files.keys().any(|k| k.ends_with("/count/c/0")), "{:?}", files.keys().collect::<Vec<_>>());
    assert!(files.keys().any(|k| k.ends_with("/count/c/1")), "{:?}", files.keys().collect::<Vec<_>>());
}
