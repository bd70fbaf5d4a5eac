//! Arbitrary bytes as an HDF5 object in an in-memory store: open it, walk the tree and read
//! every dataset (whole and a row range). Any outcome but a panic or a hang is fine.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use magg_fuzz::h5::{H5File, ReadOptions, RowSelection, TreeEntry};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap())
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(async {
        let mem = Arc::new(InMemory::new());
        let p = Path::from("fuzz.h5");
        if mem.put(&p, data.to_vec().into()).await.is_err() {
            return;
        }
        let store: Arc<dyn ObjectStore> = mem;
        let opts = ReadOptions { block_size: 4096, decode_threads: 1, max_chunk_bytes: 1 << 22, ..ReadOptions::default() };
        let Ok(f) = H5File::open(store, p, "mem://fuzz.h5", &opts).await else { return };
        let Ok(tree) = f.tree().await else { return };
        for e in tree.iter().take(64) {
            if let TreeEntry::Dataset(d) = e {
                if d.shape.len() > 1 || d.num_rows() > 1 << 20 {
                    continue;
                }
                let _ = f.read(&d.path, RowSelection::All).await;
                let n = d.num_rows();
                if n > 2 {
                    let _ = f.read(&d.path, RowSelection::Ranges(vec![1..n / 2 + 1])).await;
                }
            }
        }
    });
});
