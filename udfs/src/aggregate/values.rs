//! Accumulators that keep every (widened) value of a group and evaluate a statistic of
//! the whole set at the end: the shared machinery of `quantile` and `np_median`.
//!
//! State (for partial aggregation) is one `List<Float64>` per group holding the values
//! seen so far. NULL inputs and filtered rows are skipped; a group without values
//! evaluates to NULL.

use std::mem::{size_of, size_of_val};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, ListArray};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::common::{Result, ScalarValue, exec_datafusion_err};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

/// A statistic of a non-empty set of values; may reorder the slice.
pub(crate) type Statistic = Arc<dyn Fn(&mut [f64]) -> f64 + Send + Sync>;

/// The state field: the list of values collected so far.
pub(crate) fn state_fields(name: &str) -> Vec<FieldRef> {
    vec![Arc::new(Field::new(
        format_state_name(name, "values"),
        DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))),
        true,
    ))]
}

fn list_of(groups: Vec<Vec<f64>>) -> Result<ArrayRef> {
    let mut offsets = Vec::with_capacity(groups.len() + 1);
    offsets.push(0_i32);
    let mut len = 0_usize;
    for g in &groups {
        len += g.len();
        offsets.push(i32::try_from(len).map_err(|_| {
            exec_datafusion_err!("more than 2^31 values in one aggregate state batch")
        })?);
    }
    let values: Vec<f64> = groups.into_iter().flatten().collect();
    Ok(Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Float64, true)),
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Arc::new(Float64Array::from(values)),
        None,
    )))
}

/// Appends the valid values of `array` (Float64) to `out`.
fn extend_valid(out: &mut Vec<f64>, array: &Float64Array) {
    if array.null_count() == 0 {
        out.extend_from_slice(array.values());
    } else {
        out.extend(array.iter().flatten());
    }
}

/// Single-group accumulator.
pub(crate) struct ValuesAccumulator {
    values: Vec<f64>,
    statistic: Statistic,
}

impl std::fmt::Debug for ValuesAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValuesAccumulator({} values)", self.values.len())
    }
}

impl ValuesAccumulator {
    pub(crate) fn new(statistic: Statistic) -> Self {
        Self {
            values: Vec::new(),
            statistic,
        }
    }
}

impl Accumulator for ValuesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        extend_valid(&mut self.values, values[0].as_primitive::<Float64Type>());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            extend_valid(&mut self.values, list.as_primitive::<Float64Type>());
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let list = list_of(vec![std::mem::take(&mut self.values)])?;
        Ok(vec![ScalarValue::List(Arc::new(
            list.as_list::<i32>().clone(),
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.values.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        Ok(ScalarValue::Float64(Some((self.statistic)(
            &mut self.values,
        ))))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.capacity() * size_of::<f64>()
    }
}

/// Many-group accumulator (GROUP BY cell).
pub(crate) struct ValuesGroupsAccumulator {
    groups: Vec<Vec<f64>>,
    statistic: Statistic,
}

impl std::fmt::Debug for ValuesGroupsAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValuesGroupsAccumulator({} groups)", self.groups.len())
    }
}

impl ValuesGroupsAccumulator {
    pub(crate) fn new(statistic: Statistic) -> Self {
        Self {
            groups: Vec::new(),
            statistic,
        }
    }
}

impl GroupsAccumulator for ValuesGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let x = values[0].as_primitive::<Float64Type>();
        self.groups.resize_with(total_num_groups, Vec::new);
        let x_nulls = x.nulls();
        let xs = x.values();
        for (i, &g) in group_indices.iter().enumerate() {
            if x_nulls.is_some_and(|n| n.is_null(i)) || filtered_out(opt_filter, i) {
                continue;
            }
            self.groups[g].push(xs[i]);
        }
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let lists = values[0].as_list::<i32>();
        for (list, &g) in lists.iter().zip(group_indices) {
            if let Some(list) = list {
                extend_valid(&mut self.groups[g], list.as_primitive::<Float64Type>());
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        let mut out = Vec::with_capacity(groups.len());
        let mut valid = Vec::with_capacity(groups.len());
        for mut g in groups {
            valid.push(!g.is_empty());
            out.push(if g.is_empty() {
                0.0
            } else {
                (self.statistic)(&mut g)
            });
        }
        let nulls = NullBuffer::from(valid);
        let nulls = (nulls.null_count() > 0).then_some(nulls);
        Ok(Arc::new(Float64Array::new(out.into(), nulls)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![list_of(emit_to.take_needed(&mut self.groups))?])
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Every row becomes a one-value list; NULL or filtered rows a NULL list.
        let x = values[0].as_primitive::<Float64Type>();
        let n = x.len();
        let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(1, n));
        let valid: NullBuffer = (0..n)
            .map(|i| x.is_valid(i) && !filtered_out(opt_filter, i))
            .collect();
        let nulls = (valid.null_count() > 0).then_some(valid);
        Ok(vec![Arc::new(ListArray::new(
            Arc::new(Field::new_list_field(DataType::Float64, true)),
            offsets,
            Arc::new(Float64Array::new(x.values().clone(), None)),
            nulls,
        ))])
    }

    fn size(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.capacity() * size_of::<f64>())
            .sum::<usize>()
            + self.groups.capacity() * size_of::<Vec<f64>>()
    }
}

/// True if the filter excludes row `i` (a NULL filter value excludes it too).
#[inline(always)]
pub(crate) fn filtered_out(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_some_and(|f| !f.is_valid(i) || !f.value(i))
}
