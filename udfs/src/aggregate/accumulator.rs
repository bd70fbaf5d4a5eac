//! The `Accumulator` and `GroupsAccumulator` of every aggregate in this crate, generic
//! over the state of one group ([`GroupState`]).
//!
//! An aggregate says how one group's state takes a row, merges a partial state, turns into
//! Arrow state columns and evaluates; the plumbing DataFusion needs around that (NULL and
//! filter handling, growing and emitting groups, partial states, `convert_to_state` when
//! partial aggregation is skipped, memory accounting) is written once here.

use std::fmt::Debug;
use std::mem::{size_of, size_of_val};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, UInt64Array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

/// The running state of one group of an aggregate.
pub(crate) trait GroupState: Default + Debug + Send + Sync + 'static {
    /// One input row: the argument values, none of them NULL.
    type Row: Copy;
    /// One row of a state batch (see [`GroupState::state_arrays`]).
    type Partial;
    /// What the result depends on besides the state (a quantile's `q`, a variance's
    /// `ddof`), fixed per call.
    type Params: Debug + Send + Sync + 'static;
    /// Whether a state owns heap memory, reported by [`GroupState::allocated`].
    const ALLOCATES: bool;

    /// The state columns, named after the aggregate call `name`.
    fn state_fields(name: &str) -> Vec<FieldRef>;

    /// Calls `f(i, row)` for every input row `i` without a NULL argument that `filter`
    /// keeps.
    fn for_each_row(
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
        f: impl FnMut(usize, Self::Row),
    );

    /// Calls `f(i, partial)` for every non-NULL row `i` of a state batch.
    fn for_each_partial(states: &[ArrayRef], f: impl FnMut(usize, Self::Partial));

    /// Takes one row.
    fn update(&mut self, row: Self::Row);

    /// Takes a partial state of the same group.
    fn merge(&mut self, partial: Self::Partial);

    /// The results of `groups`, one row each (NULL for a group without rows); Float64
    /// unless the aggregate declares another return type for its parameters.
    fn evaluate(groups: &mut [Self], params: &Self::Params) -> Result<ArrayRef>;

    /// The state columns of `states`, one row each.
    fn state_arrays(states: Vec<Self>) -> Result<Vec<ArrayRef>>;

    /// The state columns of the input rows, each row its own group (for DataFusion's
    /// `convert_to_state`, used when partial aggregation is skipped).
    fn rows_as_states(values: &[ArrayRef], filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let mut states: Vec<Self> = std::iter::repeat_with(Self::default)
            .take(values[0].len())
            .collect();
        Self::for_each_row(values, filter, |i, row| states[i].update(row));
        Self::state_arrays(states)
    }

    /// Heap bytes owned by this state.
    fn allocated(&self) -> usize {
        0
    }
}

/// The accumulator of a single group (an aggregate without `GROUP BY`).
#[derive(Debug)]
pub(crate) struct StateAccumulator<S: GroupState> {
    state: S,
    params: S::Params,
}

impl<S: GroupState> StateAccumulator<S> {
    pub(crate) fn new(params: S::Params) -> Self {
        Self {
            state: S::default(),
            params,
        }
    }
}

impl<S: GroupState> Accumulator for StateAccumulator<S> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let state = &mut self.state;
        S::for_each_row(values, None, |_, row| state.update(row));
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let state = &mut self.state;
        S::for_each_partial(states, |_, partial| state.merge(partial));
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        // The state is taken: DataFusion asks for it once, as the accumulator's last use.
        S::state_arrays(vec![std::mem::take(&mut self.state)])?
            .iter()
            .map(|column| ScalarValue::try_from_array(column, 0))
            .collect()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let result = S::evaluate(std::slice::from_mut(&mut self.state), &self.params)?;
        ScalarValue::try_from_array(&result, 0)
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.state.allocated()
    }
}

/// The accumulator of many groups (`GROUP BY cell`).
#[derive(Debug)]
pub(crate) struct StateGroupsAccumulator<S: GroupState> {
    groups: Vec<S>,
    params: S::Params,
}

impl<S: GroupState> StateGroupsAccumulator<S> {
    pub(crate) fn new(params: S::Params) -> Self {
        Self {
            groups: Vec::new(),
            params,
        }
    }
}

impl<S: GroupState> GroupsAccumulator for StateGroupsAccumulator<S> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, S::default);
        let groups = &mut self.groups;
        S::for_each_row(values, opt_filter, |i, row| {
            groups[group_indices[i]].update(row)
        });
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, S::default);
        let groups = &mut self.groups;
        S::for_each_partial(values, |i, partial| groups[group_indices[i]].merge(partial));
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        S::evaluate(&mut emit_to.take_needed(&mut self.groups), &self.params)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        S::state_arrays(emit_to.take_needed(&mut self.groups))
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        S::rows_as_states(values, opt_filter)
    }

    fn size(&self) -> usize {
        let allocated = if S::ALLOCATES {
            self.groups.iter().map(S::allocated).sum()
        } else {
            0
        };
        self.groups.capacity() * size_of::<S>() + allocated
    }
}

/// True if the filter excludes row `i` (a NULL filter value excludes it too).
#[inline(always)]
pub(crate) fn filtered_out(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_some_and(|f| !f.is_valid(i) || !f.value(i))
}

/// Calls `f(i)` for every row `i` where none of the first `k` columns is NULL and the
/// filter keeps the row; a plain loop when there is neither a NULL nor a filter.
#[inline(always)]
pub(crate) fn for_each_valid_row(
    values: &[ArrayRef],
    k: usize,
    filter: Option<&BooleanArray>,
    mut f: impl FnMut(usize),
) {
    let nulls = values[..k].iter().fold(None, |acc: Option<NullBuffer>, v| {
        NullBuffer::union(acc.as_ref(), v.nulls())
    });
    let n = values[0].len();
    if nulls.is_none() && filter.is_none() {
        (0..n).for_each(f);
    } else {
        for i in 0..n {
            if nulls.as_ref().is_some_and(|b| b.is_null(i)) || filtered_out(filter, i) {
                continue;
            }
            f(i);
        }
    }
}

/// A state of fixed size: a row count and a few Float64 numbers (running sums). Every
/// such state is a [`GroupState`] with the columns `count` (UInt64) and [`Fixed::FIELDS`]
/// (Float64), a state with count 0 being an empty group.
pub(crate) trait Fixed: Copy + Default + Debug + Send + Sync + 'static {
    /// See [`GroupState::Row`].
    type Row: Copy;
    /// See [`GroupState::Params`].
    type Params: Debug + Send + Sync + 'static;
    /// Names of the Float64 state columns, after `count`.
    const FIELDS: &'static [&'static str];

    /// The input columns this state reads (the first `ARGS` arguments).
    const ARGS: usize;

    /// The row `i` of the first `ARGS` input columns, known to have no NULL there.
    fn row(columns: &[&[f64]], i: usize) -> Self::Row;

    /// The number of rows taken.
    fn count(&self) -> u64;

    /// The Float64 column `j` (in [`Fixed::FIELDS`] order).
    fn field(&self, j: usize) -> f64;

    /// A state from its count and Float64 columns.
    fn from_fields(count: u64, fields: &[f64]) -> Self;

    /// See [`GroupState::update`].
    fn update(&mut self, row: Self::Row);

    /// See [`GroupState::merge`].
    fn merge(&mut self, other: Self);

    /// See [`GroupState::evaluate`]; only called with a count above 0.
    fn evaluate(&self, params: &Self::Params) -> f64;
}

impl<T: Fixed> GroupState for T {
    type Row = <T as Fixed>::Row;
    type Partial = T;
    type Params = <T as Fixed>::Params;
    const ALLOCATES: bool = false;

    fn state_fields(name: &str) -> Vec<FieldRef> {
        let field = |column: &str, dt: DataType| {
            Arc::new(Field::new(format_state_name(name, column), dt, true))
        };
        std::iter::once(field("count", DataType::UInt64))
            .chain(T::FIELDS.iter().map(|f| field(f, DataType::Float64)))
            .collect()
    }

    #[inline(always)]
    fn for_each_row(
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
        mut f: impl FnMut(usize, Self::Row),
    ) {
        let columns: Vec<&[f64]> = values[..T::ARGS]
            .iter()
            .map(|v| v.as_primitive::<Float64Type>().values().as_ref())
            .collect();
        for_each_valid_row(values, T::ARGS, filter, |i| f(i, T::row(&columns, i)));
    }

    fn for_each_partial(states: &[ArrayRef], mut f: impl FnMut(usize, T)) {
        let count = states[0].as_primitive::<UInt64Type>();
        let fields: Vec<&[f64]> = states[1..]
            .iter()
            .map(|s| s.as_primitive::<Float64Type>().values().as_ref())
            .collect();
        let mut row = vec![0.0; fields.len()];
        for i in 0..count.len() {
            if count.is_null(i) {
                continue;
            }
            for (value, field) in row.iter_mut().zip(&fields) {
                *value = field[i];
            }
            f(i, T::from_fields(count.value(i), &row));
        }
    }

    #[inline(always)]
    fn update(&mut self, row: Self::Row) {
        Fixed::update(self, row);
    }

    fn merge(&mut self, partial: T) {
        if partial.count() > 0 {
            Fixed::merge(self, partial);
        }
    }

    fn evaluate(groups: &mut [Self], params: &Self::Params) -> Result<ArrayRef> {
        Ok(Arc::new(
            groups
                .iter()
                .map(|g| (g.count() > 0).then(|| Fixed::evaluate(g, params)))
                .collect::<Float64Array>(),
        ))
    }

    fn state_arrays(states: Vec<T>) -> Result<Vec<ArrayRef>> {
        let count: ArrayRef = Arc::new(UInt64Array::from_iter_values(
            states.iter().map(Fixed::count),
        ));
        let fields = (0..T::FIELDS.len()).map(|j| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                states.iter().map(|s| s.field(j)),
            ))
        });
        Ok(std::iter::once(count).chain(fields).collect())
    }
}
