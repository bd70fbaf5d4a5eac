//! The metadata wave planner: warm the metadata cache for a set of datasets in as few
//! sequential round trips ("waves") as the file's pointer structure allows, before the
//! parser runs.
//!
//! `hdf5-reader` parses on demand: it reads a structure, follows one pointer, reads the
//! next. Left alone, every pointer that leads out of the cached blocks costs a round trip,
//! one after the other, and several datasets only overlap by luck. The planner instead
//! works in **rounds**. Each round runs, on a blocking thread and against the cache only
//! (a [`Probe`] view that never fetches and records every block it misses):
//!
//! * a **dry run** of exactly what the read path will do for each pending dataset (the
//!   path lookup, [`super::resolve_dataset`], the chunk-index walk for the requested rows)
//!   on a throw-away `Hdf5File` over the probe view. It stops at its first missing block,
//!   which it records. This makes the plan complete: whatever the parser will read is
//!   fetched by some round, never by a demand miss later;
//! * the **fan-out rules**, which look further than the first miss, so that everything
//!   whose address is already known is fetched in the same round:
//!   - every continuation chunk of an object header whose address is known (a header
//!     that grew several times is a tree of chunks all over the file);
//!   - a child link found in the chunks read so far, before the rest of the parent's
//!     header arrives;
//!   - symbol-table groups (`libver='earliest'`): the local heap, the B-tree nodes and
//!     the symbol-table nodes together; a child's cached B-tree/heap addresses (symbol
//!     table entry scratch pad) together with its header; and, when the group's link names
//!     are not cached yet (its local heap was relocated when the group grew), the headers
//!     of **all** its children (if they lie in at most [`MAX_SPECULATIVE_BLOCKS`] blocks),
//!     speculatively, in
//!     the same round as the names;
//!   - dense link or attribute storage: the fractal heap header and the name-index B-tree
//!     header together, then their root blocks;
//!   - a dataset's chunk-index root as soon as its layout message is read (in parallel
//!     with the rest of its header) and the global heap collections its variable-length
//!     string attributes point into.
//!
//! Then every missing block of the round is fetched in **one** concurrent batch
//! ([`MetaStorage::prefetch`]) and the next round starts. A dataset whose dry run needs
//! nothing more is reported ready at once, so its chunk fetch overlaps the remaining
//! metadata rounds of the others. The number of rounds is the depth of the pointer chain
//! through blocks not yet fetched, not the number of structures or chunks.
//!
//! The planner never reports parse errors: a target that fails for any reason other than
//! a missing block is "ready", and the real read path then reports the typed error.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hdf5_reader::Hdf5File;
use hdf5_reader::error::Error as ParseError;
use hdf5_reader::io::Cursor;
use hdf5_reader::messages::HdfMessage;
use hdf5_reader::messages::datatype::{Datatype, StringSize};
use hdf5_reader::messages::layout::DataLayout;
use hdf5_reader::messages::link::LinkTarget;
use hdf5_reader::messages::symbol_table_msg::SymbolTableMessage;
use hdf5_reader::storage::{Storage, StorageBuffer};
use parking_lot::Mutex;

use super::meta::MetaStorage;
use super::{H5Error, H5File, Resolved, RowSelection, is_undefined};

/// More rounds than any sane file needs; a corrupt file with pointer cycles stops here and
/// the read path reports it.
const MAX_ROUNDS: usize = 64;
/// A group whose children's headers lie in more uncached blocks than this is not
/// speculated on (its names are fetched first): at most 16 x 32 KiB by default.
const MAX_SPECULATIVE_BLOCKS: usize = 16;
/// Object header chunks followed per header by the fan-out rule.
const MAX_HEADER_CHUNKS: usize = 1024;
/// Largest single structure the fan-out rules ask for; bigger ones (corrupt sizes, huge
/// headers) are left to the dry run, which asks for what the parser really reads.
const MAX_FANOUT_READ: usize = 1 << 20;
/// Smallest global heap collection libhdf5 writes.
const GLOBAL_HEAP_MIN: u64 = 4096;

/// A dataset the caller is about to resolve (and, with `rows`, read).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Normalised absolute path.
    pub(crate) path: String,
    /// Rows whose chunk-index entries will be read; `None` for metadata only.
    pub(crate) rows: Option<RowSelection>,
}

/// Shared state of one round's cache-only views: the blocks they missed.
struct Probe {
    meta: Arc<MetaStorage>,
    missing: Mutex<BTreeSet<u64>>,
    misses: AtomicU64,
}

/// A cache-only [`Storage`] over the metadata cache, `base` bytes in (HDF5 addresses are
/// relative to the superblock). A read of anything not cached records the missing blocks
/// and fails.
struct ProbeView {
    probe: Arc<Probe>,
    base: u64,
}

impl Storage for ProbeView {
    fn len(&self) -> u64 {
        self.probe.meta.len().saturating_sub(self.base)
    }

    fn read_range(&self, offset: u64, len: usize) -> Result<StorageBuffer, ParseError> {
        let abs = offset.checked_add(self.base).ok_or(ParseError::OffsetOutOfBounds(offset))?;
        match self.probe.meta.peek(abs, len)? {
            Ok(buf) => Ok(buf),
            Err(blocks) => {
                self.probe.misses.fetch_add(1, Ordering::Relaxed);
                self.probe.missing.lock().extend(blocks);
                Err(ParseError::Io(std::io::Error::other("planner probe: block not cached")))
            }
        }
    }
}

/// Warm the cache for `targets`. `ready(i)` is called once target `i` needs no more
/// metadata (or the planner gives up on it); targets never reported ready are left to the
/// read path's demand misses. Errors are the store's (a failed batch fetch).
pub(crate) async fn warm(file: &H5File, targets: &[Target], mut ready: impl FnMut(usize)) -> Result<(), H5Error> {
    let mut pending: Vec<usize> = (0..targets.len()).collect();
    if file.is_local() && !file.options().plan_local_metadata {
        // A local miss is one read on the parser's thread: cheaper than planning it.
        pending.drain(..).for_each(&mut ready);
        return Ok(());
    }
    let mut last: Option<BTreeSet<u64>> = None;
    for _ in 0..MAX_ROUNDS {
        if pending.is_empty() {
            return Ok(());
        }
        let jobs: Vec<(usize, Target, Option<Arc<Resolved>>)> =
            pending.iter().map(|&i| (i, targets[i].clone(), file.cached_resolved(&targets[i].path))).collect();
        let f = file.clone();
        let round = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| probe_round(&f, &jobs)))
        })
        .await;
        let Ok(Ok((still, missing))) = round else {
            // The probe panicked on input the parser does not expect: stop planning, the
            // read path reports what is wrong.
            break;
        };
        for &i in &pending {
            if !still.contains(&i) {
                ready(i);
            }
        }
        pending = still;
        if missing.is_empty() || last.as_ref() == Some(&missing) {
            // Nothing to fetch, or no progress: leave the rest to the read path.
            break;
        }
        file.meta().prefetch(missing.iter().copied()).await.map_err(|e| H5Error::io(file.url(), e))?;
        last = Some(missing);
    }
    for i in pending {
        ready(i);
    }
    Ok(())
}

/// One round: dry-run and fan out every pending target against the cache. Returns the
/// targets that still miss something and the blocks to fetch.
fn probe_round(file: &H5File, jobs: &[(usize, Target, Option<Arc<Resolved>>)]) -> (Vec<usize>, BTreeSet<u64>) {
    let probe = Arc::new(Probe { meta: Arc::clone(file.meta()), missing: Mutex::new(BTreeSet::new()), misses: AtomicU64::new(0) });
    let sb = file.parser().superblock();
    let (o, l) = (sb.offset_size, sb.length_size);
    let rel = ProbeView { probe: Arc::clone(&probe), base: sb.base_address };
    // A fresh parser per round: its caches only ever hold what this round could read.
    let dry = Hdf5File::from_storage_with_options(
        Arc::new(ProbeView { probe: Arc::clone(&probe), base: 0 }),
        super::parser_options(file.options()),
    );
    let root = sb.root_object_header_address().ok();
    let mut still = Vec::new();
    for (i, t, resolved) in jobs {
        let before = probe.misses.load(Ordering::Relaxed);
        if let Ok(dry) = &dry {
            dry_run(file, dry, t, resolved.as_deref());
        }
        if probe.misses.load(Ordering::Relaxed) > before {
            still.push(*i);
            if let Some(root) = root {
                FanOut { v: &rel, o, l }.path(root, &t.path);
            }
        }
    }
    let missing = std::mem::take(&mut *probe.missing.lock());
    (still, missing)
}

/// What the read path will do for `t`, on the cache-only parser `dry`. Misses are recorded
/// by the probe; every other outcome (including errors) means "nothing more to fetch".
fn dry_run(file: &H5File, dry: &Hdf5File, t: &Target, resolved: Option<&Resolved>) {
    let owned;
    let r = match resolved {
        Some(r) => r,
        None => {
            let Ok(ds) = dry.dataset(&t.path) else { return };
            let Ok(r) = super::resolve_dataset(dry, file.url(), None, &t.path, ds) else { return };
            owned = r;
            &owned
        }
    };
    let Some(sel) = &t.rows else { return };
    let sb = dry.superblock();
    let Ok(Some(walk)) = super::read::index_walk(file, r, sel) else { return };
    let _ = super::read::collect_entries(
        dry,
        walk.address,
        &walk.dims,
        walk.indexing.as_ref(),
        &r.info.shape,
        r.info.max_shape.as_deref(),
        walk.elem,
        walk.bounds,
        sb.offset_size,
        sb.length_size,
    );
}

/// The messages of an object header that the fan-out rules use, from the chunks that are
/// cached (the others are asked for).
#[derive(Default)]
struct Scanned {
    msgs: Vec<HdfMessage>,
}

/// A lookup of one link name in a group.
enum Lookup {
    /// The child's object header address and, for a symbol-table entry that caches them,
    /// its group B-tree and local heap addresses.
    Found(u64, Option<SymbolTableMessage>),
    /// Not decidable from the cache (what it needs is recorded), or not a hard link.
    Unknown,
}

/// The fan-out rules (see the module docs), reading through a cache-only view: every read
/// that misses records its blocks for this round's batch.
struct FanOut<'a> {
    v: &'a ProbeView,
    o: u8,
    l: u8,
}

impl FanOut<'_> {
    /// Exactly `len` bytes at `addr`, if cached (a miss is recorded).
    fn read(&self, addr: u64, len: usize) -> Option<StorageBuffer> {
        if len > MAX_FANOUT_READ {
            return None;
        }
        self.v.read_range(addr, len).ok().filter(|b| b.as_ref().len() == len)
    }

    /// Up to `len` bytes at `addr` (fewer at the end of the object), if cached.
    fn read_clipped(&self, addr: u64, len: usize) -> Option<StorageBuffer> {
        let avail = usize::try_from(self.v.len().saturating_sub(addr)).unwrap_or(usize::MAX);
        self.read(addr, len.min(avail))
    }

    /// Ask for the block holding `addr` (an object header, heap or index node not read yet).
    fn touch(&self, addr: u64) {
        if !is_undefined(addr, self.o) {
            let _ = self.read(addr, 1);
        }
    }

    fn path(&self, root: u64, path: &str) {
        let mut addr = root;
        let mut hint: Option<SymbolTableMessage> = None;
        for name in path.split('/').filter(|s| !s.is_empty()) {
            let hdr = self.header(addr);
            let stab = hdr.msgs.iter().find_map(|m| match m {
                HdfMessage::SymbolTable(st) => Some(st.clone()),
                _ => None,
            });
            let lookup = if let Some(link) = hdr.msgs.iter().find_map(|m| match m {
                HdfMessage::Link(k) if k.name == name => Some(k),
                _ => None,
            }) {
                match link.target {
                    LinkTarget::Hard { address } => Lookup::Found(address, None),
                    _ => Lookup::Unknown,
                }
            } else if let Some(st) = stab.or(hint.take()) {
                self.symbol_table(&st, name)
            } else {
                for m in &hdr.msgs {
                    if let HdfMessage::LinkInfo(li) = m {
                        self.dense(li.fractal_heap_address, li.btree_name_index_address);
                    }
                }
                Lookup::Unknown
            };
            match lookup {
                Lookup::Found(a, h) => {
                    addr = a;
                    hint = h;
                    if let Some(h) = &hint {
                        // Fetch the child group's index with its header, not after it.
                        self.touch(h.btree_address);
                        self.touch(h.heap_address);
                    }
                }
                Lookup::Unknown => return,
            }
        }
        // The dataset itself.
        let hdr = self.header(addr);
        for m in &hdr.msgs {
            match m {
                HdfMessage::DataLayout(dl) => {
                    if let DataLayout::Chunked { address, .. } = dl.layout {
                        self.touch(address);
                    }
                }
                HdfMessage::Attribute(a) => self.global_heaps(&a.datatype, &a.raw_data),
                HdfMessage::AttributeInfo(ai) => self.dense(ai.fractal_heap_address, ai.btree_name_index_address),
                _ => {}
            }
        }
    }

    /// Read the cached chunks of the object header at `addr`, asking for every chunk
    /// (continuation) whose address is known and that is not cached.
    fn header(&self, addr: u64) -> Scanned {
        let mut out = Scanned::default();
        let Some(head) = self.read(addr, 4) else { return out };
        let v2 = head.as_ref() == b"OHDR";
        let mut chunks: Vec<(u64, u64)> = Vec::new();
        if v2 {
            let Some(pre) = self.read(addr, 6) else { return out };
            let flags = pre.as_ref()[5];
            let width = 1usize << (flags & 3);
            let mut prefix = 6usize;
            if flags & 0x20 != 0 {
                prefix += 16;
            }
            if flags & 0x10 != 0 {
                prefix += 4;
            }
            let Some(p) = self.read(addr, prefix + width) else { return out };
            let Some(size) = le_uint(&p.as_ref()[prefix..prefix + width]) else { return out };
            let crt = flags & 0x04 != 0;
            let start = addr.saturating_add((prefix + width) as u64);
            let mut pending = vec![(start, size, true)];
            let mut visited = HashSet::new();
            while let Some((at, len, first)) = pending.pop() {
                if visited.len() >= MAX_HEADER_CHUNKS || !visited.insert(at) {
                    continue;
                }
                let Ok(n) = usize::try_from(len) else { continue };
                let Some(bytes) = self.read(at, n) else { continue };
                let body = if first {
                    bytes.as_ref()
                } else {
                    // OCHK signature .. messages .. checksum
                    match bytes.as_ref().get(4..n.saturating_sub(4)) {
                        Some(b) if bytes.as_ref().starts_with(b"OCHK") => b,
                        _ => continue,
                    }
                };
                self.messages_v2(body, crt, &mut out.msgs, &mut chunks);
                pending.extend(chunks.drain(..).map(|(a, l)| (a, l, false)));
            }
        } else {
            let Some(pre) = self.read(addr, 16) else { return out };
            if pre.as_ref()[0] != 1 {
                return out;
            }
            let size = u64::from(u32::from_le_bytes([pre.as_ref()[8], pre.as_ref()[9], pre.as_ref()[10], pre.as_ref()[11]]));
            let mut pending = vec![(addr.saturating_add(16), size)];
            let mut visited = HashSet::new();
            while let Some((at, len)) = pending.pop() {
                if visited.len() >= MAX_HEADER_CHUNKS || !visited.insert(at) {
                    continue;
                }
                let Ok(n) = usize::try_from(len) else { continue };
                let Some(bytes) = self.read(at, n) else { continue };
                self.messages_v1(bytes.as_ref(), &mut out.msgs, &mut chunks);
                pending.append(&mut chunks);
            }
        }
        out
    }

    fn messages_v1(&self, mut b: &[u8], out: &mut Vec<HdfMessage>, conts: &mut Vec<(u64, u64)>) {
        while b.len() >= 8 {
            let ty = u16::from_le_bytes([b[0], b[1]]);
            let size = usize::from(u16::from_le_bytes([b[2], b[3]]));
            let flags = b[4];
            let Some(data) = b.get(8..8 + size) else { return };
            self.message(ty, flags, data, out, conts);
            b = &b[8 + size..];
        }
    }

    fn messages_v2(&self, mut b: &[u8], crt: bool, out: &mut Vec<HdfMessage>, conts: &mut Vec<(u64, u64)>) {
        let env = if crt { 6 } else { 4 };
        while b.len() >= env {
            let ty = u16::from(b[0]);
            let size = usize::from(u16::from_le_bytes([b[1], b[2]]));
            let flags = b[3];
            let Some(data) = b.get(env..env + size) else { return };
            self.message(ty, flags, data, out, conts);
            b = &b[env + size..];
        }
    }

    fn message(&self, ty: u16, flags: u8, data: &[u8], out: &mut Vec<HdfMessage>, conts: &mut Vec<(u64, u64)>) {
        use hdf5_reader::messages::{
            MSG_ATTRIBUTE, MSG_ATTRIBUTE_INFO, MSG_CONTINUATION, MSG_DATA_LAYOUT, MSG_LINK, MSG_LINK_INFO,
            MSG_SYMBOL_TABLE,
        };
        if flags & 0x02 != 0 {
            // A shared message: the parser resolves it (rare in practice).
            return;
        }
        if ty == MSG_CONTINUATION {
            let mut c = Cursor::new(data);
            if let (Ok(a), Ok(n)) = (c.read_offset(self.o), c.read_length(self.l))
                && !is_undefined(a, self.o)
            {
                conts.push((a, n));
            }
            return;
        }
        if ![MSG_ATTRIBUTE, MSG_ATTRIBUTE_INFO, MSG_DATA_LAYOUT, MSG_LINK, MSG_LINK_INFO, MSG_SYMBOL_TABLE].contains(&ty) {
            return;
        }
        if let Ok(m) = hdf5_reader::messages::parse_message(ty, data.len(), &mut Cursor::new(data), self.o, self.l) {
            out.push(m);
        }
    }

    /// Look `name` up in a symbol-table group: heap, B-tree and symbol-table nodes are asked
    /// for together; without the names, every child's header is asked for.
    fn symbol_table(&self, st: &SymbolTableMessage, name: &str) -> Lookup {
        use hdf5_reader::local_heap::LocalHeap;
        use hdf5_reader::symbol_table::SymbolTableNode;
        let heap = LocalHeap::parse_at_storage(self.v, st.heap_address, self.o, self.l).ok();
        let names = heap.as_ref().and_then(|h| {
            let n = usize::try_from(h.data_segment_size).ok()?;
            self.read(h.data_segment_address, n).filter(|b| b.as_ref().len() == n)
        });
        let Ok(leaves) =
            hdf5_reader::btree_v1::collect_btree_v1_leaves_storage(self.v, st.btree_address, self.o, self.l, None, &[], None)
        else {
            return Lookup::Unknown;
        };
        // Every symbol-table node is asked for at once (the parser reads them all).
        let mut entries = Vec::new();
        for (_, snod) in &leaves {
            let entry_len = 2 * usize::from(self.o) + 24;
            let Some(pre) = self.read(*snod, 8) else { continue };
            let n = usize::from(u16::from_le_bytes([pre.as_ref()[6], pre.as_ref()[7]]));
            let Some(node) = self.read(*snod, 8 + n * entry_len) else { continue };
            if let Ok(node) = SymbolTableNode::parse(&mut Cursor::new(node.as_ref()), self.o, self.l) {
                entries.extend(node.entries);
            }
        }
        let hint = |e: &hdf5_reader::symbol_table::SymbolTableEntry| match (e.btree_address(), e.local_heap_address()) {
            (Some(b), Some(h)) if e.cache_type == 1 => Some(SymbolTableMessage { btree_address: b, heap_address: h }),
            _ => None,
        };
        match names {
            Some(seg) => {
                for e in &entries {
                    let Ok(off) = usize::try_from(e.link_name_offset) else { continue };
                    let Some(rest) = seg.as_ref().get(off..) else { continue };
                    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                    if &rest[..end] == name.as_bytes() && e.cache_type != 2 {
                        return Lookup::Found(e.object_header_address, hint(e));
                    }
                }
                Lookup::Unknown
            }
            None => {
                // The names are on their way; so are the children, in the same round.
                let mut addrs: Vec<u64> = Vec::new();
                for e in entries.iter().filter(|e| e.cache_type != 2) {
                    addrs.push(e.object_header_address);
                    if let Some(h) = hint(e) {
                        addrs.extend([h.btree_address, h.heap_address]);
                    }
                }
                addrs.retain(|a| !is_undefined(*a, self.o));
                let bs = self.v.probe.meta.block_size();
                let base = self.v.base;
                let blocks: HashSet<u64> = addrs.iter().map(|a| a.saturating_add(base) / bs).collect();
                if blocks.len() <= MAX_SPECULATIVE_BLOCKS {
                    for a in addrs {
                        self.touch(a);
                    }
                }
                Lookup::Unknown
            }
        }
    }

    /// Dense link or attribute storage: the fractal heap and the name-index B-tree headers,
    /// then their root blocks. The dry run walks the rest.
    fn dense(&self, heap: u64, name_index: u64) {
        use hdf5_reader::btree_v2::BTreeV2Header;
        use hdf5_reader::fractal_heap::FractalHeap;
        if is_undefined(heap, self.o) {
            return;
        }
        if let Ok(h) = FractalHeap::parse_at_storage(self.v, heap, self.o, self.l) {
            self.touch(h.root_block_address);
        }
        if !is_undefined(name_index, self.o)
            && let Ok(b) = BTreeV2Header::parse_at_storage(self.v, name_index, self.o, self.l)
            && !is_undefined(b.root_node_address, self.o)
        {
            let _ = self.read(b.root_node_address, b.node_size as usize);
        }
    }

    /// The global heap collections a variable-length attribute's values live in.
    fn global_heaps(&self, dt: &Datatype, raw: &[u8]) {
        if !matches!(dt, Datatype::String { size: StringSize::Variable, .. } | Datatype::VarLen { .. }) {
            return;
        }
        let o = usize::from(self.o);
        let mut seen = HashSet::new();
        for el in raw.chunks_exact(8 + o) {
            let Some(addr) = le_uint(&el[4..4 + o]) else { continue };
            if addr == 0 || is_undefined(addr, self.o) || !seen.insert(addr) {
                continue;
            }
            // The collection's size is in its header; collections are at least 4 KiB.
            let _ = self.read_clipped(addr, GLOBAL_HEAP_MIN as usize);
            if let Some(h) = self.read(addr, 8 + usize::from(self.l))
                && let Some(size) = le_uint(&h.as_ref()[8..])
                && size > GLOBAL_HEAP_MIN
            {
                let _ = self.read(addr, usize::try_from(size).unwrap_or(usize::MAX));
            }
        }
    }
}

fn le_uint(b: &[u8]) -> Option<u64> {
    if b.len() > 8 {
        return None;
    }
    let mut x = [0u8; 8];
    x[..b.len()].copy_from_slice(b);
    Some(u64::from_le_bytes(x))
}
