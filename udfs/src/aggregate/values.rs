//! The group state that keeps every (widened) value of a group and evaluates statistics
//! of the whole set at the end: the shared machinery of `quantile`, `quantiles` and
//! `np_median`.
//!
//! State (for partial aggregation) is one `List<Float64>` per group holding the values
//! seen so far. NULL inputs and filtered rows are skipped; a group without values
//! evaluates to NULL.
//!
//! Keeping every value is the costly part of these aggregates (each value is pushed,
//! emitted as partial state, repartitioned and merged), so several statistics of one
//! column share one state: `quantiles(x, q1, q2, ...)` evaluates a list of them.

use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, exec_datafusion_err};
use datafusion::logical_expr::utils::format_state_name;

use super::accumulator::{GroupState, filtered_out, for_each_valid_row};
use crate::sql::Opaque;

/// A statistic of a non-empty set of values; may reorder the slice.
type Kernel = Box<dyn Fn(&mut [f64]) -> f64 + Send + Sync>;

/// Several statistics of a non-empty set of values, appended to the vector in order;
/// may reorder the slice.
type ListKernel = Box<dyn Fn(&mut [f64], &mut Vec<f64>) + Send + Sync>;

/// What a [`Values`] aggregate evaluates: one statistic (a Float64 result) or `k` of them
/// (a `List<Float64>` result of `k` elements).
pub(crate) enum Statistics {
    One(Kernel),
    List { k: usize, kernel: ListKernel },
}

/// The parameters of a [`Values`] aggregate.
pub(crate) type Statistic = Opaque<Statistics>;

/// `f` as a [`Statistic`] with a Float64 result.
pub(crate) fn statistic(f: impl Fn(&mut [f64]) -> f64 + Send + Sync + 'static) -> Statistic {
    Opaque(Statistics::One(Box::new(f)))
}

/// `kernel`, which appends `k` values, as a [`Statistic`] with a `List<Float64>` result.
pub(crate) fn statistic_list(
    k: usize,
    kernel: impl Fn(&mut [f64], &mut Vec<f64>) + Send + Sync + 'static,
) -> Statistic {
    Opaque(Statistics::List {
        k,
        kernel: Box::new(kernel),
    })
}

/// The element field of a `List<Float64>` result or state.
pub(crate) fn list_field() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Float64, true))
}

/// The values of one group.
#[derive(Debug, Default)]
pub(crate) struct Values(Vec<f64>);

/// Appends the valid values of `array` (Float64) to `out`.
fn extend_valid(out: &mut Vec<f64>, array: &Float64Array) {
    if array.null_count() == 0 {
        out.extend_from_slice(array.values());
    } else {
        out.extend(array.iter().flatten());
    }
}

impl GroupState for Values {
    type Row = f64;
    /// The values of one row of the state's list column.
    type Partial = ArrayRef;
    type Params = Statistic;
    const ALLOCATES: bool = true;

    /// The state field: the list of values collected so far.
    fn state_fields(name: &str) -> Vec<FieldRef> {
        vec![Arc::new(Field::new(
            format_state_name(name, "values"),
            DataType::List(list_field()),
            true,
        ))]
    }

    #[inline(always)]
    fn for_each_row(
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
        mut f: impl FnMut(usize, f64),
    ) {
        let xs = values[0].as_primitive::<Float64Type>().values();
        for_each_valid_row(values, 1, filter, |i| f(i, xs[i]));
    }

    fn for_each_partial(states: &[ArrayRef], mut f: impl FnMut(usize, ArrayRef)) {
        for (i, list) in states[0].as_list::<i32>().iter().enumerate() {
            if let Some(list) = list {
                f(i, list);
            }
        }
    }

    #[inline(always)]
    fn update(&mut self, x: f64) {
        self.0.push(x);
    }

    fn merge(&mut self, partial: ArrayRef) {
        extend_valid(&mut self.0, partial.as_primitive::<Float64Type>());
    }

    fn evaluate(groups: &mut [Self], statistic: &Statistic) -> Result<ArrayRef> {
        match &statistic.0 {
            Statistics::One(f) => Ok(Arc::new(
                groups
                    .iter_mut()
                    .map(|g| (!g.0.is_empty()).then(|| f(&mut g.0)))
                    .collect::<Float64Array>(),
            )),
            Statistics::List { k, kernel } => {
                let mut values = Vec::with_capacity(groups.len() * k);
                let mut lengths = Vec::with_capacity(groups.len());
                for g in groups.iter_mut() {
                    let before = values.len();
                    if !g.0.is_empty() {
                        kernel(&mut g.0, &mut values);
                    }
                    debug_assert_eq!(values.len() - before, if g.0.is_empty() { 0 } else { *k });
                    lengths.push(values.len() - before);
                }
                let nulls: NullBuffer = groups.iter().map(|g| !g.0.is_empty()).collect();
                Ok(Arc::new(ListArray::new(
                    list_field(),
                    OffsetBuffer::from_lengths(lengths),
                    Arc::new(Float64Array::from(values)),
                    (nulls.null_count() > 0).then_some(nulls),
                )))
            }
        }
    }

    fn state_arrays(states: Vec<Self>) -> Result<Vec<ArrayRef>> {
        let mut offsets = Vec::with_capacity(states.len() + 1);
        offsets.push(0_i32);
        let mut len = 0_usize;
        for s in &states {
            len += s.0.len();
            offsets.push(i32::try_from(len).map_err(|_| {
                exec_datafusion_err!("more than 2^31 values in one aggregate state batch")
            })?);
        }
        let values: Vec<f64> = states.into_iter().flat_map(|s| s.0).collect();
        Ok(vec![Arc::new(ListArray::new(
            list_field(),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Arc::new(Float64Array::from(values)),
            None,
        ))])
    }

    /// Every row becomes a one-value list (sharing the input's buffer); NULL or filtered
    /// rows a NULL list.
    fn rows_as_states(values: &[ArrayRef], filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let x = values[0].as_primitive::<Float64Type>();
        let n = x.len();
        let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(1, n));
        let valid: NullBuffer = (0..n)
            .map(|i| x.is_valid(i) && !filtered_out(filter, i))
            .collect();
        let nulls = (valid.null_count() > 0).then_some(valid);
        Ok(vec![Arc::new(ListArray::new(
            list_field(),
            offsets,
            Arc::new(Float64Array::new(x.values().clone(), None)),
            nulls,
        ))])
    }

    fn allocated(&self) -> usize {
        self.0.capacity() * size_of::<f64>()
    }
}
