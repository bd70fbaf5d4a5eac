//! Helpers shared by the integration tests: synthetic data, the Python venv, the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use magg::synth::{SynthOptions, SynthOutput, generate};

/// The venv's Python (made by scripts/setup-venv.sh, which the test command runs first).
pub fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/setup-venv.sh` (the README's test command does)",
        p.display()
    );
    p
}

/// Run a Python script from tests/python with arguments; returns stdout, panics with
/// stderr on failure.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
    let out = Command::new(python()).arg(&path).args(args).output().expect("start python");
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A point in West Antarctica the small test sets cross.
pub const THROUGH: (f64, f64) = (-78.5, -110.0);

/// Write `granules` synthetic granules of `rows` segments per beam into `dir`, every track
/// through [`THROUGH`] (so they share at least one parent cell).
pub fn synth(dir: &Path, granules: usize, rows: usize, seed: u64) -> SynthOutput {
    generate(&SynthOptions {
        out_dir: dir.to_owned(),
        granules,
        seed,
        rows_per_beam: rows,
        through: Some(THROUGH),
        ..SynthOptions::default()
    })
    .expect("synthetic granules")
}

/// The `magg` binary built for this test run.
pub fn magg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_magg"))
}

/// Run `magg` with args; returns (exit code, stdout, stderr).
pub fn magg_output(args: &[&str]) -> (i32, String, String) {
    let out = magg().args(args).env("CI", "true").output().expect("run magg");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
