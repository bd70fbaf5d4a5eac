//! `quantile(x, q)`: numpy's default ('linear') quantile, bit for bit.

use datafusion::common::internal_datafusion_err;
use datafusion::logical_expr::{AggregateUDF, Documentation, Signature, Volatility};

use super::udaf::{NumpyAggregate, constant_argument};
use super::values::{Values, statistic};
use crate::sql::{DOC_SECTION_AGGREGATE, float64};

pub(crate) const NAME: &str = "quantile";

/// `quantile(x, q)` with a constant `q` in `[0, 1]`.
pub(crate) fn udaf() -> AggregateUDF {
    let signature = Signature::coercible(vec![float64(), float64()], Volatility::Immutable);
    NumpyAggregate::udaf::<Values>(
        NAME,
        signature,
        |args| {
            let q = constant_argument(NAME, "q", "a constant in [0, 1]", args, 1, |q| {
                (0.0..=1.0).contains(&q)
            })?
            .ok_or_else(|| internal_datafusion_err!("{NAME} takes two arguments"))?;
            Ok(statistic(move |values| numpy_quantile(values, q)))
        },
        documentation,
    )
}

/// numpy's `_lerp`: `a + (b-a)*t`, but `b - (b-a)*(1-t)` when `t >= 0.5`.
#[inline]
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// numpy.quantile(values, q) with the default method 'linear' (Hyndman & Fan type 7),
/// reproducing numpy's arithmetic: virtual index `(n-1)*q`, order statistics below and
/// above it, `gamma = index - floor(index)` (or `index + 1` when the index reaches the
/// last element, where numpy's "previous index" becomes -1), then numpy's `_lerp`. Any NaN
/// gives NaN, as in numpy. `values` must be non-empty; it is reordered.
pub fn numpy_quantile(values: &mut [f64], q: f64) -> f64 {
    assert!(!values.is_empty(), "numpy_quantile of an empty set");
    if values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let (prev, next, gamma) = positions(values.len(), q);
    interpolate(values, prev, next, gamma)
}

/// `numpy_quantile(values, q)` for every `q` of `qs`, appended to `out` in the order of
/// `qs`, bit for bit. The order statistics are selected in increasing order, each in the
/// part of `values` above the previous one, so k quantiles cost little more than one.
pub fn numpy_quantiles(values: &mut [f64], qs: &[f64], out: &mut Vec<f64>) {
    assert!(!values.is_empty(), "numpy_quantiles of an empty set");
    let start = out.len();
    if values.iter().any(|v| v.is_nan()) {
        out.extend(qs.iter().map(|_| f64::NAN));
        return;
    }
    out.resize(start + qs.len(), 0.0);
    let mut by_q: Vec<usize> = (0..qs.len()).collect();
    by_q.sort_by(|&a, &b| qs[a].total_cmp(&qs[b]));
    // values[done..] holds exactly the order statistics done.. (in some order).
    let mut done = 0;
    for j in by_q {
        let (prev, next, gamma) = positions(values.len(), qs[j]);
        out[start + j] = interpolate(&mut values[done..], prev - done, next - done, gamma);
        done = prev;
    }
}

/// numpy's positions for quantile `q` of `n` values: the order statistics below (`prev`)
/// and above (`next`) the virtual index `(n-1)*q`, and the interpolation weight `gamma`
/// (`index + 1` at the last element, where numpy's "previous index" becomes -1). `prev`
/// never decreases as `q` grows.
fn positions(n: usize, q: f64) -> (usize, usize, f64) {
    let last = (n - 1) as f64;
    let index = last * q;
    if index >= last {
        (n - 1, n - 1, index - -1.0)
    } else {
        let floor = index.floor();
        (floor as usize, floor as usize + 1, index - floor)
    }
}

/// numpy's `_lerp` between order statistics `prev` and `next` of `values`; leaves the
/// `prev`-th at its sorted place, smaller ones before and larger ones after it.
fn interpolate(values: &mut [f64], prev: usize, next: usize, gamma: f64) -> f64 {
    let (_, a, upper) = values.select_nth_unstable_by(prev, f64::total_cmp);
    let a = *a;
    let b = if next == prev {
        a
    } else {
        upper
            .iter()
            .copied()
            .min_by(f64::total_cmp)
            .expect("next < n")
    };
    lerp(a, b, gamma)
}

fn documentation() -> Documentation {
    Documentation::builder(
        DOC_SECTION_AGGREGATE,
        "numpy.quantile(x, q) with numpy's default method 'linear', bit for bit: \
         virtual index (n-1)*q between the order statistics below and above it, \
         interpolated with numpy's _lerp (a + (b-a)*t, or b - (b-a)*(1-t) when \
         t >= 0.5). Input of any numeric type is widened to Float64; NULLs are \
         ignored; an empty group gives NULL; a NaN among the values gives NaN. q must \
         be a constant in [0, 1].",
        "quantile(x, q)",
    )
    .with_argument("x", "Values (any numeric type).")
    .with_argument("q", "Constant quantile in [0, 1], e.g. 0.25.")
    .with_sql_example(
        "```sql\n> SELECT quantile(h, 0.25) AS q25 FROM (VALUES (1.0), (2.0), (4.0), (8.0)) t(h);\n+------+\n| q25  |\n+------+\n| 1.75 |\n+------+\n```",
    )
    .with_related_udf("np_median")
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked() {
        // numpy.quantile([1, 2, 4, 8], q) for these q.
        let cases = [
            (0.0, 1.0),
            (0.25, 1.75),
            (0.5, 3.0),
            (0.75, 5.0),
            (1.0, 8.0),
            (0.9, 6.8),
        ];
        for (q, want) in cases {
            let mut v = vec![8.0, 1.0, 4.0, 2.0];
            let got = numpy_quantile(&mut v, q);
            assert!((got - want).abs() < 1e-12, "q {q}: {got} vs {want}");
        }
        assert_eq!(numpy_quantile(&mut [3.5], 0.3), 3.5);
        assert!(numpy_quantile(&mut [1.0, f64::NAN, 3.0], 0.5).is_nan());
    }

    /// Several quantiles at once equal one at a time, bit for bit, for q in any order,
    /// repeated, at the ends, and with ties and signed zeros among the values.
    #[test]
    fn quantiles_at_once_equal_one_at_a_time() {
        let mut state = 7_u64;
        let mut next = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let qs = [0.75, 0.25, 0.5, 1.0, 0.0, 0.25, 0.9999, 0.001];
        for n in [1, 2, 3, 4, 5, 10, 101, 1000] {
            let values: Vec<f64> = (0..n)
                .map(|i| match i % 7 {
                    0 => 0.0,
                    1 => -0.0,
                    2 => 3.5,
                    _ => next() * 100.0 - 50.0,
                })
                .collect();
            let mut out = vec![42.0];
            numpy_quantiles(&mut values.clone(), &qs, &mut out);
            assert_eq!(out[0], 42.0);
            for (j, &q) in qs.iter().enumerate() {
                let want = numpy_quantile(&mut values.clone(), q);
                assert_eq!(out[1 + j].to_bits(), want.to_bits(), "n {n} q {q}");
            }
        }
        let mut out = Vec::new();
        numpy_quantiles(&mut [1.0, f64::NAN], &[0.1, 0.9], &mut out);
        assert!(out.len() == 2 && out.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn lerp_switches_formula_at_one_half() {
        // Values where the two formulas differ in the last bit; numpy picks by t.
        let (a, b) = (0.1, 0.7);
        assert_eq!(lerp(a, b, 0.5).to_bits(), (b - (b - a) * 0.5).to_bits());
        assert_eq!(lerp(a, b, 0.3).to_bits(), (a + (b - a) * 0.3).to_bits());
    }
}
