//! The metadata cache: an `hdf5-reader` [`Storage`] over object_store byte ranges.
//!
//! `hdf5-reader` parses superblocks, object headers, heaps and index nodes through a
//! synchronous `read_range(offset, len)`. Serving each of those small reads with its own
//! GET would cost one round trip per structure, so reads are served from aligned blocks of
//! [`ReadOptions::block_size`](super::ReadOptions) bytes, each fetched once. A read that
//! spans several missing blocks fetches them all in one concurrent batch (adjacent blocks
//! merged into one request). The first block is fetched by [`H5File::open`](super::H5File)
//! together with the object size, so parsing the superblock and the root group usually
//! costs no further request.
//!
//! The parser only ever runs on tokio's blocking pool (`spawn_blocking`); a cache miss
//! there drives the async store with [`tokio::runtime::Handle::block_on`], which is allowed
//! on a blocking thread and never done on an async worker. Several parser threads may run
//! at once (one per dataset being resolved); a block another thread is already fetching is
//! waited for, not fetched twice, so their misses share round trips.
//!
//! Chunk data does not go through this cache (see `read.rs`): it is fetched exactly, once,
//! in a planned wave.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use hdf5_reader::error::Error as ParseError;
use hdf5_reader::storage::{Storage, StorageBuffer};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;

type Slot = Arc<OnceLock<Result<Bytes, String>>>;

pub(crate) struct MetaStorage {
    store: Arc<dyn ObjectStore>,
    location: Path,
    size: u64,
    block_size: u64,
    max_concurrency: usize,
    handle: tokio::runtime::Handle,
    blocks: Mutex<HashMap<u64, Slot>>,
    /// The first object-store error a miss hit, so the parser's generic I/O error can be
    /// turned back into a typed [`H5Error::Io`](super::H5Error).
    io_error: Mutex<Option<object_store::Error>>,
    fetched_bytes: AtomicU64,
}

impl MetaStorage {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        location: Path,
        size: u64,
        block_size: usize,
        max_concurrency: usize,
        handle: tokio::runtime::Handle,
    ) -> Self {
        Self {
            store,
            location,
            size,
            block_size: block_size.max(512) as u64,
            max_concurrency: max_concurrency.max(1),
            handle,
            blocks: Mutex::new(HashMap::new()),
            io_error: Mutex::new(None),
            fetched_bytes: AtomicU64::new(0),
        }
    }

    /// Seed the cache with bytes fetched at `offset` (the prefix read at open). Only whole
    /// blocks (or the file's last, short block) are kept.
    pub(crate) fn seed(&self, offset: u64, bytes: &Bytes) {
        let bs = self.block_size;
        let mut map = self.blocks.lock();
        let mut b = offset.div_ceil(bs);
        loop {
            let start = b * bs;
            let end = (start + bs).min(self.size);
            if start >= self.size || end > offset + bytes.len() as u64 {
                break;
            }
            let s = (start - offset) as usize;
            let e = (end - offset) as usize;
            let slot: Slot = Arc::new(OnceLock::new());
            let _ = slot.set(Ok(bytes.slice(s..e)));
            map.insert(b, slot);
            b += 1;
        }
        self.fetched_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    pub(crate) fn take_io_error(&self) -> Option<object_store::Error> {
        self.io_error.lock().take()
    }

    /// Bytes fetched for metadata so far (including the open prefix).
    pub(crate) fn fetched_bytes(&self) -> u64 {
        self.fetched_bytes.load(Ordering::Relaxed)
    }

    fn block_range(&self, b: u64) -> Range<u64> {
        let start = b * self.block_size;
        start..(start + self.block_size).min(self.size)
    }

    /// Make sure blocks `first..=last` are cached, fetching the missing ones that no other
    /// thread is already fetching in one concurrent batch.
    fn ensure(&self, first: u64, last: u64) -> Result<Vec<Bytes>, ParseError> {
        let mut mine: Vec<(u64, Slot)> = Vec::new();
        let mut slots: Vec<Slot> = Vec::with_capacity((last - first + 1) as usize);
        {
            let mut map = self.blocks.lock();
            for b in first..=last {
                let slot = map.entry(b).or_insert_with(|| {
                    let s: Slot = Arc::new(OnceLock::new());
                    mine.push((b, Arc::clone(&s)));
                    s
                });
                slots.push(Arc::clone(slot));
            }
        }
        if !mine.is_empty() {
            self.fetch_blocks(&mine);
        }
        slots
            .iter()
            .map(|s| match s.wait() {
                Ok(b) => Ok(b.clone()),
                Err(msg) => Err(ParseError::Io(std::io::Error::other(msg.clone()))),
            })
            .collect()
    }

    fn fetch_blocks(&self, mine: &[(u64, Slot)]) {
        // Merge runs of adjacent blocks into one request each.
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (b, _) in mine {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == *b => *end = *b,
                _ => runs.push((*b, *b)),
            }
        }
        let ranges: Vec<Range<u64>> = runs
            .iter()
            .map(|(a, z)| self.block_range(*a).start..self.block_range(*z).end)
            .collect();
        if std::env::var_os("MAGG_H5_TRACE").is_some() {
            // Debugging aid for the I/O plan: which blocks the parser missed, and when.
            eprintln!(
                "h5 meta miss: {:?} blocks {:?} ranges {ranges:?}",
                std::thread::current().id(),
                mine.iter().map(|m| m.0).collect::<Vec<_>>()
            );
        }
        let store = Arc::clone(&self.store);
        let location = self.location.clone();
        let conc = self.max_concurrency;
        let fetch = async move {
            futures::stream::iter(ranges.into_iter().map(|r| {
                let store = Arc::clone(&store);
                let location = location.clone();
                async move { store.get_range(&location, r.clone()).await.map(|b| (r, b)) }
            }))
            .buffer_unordered(conc)
            .try_collect::<Vec<_>>()
            .await
        };
        // Runs only on blocking-pool threads (see the module docs).
        let result = self.handle.block_on(fetch);
        if std::env::var_os("MAGG_H5_TRACE").is_some() {
            eprintln!("h5 meta miss done: {:?}", std::thread::current().id());
        }
        match result {
            Ok(pieces) => {
                for (r, bytes) in pieces {
                    self.fetched_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    for (b, slot) in mine {
                        let br = self.block_range(*b);
                        if br.start >= r.start && br.end <= r.end {
                            let s = (br.start - r.start) as usize;
                            let e = (br.end - r.start) as usize;
                            let v = if e <= bytes.len() {
                                Ok(bytes.slice(s..e))
                            } else {
                                Err(format!("short read: got {} bytes, expected {}", bytes.len(), r.end - r.start))
                            };
                            let _ = slot.set(v);
                        }
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                self.io_error.lock().get_or_insert(e);
                for (_, slot) in mine {
                    let _ = slot.set(Err(msg.clone()));
                }
                // Failed blocks are forgotten so a later read may retry them.
                let mut map = self.blocks.lock();
                for (b, _) in mine {
                    map.remove(b);
                }
            }
        }
        // Never leave a waiter hanging on a block this batch did not deliver.
        for (_, slot) in mine {
            let _ = slot.set(Err("block missing from fetch".to_string()));
        }
    }
}

impl Storage for MetaStorage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_range(&self, offset: u64, len: usize) -> Result<StorageBuffer, ParseError> {
        let end = offset.checked_add(len as u64).filter(|e| *e <= self.size).ok_or(
            ParseError::UnexpectedEof {
                offset,
                needed: len as u64,
                available: self.size.saturating_sub(offset),
            },
        )?;
        if len == 0 {
            return Ok(StorageBuffer::from_vec(Vec::new()));
        }
        let first = offset / self.block_size;
        let last = (end - 1) / self.block_size;
        let blocks = self.ensure(first, last)?;
        let start_in_first = (offset - first * self.block_size) as usize;
        if let [one] = blocks.as_slice() {
            // Zero-copy view into the cached block.
            let owner: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(one.clone());
            return StorageBuffer::from_shared_owner(owner, start_in_first, len);
        }
        let mut out = Vec::with_capacity(len);
        let mut skip = start_in_first;
        for b in &blocks {
            let take = (len - out.len()).min(b.len().saturating_sub(skip));
            out.extend_from_slice(&b[skip..skip + take]);
            skip = 0;
        }
        if out.len() != len {
            return Err(ParseError::UnexpectedEof { offset, needed: len as u64, available: out.len() as u64 });
        }
        Ok(StorageBuffer::from_vec(out))
    }
}
