//! magg: multi-resolution aggregation of satellite point observations into HEALPix
//! Zarr stores.
//!
//! Data flows one way, each layer knowing only the ones below it:
//!
//! ```text
//! granule URL -> store (object_store) -> h5 (byte ranges -> Arrow arrays)
//!             -> table (DataFusion scan) -> config (YAML -> SQL) -> sink (Zarr DGGS chunk)
//! ```
//!
//! [`run`] ties them together for one parent cell; the CLI and the Lambda handler are
//! thin front ends over it. See `docs/architecture.md`.

/// Object store resolution (local paths, `s3://`, `https://`) and instrumented stores.
pub mod store;
/// HDF5 over object_store byte ranges: metadata cache, chunk planning, decoding to Arrow.
pub mod h5;
/// Synthetic ATL06-like granules for the demo, tests and benchmarks.
#[cfg(feature = "synth")]
pub mod synth;
/// Granule catalogs: parent morton cell -> granule URLs.
pub mod catalog;
/// Zarr v3 DGGS sink: store template and one chunk per parent cell.
pub mod sink;
/// Pipeline config YAML and its compilation to SQL.
pub mod config;
/// The point-cell contract (names and order the table and the compiler share) and the
/// neutral data-source description the table reads.
pub mod source;
/// Granules as a DataFusion table.
pub mod table;
/// The one `SessionContext` constructor every front end uses.
pub mod session;
/// The per-cell job: resolved run config -> one Zarr chunk -> report.
pub mod run;

mod unique_map;
/// Error messages (causes once, secrets redacted) and typed per-cell errors.
pub mod errors;

pub use magg_udfs as udfs;
