//! `magg run` with granules and store on an S3-compatible server (moto_server on
//! 127.0.0.1): the same chunks as a local run, byte for byte.

mod common;

use std::collections::BTreeMap;

#[test]
fn run_reads_and_writes_s3_like_local() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::synth(&dir.path().join("g"), 2, 4000, 31);
    let s3 = common::Moto::start();
    s3.create_bucket("granules");
    s3.create_bucket("out");

    // The same catalog twice: local paths, and s3:// URLs of uploaded copies.
    let mut remote = out.catalog.clone();
    for urls in remote.catalog.values_mut() {
        for u in urls.iter_mut() {
            let name = std::path::Path::new(u.as_str()).file_name().unwrap().to_string_lossy().into_owned();
            *u = format!("s3://granules/ATL06/{name}");
        }
    }
    for g in &out.granules {
        let name = g.file_name().unwrap().to_string_lossy();
        s3.upload("granules", &format!("ATL06/{name}"), g);
    }
    let remote_cat = dir.path().join("remote.json");
    remote.write(&remote_cat).unwrap();

    let local_store = dir.path().join("local.zarr");
    let (code, _, err) = common::magg_output(&[
        "run", "--catalog", out.catalog_path.to_str().unwrap(), "--store", local_store.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");

    let status = common::magg()
        .args(["run", "--catalog", remote_cat.to_str().unwrap(), "--store", "s3://out/runs/a.zarr"])
        .envs(s3.env())
        .env("CI", "true")
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    // Every chunk object of the S3 store equals the local chunk file.
    let listing = s3.boto3(
        "import hashlib\n\
         for o in s3.list_objects_v2(Bucket='out', Prefix='runs/a.zarr/')['Contents']:\n    \
             k = o['Key']\n    \
             if not k.endswith('zarr.json'):\n        \
                 print(k[len('runs/a.zarr/'):], hashlib.sha256(s3.get_object(Bucket='out', Key=k)['Body'].read()).hexdigest())",
    );
    let remote_chunks: BTreeMap<String, String> =
        listing.lines().filter_map(|l| l.split_once(' ')).map(|(k, h)| (k.to_owned(), h.to_owned())).collect();
    assert!(remote_chunks.len() >= 11 * out.catalog.catalog.len(), "{} chunk objects", remote_chunks.len());
    let script = format!(
        "import hashlib, pathlib\nroot = pathlib.Path(r'{}')\n\
         for p in sorted(root.rglob('*')):\n    \
             if p.is_file() and p.name != 'zarr.json':\n        \
                 print(p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())",
        local_store.display()
    );
    let out = std::process::Command::new(common::python()).args(["-c", &script]).output().unwrap();
    let local_chunks: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, h)| (k.to_owned(), h.to_owned()))
        .collect();
    assert_eq!(remote_chunks, local_chunks, "the S3 store's chunks differ from the local store's");
}
