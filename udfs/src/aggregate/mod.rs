//! numpy-compatible aggregate functions.
//!
//! The reference computes its per-cell statistics with numpy; these aggregates give the
//! same numbers. Every input type is widened to Float64 first, NULLs are ignored and an
//! empty group gives NULL. Each has an `Accumulator` and a `GroupsAccumulator` (for
//! `GROUP BY cell` with many groups) with partial states that merge across partitions.
//!
//! | SQL | numpy | notes |
//! | --- | --- | --- |
//! | `weighted_mean(x, w)` | `average(x, weights=w)` | compensated sums; within 1e-15 relative |
//! | `quantile(x, q)` | `quantile(x, q)` (method 'linear') | bit for bit, including `_lerp` |
//! | `np_median(x)` | `median(x)` | bit for bit; NaN in, NaN out |
//! | `np_var(x)` / `np_std(x)` | `var(x)` / `std(x)` (ddof 0) | shifted compensated sums; about 1e-15 relative |
//! | DataFusion `var_pop(x)` / `stddev_pop(x)` | `var(x)` / `std(x)` (ddof 0) | built-in; off by up to 3.4e-12 relative on a large-mean, small-spread group, hence `np_var` |
//! | DataFusion `median(x)` | `median(x)` | built-in; equal for finite data, but sorts NaN last |
//!
//! The tests in `tests/aggregate_golden.rs` compare all of them with numpy's output on the
//! golden groups written by `tests/golden/generate.py`.

use std::sync::Arc;

use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::SessionContext;

mod moments;
mod np_median;
mod np_std;
mod np_var;
mod quantile;
mod sum;
mod values;
mod weighted_mean;

pub use np_median::{NpMedian, numpy_median};
pub use np_std::NpStd;
pub use np_var::NpVar;
pub use quantile::{Quantile, numpy_quantile};
pub use weighted_mean::WeightedMean;

/// Registers `weighted_mean`, `quantile`, `np_median`, `np_var` and `np_std` on `ctx`.
pub fn register(ctx: &SessionContext) {
    for udaf in udafs() {
        ctx.register_udaf(udaf);
    }
}

/// The aggregate functions.
pub fn udafs() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::new_from_shared_impl(Arc::new(WeightedMean::new())),
        AggregateUDF::new_from_shared_impl(Arc::new(Quantile::new())),
        AggregateUDF::new_from_shared_impl(Arc::new(NpMedian::new())),
        AggregateUDF::new_from_shared_impl(Arc::new(NpVar::new())),
        AggregateUDF::new_from_shared_impl(Arc::new(NpStd::new())),
    ]
}
