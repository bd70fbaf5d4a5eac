//! The `magg` binary as a user runs it.

mod common;

#[test]
fn help_lists_every_subcommand_with_examples() {
    let (code, out, _) = common::magg_output(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["run", "demo", "sql", "export", "compile", "synth", "inspect", "index"] {
        assert!(out.contains(&format!("  {sub}")), "--help lacks {sub}:\n{out}");
    }
    let (code, out, _) = common::magg_output(&["run", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Examples:") && out.contains("--morton-cell"), "{out}");
}

#[test]
fn sql_without_a_table() {
    let (code, out, err) = common::magg_output(&["sql", "--format", "csv", "SELECT healpix_cell(-75.5, 123.25, 12) AS c, morton(-75.5, 123.25, 6) AS m"]);
    assert_eq!(code, 0, "{err}");
    let c = magg_udfs::healpix::cell(-75.5, 123.25, 12, Default::default()).unwrap();
    let m = magg_udfs::morton::from_lat_lon(-75.5, 123.25, 6, Default::default()).unwrap();
    assert_eq!(out, format!("c,m\n{c},{m}\n"));
}

#[test]
fn compile_prints_the_cell_query_and_names_bad_keys() {
    let (code, out, err) = common::magg_output(&["compile", "atl06", "--cell", "-4211322"]);
    assert_eq!(code, 0, "{err}");
    let (nested, _) = magg_udfs::morton::to_nested(-4_211_322).unwrap();
    assert!(out.contains(&format!("healpix_parent(cell18, 18, 6) = {nested}")), "{out}");
    assert!(out.contains("weighted_mean(\"h_li\", (1.0 / (CAST(\"s_li\" AS DOUBLE) * CAST(\"s_li\" AS DOUBLE)))) AS \"h_mean\""), "{out}");
    assert!(out.contains("np_var(\"h_li\") AS \"h_variance\""), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, magg::config::ATL06_YAML.replace("function: min", "function: minimum")).unwrap();
    let (code, _, err) = common::magg_output(&["compile", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.yaml") && err.contains("aggregation.variables.h_min.function: got \"minimum\""), "{err}");
}

#[test]
fn run_dry_run_then_run_then_failure_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(&dir.path().join("g"), 2, 2000, 21);
    let cat = out.catalog_path.to_str().unwrap().to_owned();
    let store = dir.path().join("s.zarr");
    let (code, text, err) = common::magg_output(&["run", "--catalog", &cat, "--store", store.to_str().unwrap(), "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains(&format!("cells to process: {}", out.catalog.catalog.len())), "{text}");
    assert!(!store.exists(), "dry run wrote the store");

    let report = dir.path().join("report.json");
    let (code, text, err) = common::magg_output(&[
        "run", "--catalog", &cat, "--store", store.to_str().unwrap(), "--max-cells", "2", "--report", report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("2 cells written, 0 skipped (complete), 0 failed"), "{text}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["cells"].as_array().unwrap().len(), 2);
    assert!(r["cells"][0]["total_obs"].as_u64().unwrap() > 0, "{r}");

    // Existing store without --overwrite/--resume: refused, naming the store.
    let (code, _, err) = common::magg_output(&["run", "--catalog", &cat, "--store", store.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains(store.to_str().unwrap()) && err.contains("--overwrite"), "{err}");

    // A catalog whose first cell lists a missing granule: exit code 1, other cells written.
    let mut catalog = out.catalog.clone();
    let first = catalog.catalog.keys().next().unwrap().clone();
    catalog.catalog.insert(first.clone(), vec![dir.path().join("missing.h5").to_string_lossy().into_owned()]);
    let cat2 = dir.path().join("cat2.json");
    catalog.write(&cat2).unwrap();
    let (code, text, err) = common::magg_output(&["run", "--catalog", cat2.to_str().unwrap(), "--store", store.to_str().unwrap(), "--overwrite"]);
    assert_eq!(code, 1, "{text}\n{err}");
    assert!(err.contains("missing.h5") && err.contains(&first), "{err}");
    assert!(text.contains("1 failed"), "{text}");
}

#[test]
fn index_then_run_reads_fewer_rows_and_writes_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(&dir.path().join("g"), 2, 25_000, 22);
    let cat = out.catalog_path.to_str().unwrap().to_owned();
    let index = out.catalog_path.with_file_name("catalog.index.json");
    let rows_read = |report: &std::path::Path| -> u64 {
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
        r["cells"].as_array().unwrap().iter().map(|c| c["rows_read"].as_u64().unwrap()).sum()
    };
    let store = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let report = |name: &str| dir.path().join(name);

    // One cell, no index file: every coordinate of its granules is examined.
    let cell = out.catalog.catalog.keys().next().unwrap().clone();
    let (code, _, err) = common::magg_output(&[
        "run", "--catalog", &cat, "--store", &store("a.zarr"), "--morton-cell", &cell, "--no-index",
        "--report", report("a.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!index.exists(), "--no-index wrote {}", index.display());
    let granules = out.catalog.catalog[&cell].len() as u64;
    assert_eq!(rows_read(&report("a.json")), granules * 6 * 25_000);

    let (code, text, err) = common::magg_output(&["index", "--catalog", &cat]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("indexed 12 beams (0 already indexed) of 2 granules, 300000 coordinate rows"), "{text}");
    assert!(text.contains("catalog.index.json (12 beams, cells at order 6, hashed at order 18)"), "{text}");
    // Again: nothing left to do.
    let (code, text, _) = common::magg_output(&["index", "--catalog", &cat]);
    assert_eq!(code, 0);
    assert!(text.contains("indexed 0 beams (12 already indexed)"), "{text}");

    let (code, _, err) = common::magg_output(&[
        "run", "--catalog", &cat, "--store", &store("b.zarr"), "--morton-cell", &cell, "--report", report("b.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (plain, indexed) = (rows_read(&report("a.json")), rows_read(&report("b.json")));
    assert!(indexed * 2 < plain, "rows examined with the index {indexed}, without {plain}");
    for array in ["count", "h_mean", "h_q75"] {
        let chunk = |s: &str| std::fs::read(dir.path().join(s).join("12").join(array).join("c/0")).unwrap();
        assert_eq!(chunk("b.zarr"), chunk("a.zarr"), "{array}");
    }

    // A broken index file is named, with what to do.
    std::fs::write(&index, "{").unwrap();
    let (code, _, err) = common::magg_output(&["run", "--catalog", &cat, "--store", &store("c.zarr"), "--morton-cell", &cell]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("catalog.index.json") && err.contains("not a magg coordinate index"), "{err}");
}

#[test]
fn export_writes_parquet_that_pyarrow_and_duckdb_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(&dir.path().join("g"), 2, 3000, 22);
    let cell = out.catalog.cells()[0].morton.to_string();
    let dest = dir.path().join("points");
    let (code, text, err) = common::magg_output(&[
        "export", "--catalog", out.catalog_path.to_str().unwrap(), "--cell", &cell, "--output", dest.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(dest.join(format!("parent={cell}")).join("part-0.parquet").exists(), "{text}");
    let r: serde_json::Value = serde_json::from_str(&common::run_python("read_parquet.py", &[dest.to_str().unwrap()])).unwrap();
    let rows = r["rows"].as_u64().unwrap();
    assert!(rows > 0, "{r}");
    assert_eq!(r["duckdb_rows"].as_u64().unwrap(), rows);
    assert_eq!(r["parents"], serde_json::json!([cell.parse::<i64>().unwrap()]));
    let cols: Vec<&str> = r["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for c in ["granule", "beam", "row", "latitude", "longitude", "h_li", "s_li", "cell_ids", "morton", "parent"] {
        assert!(cols.contains(&c), "{c} missing from {cols:?}");
    }
    assert!(text.contains(&format!("{rows} rows")), "{text}");
}

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("demo");
    let (code, text, err) = common::magg_output(&[
        "demo", "--out", work.to_str().unwrap(), "--granules", "3", "--rows-per-beam", "3000",
    ]);
    assert_eq!(code, 0, "{text}\n{err}");
    assert!(text.contains("store written to"), "{text}");
    assert!(text.contains("0 failed"), "{text}");
    assert!(work.join("demo.zarr").join("zarr.json").exists());
    assert!(work.join("granules").join("catalog.json").exists());
}

#[test]
fn sql_over_files_with_extra_var_json_and_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(&dir.path().join("g"), 1, 1500, 23);
    let pattern = format!("{}/ATL06_*.h5", dir.path().join("g").display());
    // --var exposes another dataset; JSON lines output.
    let (code, text, err) = common::magg_output(&[
        "sql", "--files", &pattern, "--var", "dem_h=/{group}/land_ice_segments/dem/dem_h", "--format", "json",
        "SELECT beam, count(dem_h) AS n FROM atl06 WHERE beam = 'gt1l' GROUP BY beam",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(text.trim(), r#"{"beam":"gt1l","n":1500}"#);
    assert_eq!(out.granules.len(), 1);

    // Without a query: a prompt reading statements from standard input.
    use std::io::Write as _;
    let mut child = common::magg()
        .args(["sql", "--files", &pattern, "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT count(*) AS n\n  FROM atl06;\nSELECT 1 + 1 AS two;\n\\q\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "n\n9000\ntwo\n2\n");
}
