//! Reading through `s3://` against a real S3-compatible server (moto_server from the test
//! venv) on 127.0.0.1: same values as h5py wrote, typed NotFound for a missing key.

#[path = "h5_support.rs"]
mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::datatypes::Float32Type;
use magg::h5::{H5Error, H5File, ReadOptions, RowSelection};
use magg::store::StoreOptions;

const MOTO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/moto_server");

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> (Server, String) {
    assert!(
        std::path::Path::new(MOTO).exists(),
        "{MOTO} is missing: run `bash scripts/setup-venv.sh` (tests/python/requirements.txt has moto[server])"
    );
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(MOTO)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto_server");
    let server = Server(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "moto_server did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, format!("http://127.0.0.1:{port}"))
}

fn upload(endpoint: &str, bucket: &str, key: &str, file: &std::path::Path) {
    let script = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', \
         aws_access_key_id='testing', aws_secret_access_key='testing')\n\
         s3.create_bucket(Bucket='{bucket}')\ns3.upload_file(r'{}', '{bucket}', '{key}')\n",
        file.display()
    );
    let out = Command::new(support::PYTHON).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "upload failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_through_s3_compatible_server() {
    let (_server, endpoint) = start_moto();
    upload(&endpoint, "granules", "ATL06/atl06_like.h5", &support::fixtures().join("atl06_like.h5"));
    let opts = StoreOptions {
        endpoint: Some(endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        allow_http: true,
        ..StoreOptions::none()
    };
    let url = "s3://granules/ATL06/atl06_like.h5";
    let f = H5File::open_url(url, &opts, &ReadOptions::default()).await.unwrap();
    let exp = support::expected("atl06_like.h5");
    let want = exp["datasets"]["/gt1l/land_ice_segments/h_li"]["values"].as_array().unwrap();
    let got = f.read("/gt1l/land_ice_segments/h_li", RowSelection::All).await.unwrap();
    let got = got.as_primitive::<Float32Type>();
    assert_eq!(got.len(), want.len());
    for (i, w) in want.iter().enumerate() {
        assert_eq!(format!("{:x}", got.value(i).to_bits()), w.as_str().unwrap(), "row {i}");
    }
    let part = f.read("/gt1l/land_ice_segments/h_li", RowSelection::Ranges(vec![19_990..20_010])).await.unwrap();
    assert_eq!(part.as_primitive::<Float32Type>().values()[..], got.values()[19_990..20_010]);

    let missing = "s3://granules/ATL06/nope.h5";
    let e = H5File::open_url(missing, &opts, &ReadOptions::default()).await.unwrap_err();
    assert!(matches!(e, H5Error::NotFound { .. }) && e.to_string().contains(missing), "{e}");
}
