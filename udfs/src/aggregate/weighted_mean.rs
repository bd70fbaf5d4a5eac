//! `weighted_mean(x, w)`: numpy.average(x, weights=w).

use datafusion::logical_expr::{AggregateUDF, Documentation, Signature, Volatility};

use super::accumulator::Fixed;
use super::sum::Sum;
use super::udaf::NumpyAggregate;
use crate::sql::{DOC_SECTION_AGGREGATE, float64};

pub(crate) const NAME: &str = "weighted_mean";

/// `weighted_mean(x, w)` = `sum(w * x) / sum(w)` over rows where neither is NULL.
///
/// Both sums are compensated (Neumaier), so the result is within a few ulps of the exact
/// value whatever the row order or partitioning, and so of numpy's pairwise sums.
pub(crate) fn udaf() -> AggregateUDF {
    let signature = Signature::coercible(vec![float64(), float64()], Volatility::Immutable);
    NumpyAggregate::udaf::<State>(NAME, signature, |_| Ok(()), documentation)
}

/// Running state of one group.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    count: u64,
    wx: Sum,
    w: Sum,
}

impl Fixed for State {
    /// `(x, w)`.
    type Row = (f64, f64);
    type Params = ();
    const FIELDS: &'static [&'static str] = &[
        "sum_wx",
        "sum_wx_compensation",
        "sum_w",
        "sum_w_compensation",
    ];
    const ARGS: usize = 2;

    #[inline(always)]
    fn row(columns: &[&[f64]], i: usize) -> (f64, f64) {
        (columns[0][i], columns[1][i])
    }

    fn count(&self) -> u64 {
        self.count
    }

    fn field(&self, j: usize) -> f64 {
        [
            self.wx.sum,
            self.wx.compensation,
            self.w.sum,
            self.w.compensation,
        ][j]
    }

    fn from_fields(count: u64, f: &[f64]) -> Self {
        State {
            count,
            wx: Sum {
                sum: f[0],
                compensation: f[1],
            },
            w: Sum {
                sum: f[2],
                compensation: f[3],
            },
        }
    }

    #[inline(always)]
    fn update(&mut self, (x, w): (f64, f64)) {
        self.count += 1;
        self.wx.add(w * x);
        self.w.add(w);
    }

    fn merge(&mut self, other: State) {
        self.count += other.count;
        self.wx.merge(other.wx);
        self.w.merge(other.w);
    }

    fn evaluate(&self, _params: &()) -> f64 {
        self.wx.value() / self.w.value()
    }
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_AGGREGATE,
        "numpy.average(x, weights=w) = sum(w*x) / sum(w), over the rows where neither \
         x nor w is NULL, computed in Float64 with compensated sums. An empty group \
         gives NULL; weights summing to 0 give NaN or +-inf (numpy raises instead).",
        "weighted_mean(x, w)",
    )
    .with_argument("x", "Values (any numeric type).")
    .with_argument("w", "Weights (any numeric type), e.g. 1 / power(h_li_sigma, 2).")
    .with_sql_example(
        "```sql\n> SELECT weighted_mean(x, w) AS m FROM (VALUES (1.0, 1.0), (4.0, 2.0)) t(x, w);\n+-----+\n| m   |\n+-----+\n| 3.0 |\n+-----+\n```",
    )
    .build()
}
