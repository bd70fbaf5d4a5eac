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
//! | `quantiles(x, q1, q2, ...)` | `quantile(x, [q1, q2, ...])` | a `List<Float64>`, each element as `quantile`; one state for all |
//! | `np_median(x)` | `median(x)` | bit for bit; NaN in, NaN out |
//! | `np_var(x [, ddof])` / `np_std(x [, ddof])` | `var(x, ddof=ddof)` / `std(x, ddof=ddof)` (ddof 0 by default) | shifted compensated sums; about 1e-15 relative |
//! | DataFusion `var_pop(x)` / `stddev_pop(x)` | `var(x)` / `std(x)` (ddof 0) | built-in; off by up to 3.4e-12 relative on a large-mean, small-spread group, hence `np_var` |
//! | DataFusion `median(x)` | `median(x)` | built-in; equal for finite data, but sorts NaN last |
//!
//! The tests in `tests/aggregate_golden.rs` compare all of them with numpy's output on the
//! golden groups written by `tests/golden/generate.py`.

use datafusion::logical_expr::AggregateUDF;
use datafusion::prelude::SessionContext;

mod accumulator;
mod moments;
mod np_median;
mod np_std;
mod np_var;
mod quantile;
mod quantiles;
mod sum;
mod udaf;
mod values;
mod weighted_mean;

pub use np_median::numpy_median;
pub use quantile::{numpy_quantile, numpy_quantiles};
pub use quantiles::MAX_QUANTILES;

/// Registers `weighted_mean`, `quantile`, `quantiles`, `np_median`, `np_var` and `np_std` on `ctx`.
pub fn register(ctx: &SessionContext) {
    for udaf in udafs() {
        ctx.register_udaf(udaf);
    }
}

/// The aggregate functions.
pub fn udafs() -> Vec<AggregateUDF> {
    vec![
        weighted_mean::udaf(),
        quantile::udaf(),
        quantiles::udaf(),
        np_median::udaf(),
        np_var::udaf(),
        np_std::udaf(),
    ]
}
