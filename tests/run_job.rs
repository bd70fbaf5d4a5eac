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
    let mut c = RunConfig::new(PipelineConfig::atl06(), catalog, store.to_string_lossy());
    c.read_store = StoreOptions::none();
    c.write_store = StoreOptions::none();
    c.read = ReadOptions::default();
    c.workers = workers;
    c.overwrite = true;
    c
}

/// Every chunk of a store, path -> bytes.
fn chunks(store: &Path) -> BTreeMap<String, Vec<u8>> {
    common::store_chunks(store)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinate_index_reads_less_and_changes_nothing() {
    use magg::table::{CoordinateIndex, GranuleTableOptions, IndexSpec};
    let dir = tempfile::tempdir().unwrap();
    // Four 10,000-row chunks per beam: most of them miss any one cell.
    let out = common::synth(&dir.path().join("g"), 2, 40_000, 14);
    let cells_per_granule = out.catalog.catalog.len();
    assert!(cells_per_granule >= 3, "need several cells: {:?}", out.catalog.catalog.keys());

    // One cell at a time, each in a run of its own (as single-cell workers would): without
    // an index, every run decodes every coordinate of its granules.
    let plain = dir.path().join("plain.zarr");
    let mut examined_plain = 0;
    for cell in out.catalog.cells() {
        let mut cfg = config(&out.catalog, &plain, 2);
        let beams = 6 * cell.granules.len();
        cfg.cells = vec![cell];
        (cfg.overwrite, cfg.resume) = (false, true);
        let s = run(&cfg, |_| {}).await.unwrap();
        assert_eq!((s.failed(), s.index_beams_loaded, s.index_beams_learned), (0, 0, beams));
        examined_plain += s.cells[0].rows_read;
    }
    assert_eq!(examined_plain, out.catalog.cells().iter().map(|c| c.granules.len() as u64 * 6 * 40_000).sum::<u64>());

    // `magg index`'s builder, then the same single-cell runs reading the index file.
    let path = dir.path().join("catalog.index.json");
    let spec = IndexSpec::for_job(out.catalog.metadata.parent_order, Default::default());
    let options = GranuleTableOptions::new(PipelineConfig::atl06().source().unwrap());
    let index = CoordinateIndex::new();
    let built = magg::table::index::build(&options, &out.catalog.granules(), spec, &index, 2, |_| {}).await;
    assert!(built.iter().all(|g| g.error.is_none() && g.beams == 6 && g.rows == 6 * 40_000), "{built:?}");
    assert_eq!(index.save(&path, &spec).unwrap(), 12);
    let indexed = dir.path().join("indexed.zarr");
    let mut examined_indexed = 0;
    for cell in out.catalog.cells() {
        let mut cfg = config(&out.catalog, &indexed, 2);
        cfg.cells = vec![cell];
        (cfg.overwrite, cfg.resume, cfg.index) = (false, true, Some(path.clone()));
        let s = run(&cfg, |_| {}).await.unwrap();
        assert_eq!((s.failed(), s.index_beams_loaded, s.index_beams_learned), (0, 12, 0));
        examined_indexed += s.cells[0].rows_read;
    }
    eprintln!("rows examined: {examined_plain} without the index, {examined_indexed} with it");
    assert!(examined_indexed * 2 < examined_plain, "{examined_indexed} vs {examined_plain}");
    assert_eq!(chunks(&indexed), chunks(&plain));

    // A run with an index path that does not exist yet writes what it learned; a second
    // run reads it and learns nothing new.
    let learned_path = dir.path().join("learned.index.json");
    let mut cfg = config(&out.catalog, &dir.path().join("a.zarr"), 2);
    cfg.index = Some(learned_path.clone());
    let s = run(&cfg, |_| {}).await.unwrap();
    assert_eq!((s.index_beams_loaded, s.index_beams_learned), (0, 12));
    assert_eq!(CoordinateIndex::load(&learned_path).unwrap().len(), 12);
    let s = run(&cfg, |_| {}).await.unwrap();
    assert_eq!((s.index_beams_loaded, s.index_beams_learned), (12, 0));
    assert_eq!(chunks(&dir.path().join("a.zarr")), chunks(&plain));

    // An index of other files (same names, other sizes) is not trusted: beams are read
    // whole and the results stay the same.
    let other = common::synth(&dir.path().join("other"), 2, 30_000, 15);
    let mut stale = config(&other.catalog, &dir.path().join("stale.zarr"), 2);
    let renamed: Vec<String> = other.catalog.granules();
    let stale_index = dir.path().join("stale.index.json");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (a, b) in out.catalog.granules().iter().zip(&renamed) {
        text = text.replace(a.as_str(), b.as_str());
    }
    std::fs::write(&stale_index, text).unwrap();
    let fresh = run(&stale, |_| {}).await.unwrap();
    stale.index = Some(stale_index);
    stale.store_url = dir.path().join("stale2.zarr").to_string_lossy().into_owned();
    let s = run(&stale, |_| {}).await.unwrap();
    assert_eq!(s.index_beams_learned, 12, "stale entries replaced");
    let rows = |s: &magg::run::RunSummary| s.cells.iter().map(|c| c.total_obs).sum::<u64>();
    assert_eq!(rows(&s), rows(&fresh));
    assert_eq!(chunks(&dir.path().join("stale2.zarr")), chunks(&dir.path().join("stale.zarr")));
}
