//! HEALPix, morton and numpy-compatible aggregate functions for DataFusion.
//!
//! magg assigns ICESat-2 points to HEALPix cells and aggregates them per cell. This crate
//! holds the cell arithmetic twice: as a pure-Rust core (no Arrow) for the table provider,
//! the Zarr sink and the catalog, and as DataFusion SQL functions over Arrow arrays.
//!
//! - [`healpix`]: NESTED cell ids at orders 0-29 (`healpix_cell`, `healpix_parent`,
//!   `healpix_children_first` / `_last`, `healpix_center_lat` / `_lon`), bit-for-bit
//!   healpy; latitude mode `sphere` (default, as the reference) or `authalic` (WGS84).
//! - [`morton`]: the reference's decimal morton keys at orders 1-18 (`morton`,
//!   `morton_parent`, `morton_order`, `morton_to_cell`, `cell_to_morton`).
//! - [`aggregate`]: `weighted_mean`, `quantile`, `np_median`, `np_var`, `np_std` with
//!   numpy's definitions.
//!
//! Every SQL function propagates NULLs, accepts any numeric (or integer) argument type
//! through coercion, has a vectorised path for constant arguments, carries
//! `documentation()`, and reports bad arguments as an execution error naming the
//! function, the argument and the value ([`UdfError`]). docs/udfs.md lists them all.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> datafusion::common::Result<()> {
//! let ctx = datafusion::prelude::SessionContext::new();
//! magg_udfs::register_all(&ctx);
//! let batches = ctx
//!     .sql("SELECT healpix_cell(-75.0, 100.0, 6) AS c, morton(-75.0, 100.0, 6) AS m")
//!     .await?
//!     .collect()
//!     .await?;
//! # assert_eq!(batches[0].num_rows(), 1);
//! # Ok(())
//! # }
//! ```

pub mod aggregate;
mod error;
pub mod healpix;
pub mod morton;
mod sql;

pub use error::UdfError;

use datafusion::prelude::SessionContext;

/// Registers every scalar and aggregate function of this crate on `ctx`.
pub fn register_all(ctx: &SessionContext) {
    healpix::register(ctx);
    morton::register(ctx);
    aggregate::register(ctx);
}
