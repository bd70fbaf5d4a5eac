//! `np_median(x)`: numpy.median, including its NaN rule.

use datafusion::logical_expr::{AggregateUDF, Documentation, Signature, Volatility};

use super::udaf::NumpyAggregate;
use super::values::{Values, statistic};
use crate::sql::{DOC_SECTION_AGGREGATE, float64};

pub(crate) const NAME: &str = "np_median";

/// `np_median(x)`: the middle value, or the mean of the two middle values.
///
/// DataFusion's built-in `median` gives the same result for finite data (tested), but
/// orders NaN as the largest value instead of returning NaN, and keeps Float32 input in
/// Float32; `np_median` widens to Float64 and returns NaN if any value is NaN, as numpy.
pub(crate) fn udaf() -> AggregateUDF {
    let signature = Signature::coercible(vec![float64()], Volatility::Immutable);
    NumpyAggregate::udaf::<Values>(
        NAME,
        signature,
        |_| Ok(statistic(numpy_median)),
        documentation,
    )
}

/// numpy.median of a non-empty set: `(a + b) / 2` of the two middle order statistics for
/// an even count (numpy's `mean` of two values), the middle one for an odd count, NaN if
/// any value is NaN. Reorders `values`.
pub fn numpy_median(values: &mut [f64]) -> f64 {
    let n = values.len();
    assert!(n > 0, "numpy_median of an empty set");
    if values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let (lower, mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    if n % 2 == 1 {
        mid
    } else {
        let below = lower
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .expect("n >= 2");
        (below + mid) / 2.0
    }
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_AGGREGATE,
        "numpy.median(x): the middle value, or (a + b) / 2 of the two middle values \
         for an even count, computed in Float64. NULLs are ignored, an empty group \
         gives NULL, a NaN among the values gives NaN (DataFusion's median would \
         sort NaN last instead).",
        "np_median(x)",
    )
    .with_argument("x", "Values (any numeric type).")
    .with_sql_example(
        "```sql\n> SELECT np_median(h) AS m FROM (VALUES (1.0), (2.0), (4.0), (8.0)) t(h);\n+-----+\n| m   |\n+-----+\n| 3.0 |\n+-----+\n```",
    )
    .with_related_udf("quantile")
    .build()
}
