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

/// Every object of a local store but its `zarr.json` documents, relative path -> bytes.
pub fn store_chunks(store: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
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

/// An S3-compatible server (moto_server from the test venv) on 127.0.0.1, killed when
/// dropped, pass or fail.
pub struct Moto {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Start the server on a free loopback port and wait until it listens.
    pub fn start() -> Moto {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: run `bash scripts/setup-venv.sh` (tests/python/requirements.txt has moto[server])",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server");
        let server = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < std::time::Duration::from_secs(30), "moto_server did not listen on {port}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        server
    }

    /// Store options that reach this server with its test credentials.
    pub fn store_options(&self) -> magg::store::StoreOptions {
        magg::store::StoreOptions {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".into()),
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            allow_http: true,
            ..magg::store::StoreOptions::none()
        }
    }

    /// The environment a `magg` process needs to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Run boto3 statements against the server (`s3` is the client).
    pub fn boto3(&self, statements: &str) -> String {
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
             aws_access_key_id='testing', aws_secret_access_key='testing')\n{statements}\n",
            self.endpoint
        );
        let out = Command::new(python()).arg("-c").arg(script).output().expect("run python");
        assert!(out.status.success(), "boto3 failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Create a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.boto3(&format!("s3.create_bucket(Bucket='{bucket}')"));
    }

    /// Upload a local file.
    pub fn upload(&self, bucket: &str, key: &str, file: &Path) {
        self.boto3(&format!("s3.upload_file(r'{}', '{bucket}', '{key}')", file.display()));
    }
}

