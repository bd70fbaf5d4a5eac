//! Shared helpers of the h5 test binaries (included with `#[path]`): the HDF5 fixtures
//! written by libhdf5 through h5py, generated once per test process into a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
pub const GENERATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/h5/generate.py");

/// Run `generate.py` into a fresh temp dir (kept for the life of the process).
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: run `bash scripts/setup-venv.sh` first (the h5 tests compare \
             against files written by libhdf5 through h5py)"
        );
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let out = std::process::Command::new(PYTHON)
            .arg(GENERATOR)
            .arg(&dir)
            .output()
            .expect("run generate.py");
        assert!(
            out.status.success(),
            "generate.py failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

pub fn expected(name: &str) -> serde_json::Value {
    let p = fixtures().join(format!("{name}.expected.json"));
    serde_json::from_slice(&std::fs::read(&p).expect("read expected json")).expect("parse expected json")
}
