//! The read path: plan chunk fetches for a batch of row selections, fetch them in one
//! concurrent wave, decode them in parallel straight into Arrow buffers.
//!
//! Round trips of one [`H5File::read_many`] call after the datasets are resolved:
//!
//! * **index walk**: the chunk indexes of all chunked datasets are walked in parallel on
//!   the blocking pool through the metadata cache; the wave planner (`plan.rs`) has
//!   fetched their nodes with the rest of the metadata (it dry-runs this very walk, see
//!   [`index_walk`]), so this costs no round trip;
//! * **data wave**: the byte ranges of every chunk overlapping a requested row (unfiltered
//!   data: only the requested rows' bytes) are merged when closer than `coalesce_gap` and
//!   fetched with up to `max_concurrency` requests in flight;
//! * decoding then needs no I/O.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, PrimitiveArray, StringArray};
use arrow::buffer::{Buffer, MutableBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use bytes::Bytes;
use hdf5_reader::chunk_index::ChunkEntry;
use hdf5_reader::messages::datatype::Datatype;
use hdf5_reader::messages::filter_pipeline::FilterDescription;
use hdf5_reader::messages::layout::{ChunkIndexing, DataLayout};

use super::{H5Error, H5File, Resolved, RowSelection, elem_size, is_undefined, run_blocking};

/// Where the bytes of one output segment come from.
enum Src {
    /// No storage allocated for these rows: the fill value (already in native order).
    Fill(Arc<[u8]>),
    /// Unfiltered bytes, exactly the segment's rows, in file byte order.
    Raw { fetch: usize, skip: usize },
    /// Compact data held in the object header.
    Inline { data: Arc<Vec<u8>>, start: usize },
    /// A filtered chunk; rows `lo..hi` of its `chunk_rows` are wanted.
    Filtered { fetch: usize, filters: Arc<[FilterDescription]>, mask: u32, chunk_rows: usize, lo: usize },
}

struct Seg {
    rows: usize,
    src: Src,
}

struct Req {
    path: String,
    data_type: DataType,
    elem: usize,
    swap: bool,
    rows: usize,
    segs: Vec<Seg>,
}

/// Validate a selection against `n` rows.
pub(crate) fn ranges_of(url: &str, path: &str, sel: &RowSelection, n: u64) -> Result<Vec<Range<u64>>, H5Error> {
    let bad = |d: String| H5Error::InvalidSelection { url: url.to_string(), path: path.to_string(), detail: d };
    match sel {
        RowSelection::All => Ok(if n == 0 { vec![] } else { std::iter::once(0..n).collect() }),
        RowSelection::Ranges(rs) => {
            let mut prev_end = 0u64;
            for (i, r) in rs.iter().enumerate() {
                if r.start > r.end {
                    return Err(bad(format!("range {i} is {}..{}: start after end", r.start, r.end)));
                }
                if r.end > n {
                    return Err(bad(format!("range {i} is {}..{}, got end {}, expected at most {n} rows", r.start, r.end, r.end)));
                }
                if i > 0 && r.start < prev_end {
                    return Err(bad(format!("range {i} starts at {}, before the previous range ends at {prev_end}: ranges must be sorted and non-overlapping", r.start)));
                }
                prev_end = r.end;
            }
            Ok(rs.iter().filter(|r| r.end > r.start).cloned().collect())
        }
    }
}

fn host_swaps(dt: &Datatype) -> bool {
    let be = matches!(
        dt,
        Datatype::FixedPoint { byte_order: hdf5_reader::ByteOrder::BigEndian, .. }
            | Datatype::FloatingPoint { byte_order: hdf5_reader::ByteOrder::BigEndian, .. }
    );
    be == cfg!(target_endian = "little")
}

/// A registry of byte ranges to fetch, deduplicated.
#[derive(Default)]
struct Fetches {
    ranges: Vec<Range<u64>>,
    index: HashMap<(u64, u64), usize>,
}

impl Fetches {
    fn add(&mut self, r: Range<u64>) -> usize {
        let n = self.ranges.len();
        *self.index.entry((r.start, r.end)).or_insert_with(|| {
            self.ranges.push(r);
            n
        })
    }
}

/// A numeric request of a read: (index in the plan, dataset, validated ranges, element size).
type Numeric = (usize, Arc<Resolved>, Vec<Range<u64>>, usize);

pub(crate) async fn read_planned(
    file: &H5File,
    plan: Vec<(Arc<Resolved>, RowSelection)>,
) -> Result<Vec<ArrayRef>, H5Error> {
    let url = file.url().to_string();
    let sb = file.parser().superblock();
    let (base, offset_size) = (sb.base_address, sb.offset_size);
    let file_size = file.size();

    // 1. Validate, and split off string datasets (read through the parser, they are small).
    let mut numeric: Vec<Numeric> = Vec::new();
    let mut results: Vec<Option<ArrayRef>> = vec![None; plan.len()];
    let mut string_reads = Vec::new();
    for (i, (r, sel)) in plan.iter().enumerate() {
        let path = &r.info.path;
        if r.info.shape.len() > 1 {
            return Err(H5Error::unsupported(&url, path, format!("reading a {}-d dataset (shape {:?}); only 1-d datasets are read", r.info.shape.len(), r.info.shape)));
        }
        let ranges = ranges_of(&url, path, sel, r.info.num_rows())?;
        if r.info.data_type == DataType::Utf8 {
            string_reads.push((i, Arc::clone(r), ranges));
            continue;
        }
        let Some(e) = elem_size(&r.datatype) else {
            return Err(H5Error::unsupported(&url, path, format!("reading values of type {}", r.info.hdf5_type)));
        };
        numeric.push((i, Arc::clone(r), ranges, e));
    }

    // 2. Index wave: chunk entries of every chunked dataset, walked in one blocking task
    // through the metadata cache (the wave planner has fetched every node already, so the
    // walks are CPU only; one task per dataset cost more in thread hand-offs than the walk).
    let mut walks = Vec::new();
    for (_, r, ranges, e) in &numeric {
        let Some(walk) = index_walk_ranges(&url, file.options(), r, ranges, *e, offset_size)? else { continue };
        walks.push((Arc::clone(r), walk));
    }
    let entries: HashMap<String, HashMap<u64, ChunkEntry>> = walk_indexes(file, walks)
        .await?
        .into_iter()
        .map(|(path, es)| (path, es.into_iter().map(|e| (e.offsets.first().copied().unwrap_or(0), e)).collect()))
        .collect();

    // 3. Plan segments and the byte ranges they need.
    let mut fetches = Fetches::default();
    let mut reqs: Vec<(usize, Req)> = Vec::new();
    for (i, r, ranges, e) in &numeric {
        let (i, e) = (*i, *e);
        let path = r.info.path.clone();
        let swap = host_swaps(&r.datatype) && e > 1;
        let mut fill = r.fill_raw.clone();
        if swap {
            fill.reverse();
        }
        let fill: Arc<[u8]> = fill.into();
        let total: u64 = ranges.iter().map(|x| x.end - x.start).sum();
        let mut segs = Vec::new();
        let check_end = |start: u64, len: u64| -> Result<(), H5Error> {
            match start.checked_add(len) {
                Some(end) if end <= file_size => Ok(()),
                _ => Err(H5Error::corrupt(&url, &path, format!("data at {start}+{len} bytes, got past end of object ({file_size} bytes)"))),
            }
        };
        match &r.layout {
            DataLayout::Compact { data } => {
                let need = r.info.num_rows() as usize * e;
                if data.len() < need {
                    return Err(H5Error::corrupt(&url, &path, format!("compact data has {} bytes, expected {need}", data.len())));
                }
                let data = Arc::new(data.clone());
                for x in ranges {
                    segs.push(Seg { rows: (x.end - x.start) as usize, src: Src::Inline { data: Arc::clone(&data), start: x.start as usize * e } });
                }
            }
            DataLayout::Contiguous { address, .. } => {
                for x in ranges {
                    let rows = (x.end - x.start) as usize;
                    if is_undefined(*address, offset_size) {
                        segs.push(Seg { rows, src: Src::Fill(Arc::clone(&fill)) });
                    } else {
                        let start = base + address + x.start * e as u64;
                        let len = rows as u64 * e as u64;
                        check_end(start, len)?;
                        let f = fetches.add(start..start + len);
                        segs.push(Seg { rows, src: Src::Raw { fetch: f, skip: 0 } });
                    }
                }
            }
            DataLayout::Chunked { dims, .. } => {
                let c = u64::from(dims.first().copied().unwrap_or(1).max(1));
                let empty = HashMap::new();
                let es = entries.get(&path).unwrap_or(&empty);
                let filtered = !r.filters.is_empty();
                for x in ranges {
                    let mut row = x.start;
                    while row < x.end {
                        let ci = row / c;
                        let cstart = ci * c;
                        let hi = (cstart + c).min(x.end);
                        let rows = (hi - row) as usize;
                        let lo_in = (row - cstart) as usize;
                        let src = match es.get(&cstart) {
                            None => Src::Fill(Arc::clone(&fill)),
                            Some(en) => {
                                let all_masked = r.filters.iter().enumerate().all(|(k, _)| k < 32 && en.filter_mask & (1 << k) != 0);
                                if filtered && !all_masked {
                                    let start = base + en.address;
                                    check_end(start, en.size)?;
                                    let f = fetches.add(start..start + en.size);
                                    Src::Filtered { fetch: f, filters: Arc::clone(&r.filters), mask: en.filter_mask, chunk_rows: c as usize, lo: lo_in }
                                } else {
                                    // Unfiltered: fetch only the wanted rows' bytes.
                                    let start = base + en.address + lo_in as u64 * e as u64;
                                    let len = rows as u64 * e as u64;
                                    check_end(start, len)?;
                                    let f = fetches.add(start..start + len);
                                    Src::Raw { fetch: f, skip: 0 }
                                }
                            }
                        };
                        segs.push(Seg { rows, src });
                        row = hi;
                    }
                }
            }
        }
        reqs.push((i, Req { path, data_type: r.info.data_type.clone(), elem: e, swap, rows: total as usize, segs }));
    }

    // 4. Data wave.
    let fetched = fetch_coalesced(file, &fetches.ranges).await?;

    // 5. Decode: a small read here (see `ReadOptions::inline_decode_bytes`), a larger one
    // on the rayon pool while this task waits without holding a thread.
    let threads = file.options().decode_threads.max(1);
    let work: usize = reqs
        .iter()
        .flat_map(|(_, r)| r.segs.iter().map(move |s| if let Src::Filtered { chunk_rows, .. } = s.src { chunk_rows * r.elem } else { 0 }))
        .sum();
    let decoded = if work <= file.options().inline_decode_bytes {
        decode_all(&url, reqs, &fetched, 1)?
    } else {
        let url2 = url.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode_all(&url2, reqs, &fetched, threads)));
            let _ = tx.send(r);
        });
        match rx.await {
            Ok(Ok(r)) => r?,
            Ok(Err(_)) => return Err(H5Error::corrupt(&url, "/", "decoder panicked")),
            Err(e) => return Err(H5Error::corrupt(&url, "/", format!("decode task failed: {e}"))),
        }
    };
    for (i, arr) in decoded {
        results[i] = Some(arr);
    }

    // Strings.
    for (i, r, ranges) in string_reads {
        let ds = r.ds.clone();
        let scalar = r.info.shape.is_empty();
        let all: Vec<String> = run_blocking(&url, &r.info.path, file.meta(), move || {
            if scalar { ds.read_string().map(|s| vec![s]) } else { ds.read_strings() }
        })
        .await?;
        let mut out: Vec<&str> = Vec::new();
        for x in &ranges {
            let slice = all.get(x.start as usize..x.end as usize).ok_or_else(|| {
                H5Error::corrupt(&url, &r.info.path, format!("got {} strings, expected {}", all.len(), r.info.num_rows()))
            })?;
            out.extend(slice.iter().map(String::as_str));
        }
        results[i] = Some(Arc::new(StringArray::from(out)));
    }

    results
        .into_iter()
        .enumerate()
        .map(|(i, a)| a.ok_or_else(|| H5Error::corrupt(&url, &plan[i].0.info.path, "no array produced")))
        .collect()
}

/// What a read needs from a chunked dataset's index: where it is and which chunks.
pub(crate) struct IndexWalk {
    pub(crate) address: u64,
    pub(crate) dims: Vec<u32>,
    pub(crate) indexing: Option<ChunkIndexing>,
    pub(crate) elem: usize,
    /// First and last chunk (inclusive) overlapping the rows; `None` for all chunks.
    pub(crate) bounds: Option<(u64, u64)>,
}

/// The index walk a read of `ranges` (validated) of `r` needs, if any.
fn index_walk_ranges(
    url: &str,
    options: &super::ReadOptions,
    r: &Resolved,
    ranges: &[Range<u64>],
    e: usize,
    offset_size: u8,
) -> Result<Option<IndexWalk>, H5Error> {
    let DataLayout::Chunked { address, dims, chunk_indexing, .. } = &r.layout else { return Ok(None) };
    if ranges.is_empty() || is_undefined(*address, offset_size) {
        return Ok(None);
    }
    let c = u64::from(dims.first().copied().unwrap_or(0));
    if c == 0 {
        return Err(H5Error::corrupt(url, &r.info.path, "chunk dimension is 0"));
    }
    let chunk_bytes = c.saturating_mul(e as u64);
    if chunk_bytes > options.max_chunk_bytes as u64 {
        return Err(H5Error::corrupt(url, &r.info.path, format!("chunk of {chunk_bytes} bytes, expected at most {}", options.max_chunk_bytes)));
    }
    let first = ranges.first().map_or(0, |x| x.start / c);
    let last = ranges.last().map_or(0, |x| (x.end - 1) / c);
    let n_chunks = r.info.num_rows().div_ceil(c);
    let bounds = if first == 0 && last + 1 >= n_chunks { None } else { Some((first, last)) };
    Ok(Some(IndexWalk { address: *address, dims: dims.clone(), indexing: chunk_indexing.clone(), elem: e, bounds }))
}

/// Walk the chunk index of every dataset in `walks`, all in one blocking task through the
/// metadata cache (the wave planner has fetched the nodes already, so the walks are CPU
/// only, and one task per dataset cost more in thread hand-offs than the walks). Returns
/// each dataset's path and entries; errors name the dataset.
async fn walk_indexes(file: &H5File, walks: Vec<(Arc<Resolved>, IndexWalk)>) -> Result<Vec<(String, Vec<ChunkEntry>)>, H5Error> {
    if walks.is_empty() {
        return Ok(Vec::new());
    }
    let sb = file.parser().superblock();
    let (offset_size, length_size) = (sb.offset_size, sb.length_size);
    let parser = file.parser().clone();
    let meta = Arc::clone(file.meta());
    let url = file.url().to_string();
    super::run_blocking_h5(file.url(), "/", file.meta(), move || {
        walks
            .into_iter()
            .map(|(r, w)| {
                let (info, path) = (&r.info, &r.info.path);
                collect_entries(&parser, w.address, &w.dims, w.indexing.as_ref(), &info.shape, info.max_shape.as_deref(), w.elem, w.bounds, offset_size, length_size)
                    .map(|es| (path.clone(), es))
                    .map_err(|e| H5Error::from_parser(&url, path, e, meta.take_io_error()))
            })
            .collect()
    })
    .await
}

/// The stored chunks of a chunked 1-D dataset overlapping `sel`, in row order: what a
/// read of `sel` must fetch and decode. Empty for other layouts and unwritten chunks.
pub(crate) async fn chunk_extents(file: &H5File, r: Arc<Resolved>, sel: &RowSelection) -> Result<Vec<super::ChunkExtent>, H5Error> {
    let base = file.parser().superblock().base_address;
    let Some(walk) = index_walk(file, &r, sel)? else { return Ok(Vec::new()) };
    let ranges = ranges_of(file.url(), &r.info.path, sel, r.info.num_rows())?;
    let (c, elem) = (u64::from(walk.dims.first().copied().unwrap_or(1).max(1)), walk.elem);
    let mut entries = walk_indexes(file, vec![(Arc::clone(&r), walk)]).await?.pop().map(|(_, es)| es).unwrap_or_default();
    entries.sort_by_key(|e| e.offsets.first().copied().unwrap_or(0));
    Ok(entries
        .into_iter()
        .filter_map(|e| {
            let first = e.offsets.first().copied().unwrap_or(0);
            let rows = first..(first + c).min(r.info.num_rows());
            ranges.iter().any(|x| x.start < rows.end && rows.start < x.end).then(|| super::ChunkExtent {
                rows,
                offset: base + e.address,
                size: e.size,
                filter_mask: e.filter_mask,
                element_size: elem,
            })
        })
        .collect())
}

/// The index walk [`read_planned`] will do for `sel` of `r` (`Ok(None)`: none, or the
/// read fails before it).
pub(crate) fn index_walk(file: &H5File, r: &Resolved, sel: &RowSelection) -> Result<Option<IndexWalk>, H5Error> {
    if r.info.shape.len() > 1 || r.info.data_type == DataType::Utf8 {
        return Ok(None);
    }
    let Some(e) = elem_size(&r.datatype) else { return Ok(None) };
    let ranges = ranges_of(file.url(), &r.info.path, sel, r.info.num_rows())?;
    index_walk_ranges(file.url(), file.options(), r, &ranges, e, file.parser().superblock().offset_size)
}

/// Walk a chunk index (sync, through the metadata cache), restricted to chunk indices
/// `bounds` (inclusive) when given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn collect_entries(
    parser: &hdf5_reader::Hdf5File,
    address: u64,
    dims: &[u32],
    indexing: Option<&ChunkIndexing>,
    shape: &[u64],
    max_shape: Option<&[u64]>,
    elem: usize,
    bounds: Option<(u64, u64)>,
    offset_size: u8,
    length_size: u8,
) -> Result<Vec<ChunkEntry>, hdf5_reader::error::Error> {
    let storage = parser.storage();
    let b0;
    let b1;
    let bounds_ref = match bounds {
        Some((a, z)) => {
            b0 = [a];
            b1 = [z];
            Some((&b0[..], &b1[..]))
        }
        None => None,
    };
    let ndim = shape.len();
    let mut entries = match indexing {
        None => {
            let leaves = hdf5_reader::btree_v1::collect_btree_v1_leaves_storage(
                storage, address, offset_size, length_size, Some(ndim as u32), dims, bounds_ref,
            )?;
            let mut out = Vec::with_capacity(leaves.len());
            for (key, addr) in leaves {
                match key {
                    hdf5_reader::btree_v1::BTreeV1Key::RawData { chunk_size, filter_mask, offsets } => {
                        out.push(ChunkEntry {
                            address: addr,
                            size: u64::from(chunk_size),
                            filter_mask,
                            offsets: offsets.get(..ndim).map(<[u64]>::to_vec).unwrap_or_default(),
                        });
                    }
                    _ => {
                        return Err(hdf5_reader::error::Error::InvalidData(
                            "chunk b-tree has a group key, expected raw data keys".into(),
                        ));
                    }
                }
            }
            out
        }
        Some(ChunkIndexing::SingleChunk { filtered_size, filters }) => {
            let size = if *filtered_size > 0 { *filtered_size } else { dims.iter().map(|d| u64::from(*d)).product::<u64>() * elem as u64 };
            vec![hdf5_reader::chunk_index::single_chunk_entry(address, size, *filters, ndim)]
        }
        Some(ChunkIndexing::Implicit) => hdf5_reader::chunk_index::collect_implicit_chunk_entries(
            address, shape, dims, elem, bounds_ref, storage.len(),
        )?,
        Some(ChunkIndexing::FixedArray { .. }) => hdf5_reader::fixed_array::collect_fixed_array_chunk_entries_storage(
            storage, address, offset_size, length_size, shape, dims, bounds_ref,
        )?,
        Some(ChunkIndexing::ExtensibleArray { .. }) => {
            hdf5_reader::extensible_array::collect_extensible_array_chunk_entries_storage(
                storage, address, offset_size, length_size, shape, max_shape, dims, bounds_ref,
            )?
        }
        Some(ChunkIndexing::BTreeV2) => hdf5_reader::chunk_index::collect_v2_chunk_entries_storage(
            storage, address, offset_size, length_size, ndim as u32, dims, bounds_ref,
        )?,
    };
    // Stale entries wholly outside the extent (left by a shrink) and misaligned keys
    // cannot hold requested rows.
    let c = u64::from(dims.first().copied().unwrap_or(1).max(1));
    let n = shape.first().copied().unwrap_or(1);
    entries.retain(|e| e.offsets.len() == ndim.max(1) || (ndim == 0 && e.offsets.is_empty()));
    for e in &entries {
        let off = e.offsets.first().copied().unwrap_or(0);
        if off % c != 0 {
            return Err(hdf5_reader::error::Error::InvalidData(format!(
                "chunk offset {off} is not a multiple of the chunk length {c}"
            )));
        }
    }
    entries.retain(|e| e.offsets.first().copied().unwrap_or(0) < n.max(1));
    Ok(entries)
}

/// Fetch `ranges` (absolute object offsets): merge those closer than `coalesce_gap`, issue
/// the merged requests concurrently, and hand each range its slice (zero-copy).
async fn fetch_coalesced(file: &H5File, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, H5Error> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let gap = file.options().coalesce_gap as u64;
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].start, ranges[i].end));
    let mut merged: Vec<Range<u64>> = Vec::new();
    let mut member_of = vec![0usize; ranges.len()];
    for &i in &order {
        let r = &ranges[i];
        match merged.last_mut() {
            Some(m) if r.start <= m.end.saturating_add(gap) => m.end = m.end.max(r.end),
            _ => merged.push(r.clone()),
        }
        member_of[i] = merged.len() - 1;
    }
    let by_merged = crate::store::get_ranges(file.store(), file.location(), &merged, file.is_local(), file.options().max_concurrency)
        .await
        .map_err(|e| H5Error::io(file.url(), e))?;
    ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let m = &merged[member_of[i]];
            let body = &by_merged[member_of[i]];
            let s = (r.start - m.start) as usize;
            let e = (r.end - m.start) as usize;
            if e > body.len() {
                return Err(H5Error::corrupt(file.url(), "/", format!("short read at {}..{}: got {} bytes, expected {}", m.start, m.end, body.len(), m.end - m.start)));
            }
            Ok(body.slice(s..e))
        })
        .collect()
}

struct Job<'a> {
    req: usize,
    elem: usize,
    swap: bool,
    src: &'a Src,
    dst: &'a mut [u8],
}

fn decode_all(
    url: &str,
    reqs: Vec<(usize, Req)>,
    fetched: &[Bytes],
    threads: usize,
) -> Result<Vec<(usize, ArrayRef)>, H5Error> {
    let mut bufs: Vec<MutableBuffer> = reqs.iter().map(|(_, r)| MutableBuffer::from_len_zeroed(r.rows * r.elem)).collect();
    {
        let mut jobs: Vec<Job<'_>> = Vec::new();
        for (k, ((_, r), buf)) in reqs.iter().zip(bufs.iter_mut()).enumerate() {
            let mut rest: &mut [u8] = buf.as_slice_mut();
            for s in &r.segs {
                let (a, b) = rest.split_at_mut(s.rows * r.elem);
                rest = b;
                jobs.push(Job { req: k, elem: r.elem, swap: r.swap, src: &s.src, dst: a });
            }
        }
        let fail = |j: usize, msg: String| H5Error::corrupt(url, &reqs[j].1.path, msg);
        let filtered = jobs.iter().filter(|j| matches!(j.src, Src::Filtered { .. })).count();
        if threads <= 1 || filtered <= 1 {
            let mut d = Decoder::new();
            for j in jobs.iter_mut() {
                d.run(j, fetched).map_err(|m| fail(j.req, m))?;
            }
        } else {
            // Chunks in parallel on the process-wide rayon pool (threads live for the whole
            // process; spawning threads per call cost more than decoding a beam's chunks).
            // At most `threads` splits, each with its own decompressor.
            use rayon::prelude::*;
            let per = jobs.len().div_ceil(threads);
            jobs.par_chunks_mut(per.max(1))
                .try_for_each(|bucket| {
                    let mut d = Decoder::new();
                    bucket.iter_mut().try_for_each(|j| d.run(j, fetched).map_err(|m| (j.req, m)))
                })
                .map_err(|(j, m)| fail(j, m))?;
        }
    }
    reqs.into_iter()
        .zip(bufs)
        .map(|((i, r), buf)| Ok((i, to_array(url, &r, buf)?)))
        .collect()
}

fn prim<T: ArrowPrimitiveType>(buf: Buffer, n: usize) -> ArrayRef {
    Arc::new(PrimitiveArray::<T>::new(ScalarBuffer::new(buf, 0, n), None))
}

fn to_array(url: &str, r: &Req, buf: MutableBuffer) -> Result<ArrayRef, H5Error> {
    let buf: Buffer = buf.into();
    let n = r.rows;
    Ok(match r.data_type {
        DataType::Int8 => prim::<Int8Type>(buf, n),
        DataType::Int16 => prim::<Int16Type>(buf, n),
        DataType::Int32 => prim::<Int32Type>(buf, n),
        DataType::Int64 => prim::<Int64Type>(buf, n),
        DataType::UInt8 => prim::<UInt8Type>(buf, n),
        DataType::UInt16 => prim::<UInt16Type>(buf, n),
        DataType::UInt32 => prim::<UInt32Type>(buf, n),
        DataType::UInt64 => prim::<UInt64Type>(buf, n),
        DataType::Float32 => prim::<Float32Type>(buf, n),
        DataType::Float64 => prim::<Float64Type>(buf, n),
        ref other => return Err(H5Error::unsupported(url, &r.path, format!("arrow type {other}"))),
    })
}

/// Per-thread decode state: a libdeflate decompressor and scratch buffers, reused across
/// chunks so the hot loop does not allocate.
struct Decoder {
    inflater: libdeflater::Decompressor,
    scratch: Vec<u8>,
}

impl Decoder {
    fn new() -> Self {
        Self { inflater: libdeflater::Decompressor::new(), scratch: Vec::new() }
    }

    fn run(&mut self, j: &mut Job<'_>, fetched: &[Bytes]) -> Result<(), String> {
        let e = j.elem;
        match j.src {
            Src::Fill(f) => {
                for d in j.dst.chunks_exact_mut(e) {
                    d.copy_from_slice(f);
                }
                Ok(())
            }
            Src::Raw { fetch, skip } => {
                let b = fetched.get(*fetch).ok_or("missing fetch")?;
                let src = b.get(*skip..*skip + j.dst.len()).ok_or_else(|| format!("got {} bytes, expected {}", b.len(), skip + j.dst.len()))?;
                copy_swap(src, j.dst, e, j.swap);
                Ok(())
            }
            Src::Inline { data, start } => {
                let src = data.get(*start..*start + j.dst.len()).ok_or("compact data too short")?;
                copy_swap(src, j.dst, e, j.swap);
                Ok(())
            }
            Src::Filtered { fetch, filters, mask, chunk_rows, lo } => {
                let b = fetched.get(*fetch).ok_or("missing fetch")?;
                self.filtered(b, filters, *mask, *chunk_rows, *lo, e, j.swap, j.dst)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn filtered(
        &mut self,
        raw: &[u8],
        filters: &[FilterDescription],
        mask: u32,
        chunk_rows: usize,
        lo: usize,
        e: usize,
        swap: bool,
        dst: &mut [u8],
    ) -> Result<(), String> {
        let chunk_bytes = chunk_rows * e;
        let rows = dst.len() / e;
        let active: Vec<u16> = filters
            .iter()
            .enumerate()
            .filter(|(i, _)| *i >= 32 || mask & (1u32 << i) == 0)
            .map(|(_, f)| f.id)
            .collect();
        // Fast path: any in-order subset of [shuffle, deflate, fletcher32] (what h5py and
        // the ATL06 producer write).
        let mut pos = 0;
        let order = [2u16, 1, 3];
        let fast = active.iter().all(|id| {
            while pos < order.len() && order[pos] != *id {
                pos += 1;
            }
            let ok = pos < order.len();
            pos += 1;
            ok
        });
        if !fast {
            let out = hdf5_reader::filters::apply_pipeline_with_limit(raw, filters, mask, e, None, Some(chunk_bytes))
                .map_err(|err| format!("filter pipeline: {err}"))?;
            let src = out
                .get(lo * e..(lo + rows) * e)
                .ok_or_else(|| format!("decoded chunk has {} bytes, expected {chunk_bytes}", out.len()))?;
            copy_swap(src, dst, e, swap);
            return Ok(());
        }
        let (shuffle, deflate, fletcher) = (active.contains(&2), active.contains(&1), active.contains(&3));
        let stripped;
        let mut data: &[u8] = raw;
        if fletcher {
            stripped = hdf5_reader::filters::fletcher32::verify_and_strip(data).map_err(|err| format!("fletcher32: {err}"))?;
            data = &stripped;
        }
        let whole = lo == 0 && rows == chunk_rows;
        if deflate {
            if whole && !shuffle && !swap {
                return self.inflate(data, dst, chunk_bytes);
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.resize(chunk_bytes, 0);
            let r = self.inflate(data, &mut scratch, chunk_bytes);
            let r = r.map(|()| finish(&scratch, chunk_rows, lo, e, shuffle, swap, dst));
            self.scratch = scratch;
            return r;
        }
        if data.len() != chunk_bytes {
            return Err(format!("unfiltered chunk has {} bytes, expected {chunk_bytes}", data.len()));
        }
        finish(data, chunk_rows, lo, e, shuffle, swap, dst);
        Ok(())
    }

    fn inflate(&mut self, src: &[u8], out: &mut [u8], expected: usize) -> Result<(), String> {
        match self.inflater.zlib_decompress(src, out) {
            Ok(n) if n == expected => Ok(()),
            Ok(n) => Err(format!("deflate produced {n} bytes, expected {expected}")),
            Err(libdeflater::DecompressionError::InsufficientSpace) => {
                Err(format!("deflate output larger than the chunk ({expected} bytes)"))
            }
            Err(err) => Err(format!("deflate: {err}")),
        }
    }
}

/// Take rows `lo..lo+rows` of a decoded chunk (shuffled or not) into `dst`, converting
/// the byte order in the same pass.
fn finish(chunk: &[u8], chunk_rows: usize, lo: usize, e: usize, shuffle: bool, swap: bool, dst: &mut [u8]) {
    if shuffle && e > 1 {
        match (e, swap) {
            (2, false) => unshuffle::<2, false>(chunk, chunk_rows, lo, dst),
            (2, true) => unshuffle::<2, true>(chunk, chunk_rows, lo, dst),
            (4, false) => unshuffle::<4, false>(chunk, chunk_rows, lo, dst),
            (4, true) => unshuffle::<4, true>(chunk, chunk_rows, lo, dst),
            (8, false) => unshuffle::<8, false>(chunk, chunk_rows, lo, dst),
            (8, true) => unshuffle::<8, true>(chunk, chunk_rows, lo, dst),
            _ => {
                let rows = dst.len() / e;
                for j in 0..e {
                    let plane = &chunk[j * chunk_rows + lo..j * chunk_rows + lo + rows];
                    let jj = if swap { e - 1 - j } else { j };
                    for (d, &b) in dst.chunks_exact_mut(e).zip(plane) {
                        d[jj] = b;
                    }
                }
            }
        }
    } else {
        let rows = dst.len() / e;
        copy_swap(&chunk[lo * e..(lo + rows) * e], dst, e, swap);
    }
}

/// Undo HDF5's shuffle for elements of `E` bytes: plane `j` of the chunk holds byte `j` of
/// every element. One element is gathered at a time (the planes are read in step, the
/// output written once), which the compiler keeps in registers for a constant `E`.
fn unshuffle<const E: usize, const SWAP: bool>(chunk: &[u8], chunk_rows: usize, lo: usize, dst: &mut [u8]) {
    let rows = dst.len() / E;
    let planes: [&[u8]; E] = std::array::from_fn(|j| &chunk[j * chunk_rows + lo..j * chunk_rows + lo + rows]);
    for (i, d) in dst.chunks_exact_mut(E).enumerate() {
        let mut v = [0u8; E];
        for j in 0..E {
            v[if SWAP { E - 1 - j } else { j }] = planes[j][i];
        }
        d.copy_from_slice(&v);
    }
}

fn copy_swap(src: &[u8], dst: &mut [u8], e: usize, swap: bool) {
    if !swap || e == 1 {
        dst.copy_from_slice(src);
        return;
    }
    for (d, s) in dst.chunks_exact_mut(e).zip(src.chunks_exact(e)) {
        for k in 0..e {
            d[k] = s[e - 1 - k];
        }
    }
}
