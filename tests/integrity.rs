//! Issue 12: no wrong store with exit code 0. Each test feeds `magg run` an input a
//! hostile but realistic user would (colliding names, a changed pipeline on `--resume`,
//! one cell overwritten, duplicates, absent beams, damaged chunks, a hanging endpoint,
//! secrets in URLs) and checks the store and the exit code.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use magg::catalog::Catalog;

/// Granules and their catalog.
struct Data {
    catalog: PathBuf,
    granules: Vec<PathBuf>,
}

/// Granules and catalog shared by most tests: 3 granules through one point, several cells.
fn data(dir: &Path) -> Data {
    let out = common::synth(&dir.join("g"), 3, 12_000, 5);
    Data { catalog: out.catalog_path, granules: out.granules }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The built-in config with `from` replaced by `to`, written to `dir/name`.
fn config(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let yaml = magg::config::ATL06_YAML;
    assert!(yaml.contains(from), "fixture text {from:?} missing");
    let p = dir.join(name);
    std::fs::write(&p, yaml.replacen(from, to, 1)).unwrap();
    p
}

/// Every chunk of a store, path -> bytes.
fn chunks(store: &Path) -> BTreeMap<String, Vec<u8>> {
    common::store_chunks(store)
}

fn run(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    common::magg_output(&all)
}

// 1. Names the table uses itself.

#[test]
fn a_variable_named_like_a_table_column_is_a_config_error_not_an_empty_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let cases = [
        // A variable with the quality dataset's name but another dataset.
        ("    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n", "    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n    atl06_quality_summary: \"/{group}/land_ice_segments/h_li\"\n", "atl06_quality_summary"),
        // The point-cell column and the table's own columns, in any case.
        ("    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n", "    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n    cell18: \"/{group}/land_ice_segments/h_li\"\n", "cell18"),
        ("    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n", "    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n    Granule: \"/{group}/land_ice_segments/h_li\"\n", "Granule"),
        ("    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n", "    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n    LATITUDE: \"/{group}/land_ice_segments/h_li\"\n", "LATITUDE"),
        // Output names that are not path components or that magg writes itself.
        ("    h_min:\n", "    cell_ids:\n", "aggregation.variables.cell_ids"),
        ("    h_min:\n", "    \"../h_min\":\n", "aggregation.variables.../h_min"),
        ("    h_min:\n", "    \"a/b\":\n", "aggregation.variables.a/b"),
        ("    h_min:\n", "    H_MAX:\n", "aggregation.variables.h_max"),
    ];
    for (i, (from, to, key)) in cases.into_iter().enumerate() {
        let cfg = config(dir.path(), &format!("c{i}.yaml"), from, to);
        let store = dir.path().join(format!("s{i}.zarr"));
        let (code, out, err) = run(&["--config", &s(&cfg), "--catalog", &s(&d.catalog), "--store", &s(&store)]);
        assert_eq!(code, 2, "case {i}: {out}\n{err}");
        assert!(err.contains(key) && err.contains(&format!("c{i}.yaml")), "case {i}: {err}");
        assert!(!store.exists(), "case {i}: a store was made");
    }
    // The quality dataset listed as a variable under its own name is one column: fine.
    let same = config(
        dir.path(),
        "same.yaml",
        "    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n",
        "    s_li: \"/{group}/land_ice_segments/h_li_sigma\"\n    atl06_quality_summary: \"/{group}/land_ice_segments/atl06_quality_summary\"\n",
    );
    let (code, _, err) = run(&["--config", &s(&same), "--catalog", &s(&d.catalog), "--store", &s(&dir.path().join("ok.zarr")), "--max-cells", "1"]);
    assert_eq!(code, 0, "{err}");
}

// 2 and 3. The store's definition, --resume and --overwrite.

#[test]
fn resume_refuses_a_store_of_another_definition_and_names_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let store = s(&dir.path().join("s.zarr"));
    let (code, _, err) = run(&["--catalog", &s(&d.catalog), "--store", &store, "--max-cells", "2"]);
    assert_eq!(code, 0, "{err}");
    let before = chunks(Path::new(&store));

    let changes = [
        ("child_order: 12", "child_order: 11", "output.grid.child_order: store 12, this run 11"),
        ("      function: min\n", "      function: max\n", "aggregation.variables.h_min (SQL)"),
        ("      dtype: int32\n", "      dtype: int64\n", "aggregation.variables.count.dtype"),
        ("    h_min:\n", "    h_lo:\n", "aggregation.variables: store [count, h_min"),
        ("    value: 0\n", "    value: 1\n", "data_source.quality_filter"),
    ];
    for (i, (from, to, named)) in changes.into_iter().enumerate() {
        let cfg = config(dir.path(), &format!("r{i}.yaml"), from, to);
        let (code, out, err) = run(&["--config", &s(&cfg), "--catalog", &s(&d.catalog), "--store", &store, "--resume"]);
        assert_eq!(code, 2, "change {i}: {out}\n{err}");
        assert!(err.contains("different run definition") && err.contains(named), "change {i}: {err}");
    }
    // Another catalog (one cell fewer) is another definition too.
    let mut fewer: Catalog = Catalog::read(&d.catalog).unwrap();
    let last = fewer.catalog.keys().last().unwrap().clone();
    fewer.catalog.shift_remove(&last);
    let fewer_path = dir.path().join("fewer.json");
    fewer.write(&fewer_path).unwrap();
    let (code, _, err) = run(&["--catalog", &s(&fewer_path), "--store", &store, "--resume"]);
    assert_eq!(code, 2);
    assert!(err.contains("catalog cells"), "{err}");
    assert_eq!(chunks(Path::new(&store)), before, "a refused resume changed the store");

    // The same definition resumes: the two written cells are skipped, the rest written.
    let (code, out, err) = run(&["--catalog", &s(&d.catalog), "--store", &store, "--resume"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 skipped (complete)"), "{out}");
}

#[test]
fn overwrite_of_one_cell_keeps_the_other_cells_and_another_definition_replaces_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let store = dir.path().join("s.zarr");
    let (code, _, err) = run(&["--catalog", &s(&d.catalog), "--store", &s(&store)]);
    assert_eq!(code, 0, "{err}");
    let full = chunks(&store);
    let cells = Catalog::read(&d.catalog).unwrap().cells();
    assert!(cells.len() >= 3);

    // Redo one cell: every chunk is still there and byte-identical.
    let one = cells[1].morton.to_string();
    let (code, out, err) = run(&["--catalog", &s(&d.catalog), "--store", &s(&store), "--morton-cell", &one, "--overwrite"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 cells written"), "{out}");
    assert_eq!(chunks(&store), full, "--morton-cell --overwrite changed or lost other cells' chunks");

    // Two runs on one store at once, each overwriting its own cells, never delete each
    // other's chunks.
    let a = cells[0].morton.to_string();
    let b = cells[2].morton.to_string();
    let spawn = |cell: &str| {
        common::magg()
            .args(["run", "--catalog", &s(&d.catalog), "--store", &s(&store), "--morton-cell", cell, "--overwrite", "--max-workers", "1"])
            .env("CI", "true")
            .output()
            .unwrap()
    };
    let (ra, rb) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| spawn(&a));
        let hb = sc.spawn(|| spawn(&b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert!(ra.status.success() && rb.status.success(), "{}\n{}", String::from_utf8_lossy(&ra.stderr), String::from_utf8_lossy(&rb.stderr));
    assert_eq!(chunks(&store), full);

    // Another definition with --overwrite: the whole store is replaced, and said first.
    let cfg = config(dir.path(), "o.yaml", "child_order: 12", "child_order: 10");
    let (code, _, err) = run(&["--config", &s(&cfg), "--catalog", &s(&d.catalog), "--store", &s(&store), "--max-cells", "1", "--overwrite"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("replacing the whole store") && err.contains("output.grid.child_order: store 12, this run 10"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&store).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!store.join("12").exists() && store.join("10/count/c/0").exists(), "{left:?}");
}

// 4. Duplicates.

#[test]
fn a_granule_listed_twice_in_a_cell_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let once = dir.path().join("once.zarr");
    let (code, _, err) = run(&["--catalog", &s(&d.catalog), "--store", &s(&once)]);
    assert_eq!(code, 0, "{err}");

    // The same granule again, spelled the same, with `./`, and relative to the cwd.
    let mut twice = Catalog::read(&d.catalog).unwrap();
    for urls in twice.catalog.values_mut() {
        let first = urls[0].clone();
        let name = Path::new(&first).file_name().unwrap().to_string_lossy().into_owned();
        urls.push(first.clone());
        urls.push(format!("{}/./{name}", Path::new(&first).parent().unwrap().display()));
        urls.push(format!("./g/{name}"));
    }
    let cat = dir.path().join("twice.json");
    twice.write(&cat).unwrap();
    let store = dir.path().join("twice.zarr");
    let out = common::magg()
        .args(["run", "--catalog", &s(&cat), "--store", &s(&store)])
        .current_dir(dir.path())
        .env("CI", "true")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("warning") && err.contains("again as ./g/"), "{err}");
    assert_eq!(chunks(&store), chunks(&once), "duplicate granules changed the result");
}

#[test]
fn duplicate_keys_in_the_catalog_and_the_config_are_errors_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let text = std::fs::read_to_string(&d.catalog).unwrap();
    let cat: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (key, urls) = cat["catalog"].as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
    // Append the first cell again at the end of the catalog object.
    let dup = text.trim_end().trim_end_matches('}').trim_end().trim_end_matches('}').to_owned()
        + &format!(",\n    \"{key}\": {urls}\n  }}\n}}\n");
    let dup_path = dir.path().join("dup.json");
    std::fs::write(&dup_path, &dup).unwrap();
    let line = dup.lines().collect::<Vec<_>>().iter().rposition(|l| l.contains(&format!("\"{key}\": "))).unwrap() + 1;
    assert!(serde_json::from_str::<serde_json::Value>(&dup).is_ok(), "the fixture must be valid JSON");
    let (code, _, err) = run(&["--catalog", &s(&dup_path), "--store", &s(&dir.path().join("x.zarr"))]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("duplicate key \"{key}\"")) && err.contains(&format!("line {line}")), "{err}");

    let cases = [
        ("    h_max:\n", "    h_min:\n", "aggregation.variables.h_min", "    h_min:"),
        ("  quality_filter:\n", "  variables:\n    h_li: \"/x\"\n  quality_filter:\n", "data_source.variables", "  variables:"),
        ("    child_order: 12\n", "    child_order: 12\n    child_order: 10\n", "child_order", "    child_order:"),
    ];
    for (i, (from, to, key, line_text)) in cases.into_iter().enumerate() {
        let cfg = config(dir.path(), &format!("d{i}.yaml"), from, to);
        let text = std::fs::read_to_string(&cfg).unwrap();
        let lines: Vec<usize> = text.lines().enumerate().filter(|(_, l)| l.starts_with(line_text)).map(|(n, _)| n + 1).collect();
        assert!(lines.len() >= 2, "case {i}: {lines:?}");
        let (code, _, err) = common::magg_output(&["compile", &s(&cfg)]);
        assert_eq!(code, 2, "case {i}: {err}");
        let what = format!("at line {} (first at line {})", lines[1], lines[0]);
        assert!(err.contains(key) && err.contains("duplicate") && err.contains(&what), "case {i}: {err}");
    }
}

// 5. Absent beams.

#[test]
fn absent_beams_are_reported_per_cell_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    // gt9x does not exist; orbit_info exists but has no land_ice_segments/latitude.
    let cfg = config(dir.path(), "beams.yaml", "groups: [gt1l, gt1r, gt2l, gt2r, gt3l, gt3r]", "groups: [gt1l, gt9x, orbit_info]");
    let report = dir.path().join("report.json");
    let (code, out, err) = run(&["--config", &s(&cfg), "--catalog", &s(&d.catalog), "--store", &s(&dir.path().join("s.zarr")), "--report", &s(&report)]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let mut pairs = std::collections::BTreeSet::new();
    for cell in r["cells"].as_array().unwrap() {
        for a in cell["absent_beams"].as_array().unwrap() {
            let missing = a["missing"].as_str().unwrap();
            match a["group"].as_str().unwrap() {
                "gt9x" => assert_eq!(missing, "group"),
                "orbit_info" => assert_eq!(missing, "/orbit_info/land_ice_segments/latitude"),
                other => panic!("unexpected absent beam {other}"),
            }
            pairs.insert((a["granule"].as_str().unwrap().to_owned(), a["group"].as_str().unwrap().to_owned()));
        }
    }
    // Every granule that was opened lacks both.
    assert_eq!(pairs.len(), 2 * 3, "{pairs:?}");
    assert!(out.contains("6 beams absent in 3 granules (3 with the group present but its coordinates missing)"), "{out}");
}

// Robustness.

#[test]
fn resume_rewrites_truncated_and_empty_chunks_and_removes_stray_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let store = dir.path().join("s.zarr");
    let (code, _, err) = run(&["--catalog", &s(&d.catalog), "--store", &s(&store)]);
    assert_eq!(code, 0, "{err}");
    let good = chunks(&store);
    let count0 = store.join("12/count/c/0");
    let bytes = std::fs::read(&count0).unwrap();
    std::fs::write(&count0, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(store.join("12/h_mean/c/1"), b"").unwrap();
    std::fs::write(store.join("12/cell_ids/c/2"), vec![0u8; 8]).unwrap();
    std::fs::write(store.join("12/count/c/0#17"), b"half a chunk").unwrap();
    let (code, out, err) = run(&["--catalog", &s(&d.catalog), "--store", &s(&store), "--resume"]);
    assert_eq!(code, 0, "{err}");
    let n = Catalog::read(&d.catalog).unwrap().catalog.len();
    assert!(out.contains(&format!("3 cells written, {} skipped (complete)", n - 3)), "{out}");
    assert!(err.contains("removed 1 temporary file"), "{err}");
    assert_eq!(chunks(&store), good);
}

#[test]
fn what_can_fail_is_checked_before_the_store_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let store = dir.path().join("s.zarr");
    // A report that cannot be written.
    let (code, _, err) = run(&["--catalog", &s(&d.catalog), "--store", &s(&store), "--report", &s(&dir.path().join("no/such/dir/r.json"))]);
    assert_eq!(code, 2);
    assert!(err.contains("--report") && err.contains("no/such/dir"), "{err}");
    assert!(!store.exists());
    // An index file that does not parse.
    let index = dir.path().join("bad.index.json");
    std::fs::write(&index, b"{not json").unwrap();
    let (code, _, err) = run(&["--catalog", &s(&d.catalog), "--store", &s(&store), "--index", &s(&index)]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.index.json"), "{err}");
    assert!(!store.exists());
    // A child order far finer than the data: the size is said, and refused without --yes.
    let cfg = config(dir.path(), "fine.yaml", "child_order: 12", "child_order: 18");
    let (code, _, err) = run(&["--config", &s(&cfg), "--catalog", &s(&d.catalog), "--store", &s(&store), "--max-cells", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("16777216 cells per parent cell") && err.contains("--yes"), "{err}");
    assert!(!store.exists());
}

#[test]
fn a_hanging_endpoint_stops_the_run_after_a_few_cells_with_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    // A server that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            keep.lock().unwrap().push(c);
        }
    });
    let mut cat = Catalog::read(&d.catalog).unwrap();
    for urls in cat.catalog.values_mut() {
        for u in urls.iter_mut() {
            *u = format!("s3://bucket/{}", Path::new(u).file_name().unwrap().to_string_lossy());
        }
    }
    let n = cat.catalog.len();
    assert!(n >= 4, "{n}");
    let cat_path = dir.path().join("s3.json");
    cat.write(&cat_path).unwrap();
    let report = dir.path().join("r.json");
    let out = common::magg()
        .args(["run", "--catalog", &s(&cat_path), "--store", &s(&dir.path().join("s.zarr")), "--no-index"])
        .args(["--request-timeout", "0.5", "--connect-timeout", "0.5", "--max-workers", "1", "--report", &s(&report)])
        .env("CI", "true")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("stopped after 3 cells in a row failed the same way (Timeout)"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["cells"].as_array().unwrap().len(), 3);
    assert_eq!(r["cells_not_run"].as_u64().unwrap() as usize, n - 3);
    assert_eq!(r["cells"][0]["failure"]["kind"], "timeout");
    assert_eq!(r["cells"][0]["failure"]["retryable"], true);
}

#[test]
fn secrets_in_granule_urls_never_reach_messages_or_reports() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let mut cat = Catalog::read(&d.catalog).unwrap();
    for urls in cat.catalog.values_mut() {
        *urls = vec!["https://alice:hunter2@127.0.0.1:9/g.h5?X-Amz-Credential=AKIAXYZ&X-Amz-Signature=deadbeef&token=t0ps3cret".to_owned()];
    }
    let cat_path = dir.path().join("secret.json");
    cat.write(&cat_path).unwrap();
    let report = dir.path().join("r.json");
    let (code, out, err) = run(&["--catalog", &s(&cat_path), "--store", &s(&dir.path().join("s.zarr")), "--report", &s(&report), "--max-consecutive-failures", "0"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(err.contains("127.0.0.1:9/g.h5"), "{err}");
    for secret in ["hunter2", "AKIAXYZ", "deadbeef", "t0ps3cret"] {
        assert!(!err.contains(secret) && !out.contains(secret) && !report.contains(secret), "{secret} leaked:\n{err}\n{report}");
    }
}

#[test]
fn errors_say_what_is_wrong_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = data(dir.path());
    let missing = dir.path().join("nope.h5");
    let (code, _, err) = common::magg_output(&["inspect", &s(&missing)]);
    assert_eq!(code, 2);
    assert_eq!(err.trim(), format!("magg: granule not found: {}", missing.display()));

    let empty = dir.path().join("empty.h5");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, err) = common::magg_output(&["inspect", &s(&empty)]);
    assert_eq!(code, 2);
    assert!(err.contains("empty file (0 bytes)"), "{err}");

    let granule = &d.granules[0];
    let (code, _, err) = common::magg_output(&["inspect", &s(granule), "--dataset", "/gt1l/land_ice_segments", "--rows", "0:2"]);
    assert_eq!(code, 2);
    assert!(err.contains("is a group, not a dataset"), "{err}");

    // A missing granule in a run: its message appears once per failing cell.
    let mut cat = Catalog::read(&d.catalog).unwrap();
    let first = cat.catalog.keys().next().unwrap().clone();
    cat.catalog.insert(first, vec![s(&missing)]);
    let cat_path = dir.path().join("m.json");
    cat.write(&cat_path).unwrap();
    let (code, _, err) = run(&["--catalog", &s(&cat_path), "--store", &s(&dir.path().join("s.zarr"))]);
    assert_eq!(code, 1);
    let line = err.lines().find(|l| l.contains("nope.h5")).unwrap();
    assert_eq!(line.matches("nope.h5").count(), 1, "{line}");
    assert!(line.contains("granule not found"), "{line}");

    // An http endpoint without AWS_ALLOW_HTTP says so.
    let out = common::magg()
        .args(["inspect", "s3://bucket/g.h5"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env_remove("AWS_ALLOW_HTTP")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs AWS_ALLOW_HTTP=true"), "{}", String::from_utf8_lossy(&out.stderr));
}
