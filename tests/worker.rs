//! The single-cell worker entry (Lambda, `magg invoke`) against `magg run`: the same
//! cells give byte-identical chunks, a retried event rewrites the same bytes, and a
//! worker never creates a template.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use magg::config::PipelineConfig;
use magg::run::{RunConfig, event, prepare_store, run};
use magg::store::StoreOptions;
use serde_json::json;

/// Every chunk of a store, path -> bytes.
fn chunks(store: &Path) -> BTreeMap<String, Vec<u8>> {
    common::store_chunks(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_events_write_the_chunks_magg_run_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(&dir.path().join("g"), 3, 8000, 31);
    let by_run = dir.path().join("run.zarr");
    let mut cfg = RunConfig::new(PipelineConfig::atl06(), &out.catalog, by_run.to_string_lossy());
    cfg.read_store = StoreOptions::none();
    cfg.write_store = StoreOptions::none();
    cfg.workers = 2;
    let summary = run(&cfg, |_| {}).await.unwrap();
    assert_eq!(summary.failed(), 0);

    // The orchestrator's part: the template only.
    let by_worker = dir.path().join("worker.zarr");
    let mut tcfg = cfg.clone();
    tcfg.store_url = by_worker.to_string_lossy().into_owned();
    prepare_store(&tcfg, |_| {}).await.unwrap();
    assert!(chunks(&by_worker).is_empty());

    let cells = out.catalog.cells();
    for (i, cell) in cells.iter().enumerate() {
        let ev = json!({
            "chunk_idx": cell.chunk_idx, "parent_morton": cell.morton, "parent_order": 6, "child_order": 12,
            "granule_urls": cell.granules, "store_path": by_worker,
        });
        let r = event::handle(ev.clone(), 2).await;
        assert_eq!(r.status_code, 200, "{r:?}");
        let body = r.body().unwrap();
        let want = summary.cells.iter().find(|c| c.parent_morton == cell.morton).unwrap();
        assert_eq!((body.total_obs, body.cells_with_data, body.granule_count), (want.total_obs, want.cells_with_data, want.granule_count));
        assert!(body.peak_rss_mb.unwrap() > 1.0);
        if i == 0 {
            // A retried invocation rewrites the same bytes.
            let before = chunks(&by_worker);
            assert_eq!(event::handle(ev, 1).await.status_code, 200);
            assert_eq!(chunks(&by_worker), before);
        }
    }
    assert_eq!(chunks(&by_worker), chunks(&by_run), "worker chunks differ from magg run's");

    // Wrong grid in the event: a 400 naming it; another pipeline: a 400.
    let cell = &cells[0];
    let ev = json!({"parent_morton": cell.morton, "child_order": 11, "granule_urls": cell.granules, "store_path": by_worker});
    let r = event::handle(ev, 1).await;
    assert_eq!(r.status_code, 400);
    assert!(r.body().unwrap().error.unwrap().contains("child_order: config 12, event 11"));
    let other = magg::config::ATL06_YAML.replace("      function: min\n", "      function: max\n");
    let ev = json!({"parent_morton": cell.morton, "granule_urls": cell.granules, "store_path": by_worker, "config": other});
    let r = event::handle(ev, 1).await;
    assert_eq!(r.status_code, 400, "{r:?}");
    assert!(r.body().unwrap().error.unwrap().contains("aggregation.variables.h_min (SQL)"));
    // A cell that fails is a 500 with a typed, non-retryable failure; other chunks stay.
    let ev = json!({"parent_morton": cell.morton, "granule_urls": [dir.path().join("gone.h5")], "store_path": by_worker});
    let r = event::handle(ev, 1).await;
    assert_eq!(r.status_code, 500);
    let f = r.body().unwrap().failure.unwrap();
    assert_eq!((f.kind, f.retryable), (magg::errors::ErrorKind::Input, false));
}
