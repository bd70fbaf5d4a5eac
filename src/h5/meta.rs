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
//! Besides the parser's demand misses, the cache is filled ahead of the parser by the
//! wave planner (`plan.rs`): [`MetaStorage::peek`] reads only what is cached (and names the
//! missing blocks), and [`MetaStorage::prefetch`] fetches a batch of blocks from async code,
//! in one concurrent wave, waiting for blocks others are fetching.
//!
//! Chunk data does not go through this cache (see `read.rs`): it is fetched exactly, once,
//! in a planned wave.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hdf5_reader::error::Error as ParseError;
use hdf5_reader::storage::{Storage, StorageBuffer};
use object_store::ObjectStore;
use object_store::path::Path;
use parking_lot::Mutex;

/// One cached block: filled once, waited for by blocking threads ([`OnceLock::wait`]) and
/// by async tasks ([`BlockSlot::ready`]).
#[derive(Default)]
struct BlockSlot {
    cell: OnceLock<Result<Bytes, String>>,
    filled: tokio::sync::Notify,
}

impl BlockSlot {
    fn filled_with(v: Result<Bytes, String>) -> Self {
        let s = Self::default();
        let _ = s.cell.set(v);
        s
    }

    /// Fill the slot (first value wins) and wake its async waiters.
    fn set(&self, v: Result<Bytes, String>) {
        if self.cell.set(v).is_ok() {
            self.filled.notify_waiters();
        }
    }

    /// Wait, from async code, until the slot is filled.
    async fn ready(&self) -> &Result<Bytes, String> {
        loop {
            let notified = self.filled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = self.cell.get() {
                return v;
            }
            notified.await;
        }
    }
}

type Slot = Arc<BlockSlot>;

pub(crate) struct MetaStorage {
    store: Arc<dyn ObjectStore>,
    location: Path,
    /// The file's path when it is local: a batch is read in one blocking task
    /// ([`crate::store::get_ranges`]), and a parser miss (already on a blocking thread)
    /// reads it directly.
    local: Option<std::path::PathBuf>,
    size: u64,
    block_size: u64,
    max_concurrency: usize,
    handle: tokio::runtime::Handle,
    blocks: Mutex<HashMap<u64, Slot>>,
    /// The first object-store error a miss hit, so the parser's generic I/O error can be
    /// turned back into a typed [`H5Error::Io`](super::H5Error).
    io_error: Mutex<Option<object_store::Error>>,
    fetched_bytes: AtomicU64,
    /// Batches fetched by [`MetaStorage::prefetch`] (the planner's rounds).
    planned_batches: AtomicU64,
    /// Batches fetched on a parser miss (what the planner did not foresee).
    demand_batches: AtomicU64,
}

impl MetaStorage {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        location: Path,
        local: Option<std::path::PathBuf>,
        size: u64,
        block_size: usize,
        max_concurrency: usize,
        handle: tokio::runtime::Handle,
    ) -> Self {
        Self {
            store,
            location,
            local,
            size,
            block_size: block_size.max(512) as u64,
            max_concurrency: max_concurrency.max(1),
            handle,
            blocks: Mutex::new(HashMap::new()),
            io_error: Mutex::new(None),
            fetched_bytes: AtomicU64::new(0),
            planned_batches: AtomicU64::new(0),
            demand_batches: AtomicU64::new(0),
        }
    }

    /// Whether the object is a local file.
    pub(crate) fn is_local(&self) -> bool {
        self.local.is_some()
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
            map.insert(b, Arc::new(BlockSlot::filled_with(Ok(bytes.slice(s..e)))));
            b += 1;
        }
        self.fetched_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }

    pub(crate) fn take_io_error(&self) -> Option<object_store::Error> {
        self.io_error.lock().take()
    }

    pub(crate) fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Bytes fetched for metadata so far (including the open prefix).
    pub(crate) fn fetched_bytes(&self) -> u64 {
        self.fetched_bytes.load(Ordering::Relaxed)
    }

    /// (planned batches, demand batches) so far.
    pub(crate) fn batches(&self) -> (u64, u64) {
        (self.planned_batches.load(Ordering::Relaxed), self.demand_batches.load(Ordering::Relaxed))
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
                    let s: Slot = Arc::new(BlockSlot::default());
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
            .map(|s| match s.cell.wait() {
                Ok(b) => Ok(b.clone()),
                Err(msg) => Err(ParseError::Io(std::io::Error::other(msg.clone()))),
            })
            .collect()
    }

    /// Fetch the blocks of `mine` (slots this caller created) from a blocking thread.
    fn fetch_blocks(&self, mine: &[(u64, Slot)]) {
        self.demand_batches.fetch_add(1, Ordering::Relaxed);
        if std::env::var_os("MAGG_H5_TRACE").is_some() {
            // Debugging aid for the I/O plan: which blocks the parser missed, and when.
            eprintln!(
                "h5 meta miss: {:?} blocks {:?}",
                std::thread::current().id(),
                mine.iter().map(|m| m.0).collect::<Vec<_>>()
            );
        }
        // Runs only on blocking-pool threads (see the module docs), so a local file is
        // read right here instead of through another blocking task.
        let result = match &self.local {
            Some(path) => self.deliver(mine, read_local(path, &self.runs(mine))),
            None => self.handle.block_on(self.fetch_runs(mine)),
        };
        if let Err(e) = result {
            self.io_error.lock().get_or_insert(e);
        }
    }

    /// Fetch the blocks of `mine` (adjacent blocks merged into one request, up to
    /// `max_concurrency` requests in flight) and fill their slots. On failure every slot
    /// of `mine` is filled with the error and forgotten, so a later read may retry it.
    async fn fetch_runs(&self, mine: &[(u64, Slot)]) -> Result<(), object_store::Error> {
        let ranges = self.runs(mine);
        let result = crate::store::get_ranges(&self.store, &self.location, &ranges, self.local.is_some(), self.max_concurrency)
            .await
            .map(|bodies| ranges.iter().cloned().zip(bodies).collect::<Vec<_>>());
        self.deliver(mine, result)
    }

    /// The byte ranges of `mine`'s blocks, adjacent blocks merged.
    fn runs(&self, mine: &[(u64, Slot)]) -> Vec<Range<u64>> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (b, _) in mine {
            match runs.last_mut() {
                Some((_, end)) if *end + 1 == *b => *end = *b,
                _ => runs.push((*b, *b)),
            }
        }
        runs.iter().map(|(a, z)| self.block_range(*a).start..self.block_range(*z).end).collect()
    }

    /// Fill the slots of `mine` from the fetched `(range, bytes)` pieces, or with the error.
    fn deliver(&self, mine: &[(u64, Slot)], result: Result<Vec<(Range<u64>, Bytes)>, object_store::Error>) -> Result<(), object_store::Error> {
        let out = match result {
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
                            slot.set(v);
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                for (_, slot) in mine {
                    slot.set(Err(msg.clone()));
                }
                self.forget(mine);
                Err(e)
            }
        };
        // Never leave a waiter hanging on a block this batch did not deliver.
        for (_, slot) in mine {
            slot.set(Err("block missing from fetch".to_string()));
        }
        out
    }

    /// Drop `blocks` from the cache if they still hold these slots (their fetch failed).
    fn forget(&self, blocks: &[(u64, Slot)]) {
        let mut map = self.blocks.lock();
        for (b, slot) in blocks {
            if map.get(b).is_some_and(|s| Arc::ptr_eq(s, slot)) {
                map.remove(b);
            }
        }
    }

    /// The bytes `offset..offset+len` if every block holding them is cached, without
    /// fetching; otherwise the blocks that are missing (or still being fetched). Reads past
    /// the end of the object are an error, as in [`Storage::read_range`].
    pub(crate) fn peek(&self, offset: u64, len: usize) -> Result<Result<StorageBuffer, Vec<u64>>, ParseError> {
        let end = self.check_range(offset, len)?;
        if len == 0 {
            return Ok(Ok(StorageBuffer::from_vec(Vec::new())));
        }
        let (first, last) = (offset / self.block_size, (end - 1) / self.block_size);
        let mut blocks = Vec::with_capacity((last - first + 1) as usize);
        let mut missing = Vec::new();
        {
            let map = self.blocks.lock();
            for b in first..=last {
                match map.get(&b).and_then(|s| s.cell.get()) {
                    Some(Ok(bytes)) => blocks.push(bytes.clone()),
                    // A block whose fetch failed is an error, as for the parser.
                    Some(Err(msg)) => return Err(ParseError::Io(std::io::Error::other(msg.clone()))),
                    None => missing.push(b),
                }
            }
        }
        if !missing.is_empty() {
            return Ok(Err(missing));
        }
        self.assemble(offset, len, first, &blocks).map(Ok)
    }

    /// Make sure `blocks` are cached, from async code: the missing ones are fetched in one
    /// concurrent batch (adjacent blocks merged), and blocks another caller is fetching are
    /// waited for, not fetched twice. Blocks past the end of the object are ignored. The
    /// fetch runs as its own task, so a caller that gives up (its future dropped) never
    /// leaves a block half-claimed for the others waiting on it.
    pub(crate) async fn prefetch(self: &Arc<Self>, blocks: impl IntoIterator<Item = u64>) -> Result<(), object_store::Error> {
        let mut wanted: Vec<u64> = blocks.into_iter().filter(|b| b.saturating_mul(self.block_size) < self.size).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut mine: Vec<(u64, Slot)> = Vec::new();
        let mut others: Vec<Slot> = Vec::new();
        {
            let mut map = self.blocks.lock();
            for b in wanted {
                match map.get(&b) {
                    Some(s) if s.cell.get().is_some() => {}
                    Some(s) => others.push(Arc::clone(s)),
                    None => {
                        let s: Slot = Arc::new(BlockSlot::default());
                        map.insert(b, Arc::clone(&s));
                        mine.push((b, s));
                    }
                }
            }
        }
        if std::env::var_os("MAGG_H5_TRACE").is_some() {
            eprintln!("h5 prefetch: blocks {:?}, waiting for {}", mine.iter().map(|m| m.0).collect::<Vec<_>>(), others.len());
        }
        if !mine.is_empty() {
            self.planned_batches.fetch_add(1, Ordering::Relaxed);
            let meta = Arc::clone(self);
            let task = tokio::spawn(async move { meta.fetch_runs(&mine).await });
            match task.await {
                Ok(r) => r?,
                Err(e) => return Err(object_store::Error::Generic { store: "magg h5 metadata cache", source: Box::new(e) }),
            }
        }
        for s in others {
            // A failed fetch of someone else's is theirs to report; the parser retries.
            let _ = s.ready().await;
        }
        Ok(())
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<u64, ParseError> {
        offset.checked_add(len as u64).filter(|e| *e <= self.size).ok_or(ParseError::UnexpectedEof {
            offset,
            needed: len as u64,
            available: self.size.saturating_sub(offset),
        })
    }

    /// `len` bytes at `offset` out of consecutive cached blocks starting at block `first`.
    fn assemble(&self, offset: u64, len: usize, first: u64, blocks: &[Bytes]) -> Result<StorageBuffer, ParseError> {
        let start_in_first = (offset - first * self.block_size) as usize;
        if let [one] = blocks {
            // Zero-copy view into the cached block.
            let owner: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(one.clone());
            return StorageBuffer::from_shared_owner(owner, start_in_first, len);
        }
        let mut out = Vec::with_capacity(len);
        let mut skip = start_in_first;
        for b in blocks {
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

/// Read `ranges` of the local file at `path` (on a blocking thread).
fn read_local(path: &std::path::Path, ranges: &[Range<u64>]) -> Result<Vec<(Range<u64>, Bytes)>, object_store::Error> {
    use std::io::{Read, Seek, SeekFrom};
    let err = |e: std::io::Error| object_store::Error::Generic { store: "LocalFileSystem", source: format!("{}: {e}", path.display()).into() };
    let mut file = std::fs::File::open(path).map_err(err)?;
    ranges
        .iter()
        .map(|r| {
            let mut buf = vec![0u8; (r.end - r.start) as usize];
            file.seek(SeekFrom::Start(r.start)).map_err(err)?;
            file.read_exact(&mut buf).map_err(err)?;
            Ok((r.clone(), Bytes::from(buf)))
        })
        .collect()
}

impl Storage for MetaStorage {
    fn len(&self) -> u64 {
        self.size
    }

    fn read_range(&self, offset: u64, len: usize) -> Result<StorageBuffer, ParseError> {
        let end = self.check_range(offset, len)?;
        if len == 0 {
            return Ok(StorageBuffer::from_vec(Vec::new()));
        }
        let first = offset / self.block_size;
        let last = (end - 1) / self.block_size;
        let blocks = self.ensure(first, last)?;
        self.assemble(offset, len, first, &blocks)
    }
}
