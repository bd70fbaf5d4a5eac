//! `weighted_mean(x, w)`: numpy.average(x, weights=w).

use std::mem::size_of;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, UInt64Array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::sum::Sum;
use super::values::filtered_out;
use crate::sql::{DOC_SECTION_AGGREGATE, float64};

pub(crate) const NAME: &str = "weighted_mean";

/// `weighted_mean(x, w)` = `sum(w * x) / sum(w)` over rows where neither is NULL.
///
/// Both sums are compensated (Neumaier), so the result is within a few ulps of the exact
/// value whatever the row order or partitioning, and so of numpy's pairwise sums.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WeightedMean {
    signature: Signature,
}

impl Default for WeightedMean {
    fn default() -> Self {
        Self::new()
    }
}

impl WeightedMean {
    /// The UDAF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![float64(), float64()], Volatility::Immutable),
        }
    }
}

/// Running state of one group.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    count: u64,
    wx: Sum,
    w: Sum,
}

impl State {
    #[inline(always)]
    fn update(&mut self, x: f64, w: f64) {
        self.count += 1;
        self.wx.add(w * x);
        self.w.add(w);
    }

    fn evaluate(&self) -> Option<f64> {
        (self.count > 0).then(|| self.wx.value() / self.w.value())
    }
}

/// The five state columns, in `state_fields` order.
struct StateColumns<'a> {
    count: &'a UInt64Array,
    wx: &'a Float64Array,
    wx_c: &'a Float64Array,
    w: &'a Float64Array,
    w_c: &'a Float64Array,
}

impl<'a> StateColumns<'a> {
    fn new(states: &'a [ArrayRef]) -> Self {
        Self {
            count: states[0].as_primitive::<UInt64Type>(),
            wx: states[1].as_primitive::<Float64Type>(),
            wx_c: states[2].as_primitive::<Float64Type>(),
            w: states[3].as_primitive::<Float64Type>(),
            w_c: states[4].as_primitive::<Float64Type>(),
        }
    }

    /// Row `i` as a state, `None` if NULL (no rows).
    fn get(&self, i: usize) -> Option<State> {
        if self.count.is_null(i) {
            return None;
        }
        Some(State {
            count: self.count.value(i),
            wx: Sum {
                sum: self.wx.value(i),
                compensation: self.wx_c.value(i),
            },
            w: Sum {
                sum: self.w.value(i),
                compensation: self.w_c.value(i),
            },
        })
    }
}

impl State {
    fn merge(&mut self, other: State) {
        self.count += other.count;
        self.wx.merge(other.wx);
        self.w.merge(other.w);
    }
}

fn state_arrays(states: &[State]) -> Vec<ArrayRef> {
    let col = |f: &dyn Fn(&State) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(states.iter().map(f)))
    };
    vec![
        Arc::new(UInt64Array::from_iter_values(
            states.iter().map(|s| s.count),
        )),
        col(&|s| s.wx.sum),
        col(&|s| s.wx.compensation),
        col(&|s| s.w.sum),
        col(&|s| s.w.compensation),
    ]
}

/// Calls `f(row, x, w)` for every row where x and w are valid and the filter passes.
#[inline(always)]
fn for_each_row(
    values: &[ArrayRef],
    filter: Option<&BooleanArray>,
    mut f: impl FnMut(usize, f64, f64),
) {
    let x = values[0].as_primitive::<Float64Type>();
    let w = values[1].as_primitive::<Float64Type>();
    let nulls = NullBuffer::union(x.nulls(), w.nulls());
    let (xs, ws) = (x.values(), w.values());
    if nulls.is_none() && filter.is_none() {
        for (i, (&x, &w)) in xs.iter().zip(ws.iter()).enumerate() {
            f(i, x, w);
        }
    } else {
        for i in 0..xs.len() {
            if nulls.as_ref().is_some_and(|n| n.is_null(i)) || filtered_out(filter, i) {
                continue;
            }
            f(i, xs[i], ws[i]);
        }
    }
}

#[derive(Debug, Default)]
struct WeightedMeanAccumulator {
    state: State,
}

impl Accumulator for WeightedMeanAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let state = &mut self.state;
        for_each_row(values, None, |_, x, w| state.update(x, w));
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let cols = StateColumns::new(states);
        for i in 0..cols.count.len() {
            if let Some(s) = cols.get(i) {
                self.state.merge(s);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let s = self.state;
        Ok(vec![
            ScalarValue::UInt64(Some(s.count)),
            ScalarValue::Float64(Some(s.wx.sum)),
            ScalarValue::Float64(Some(s.wx.compensation)),
            ScalarValue::Float64(Some(s.w.sum)),
            ScalarValue::Float64(Some(s.w.compensation)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.state.evaluate()))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
    }
}

#[derive(Debug, Default)]
struct WeightedMeanGroupsAccumulator {
    groups: Vec<State>,
}

impl GroupsAccumulator for WeightedMeanGroupsAccumulator {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups, State::default());
        let groups = &mut self.groups;
        for_each_row(values, opt_filter, |i, x, w| {
            groups[group_indices[i]].update(x, w)
        });
        Ok(())
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups, State::default());
        let cols = StateColumns::new(values);
        for (i, &g) in group_indices.iter().enumerate() {
            if let Some(s) = cols.get(i) {
                self.groups[g].merge(s);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        Ok(Arc::new(
            groups.iter().map(State::evaluate).collect::<Float64Array>(),
        ))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(state_arrays(&emit_to.take_needed(&mut self.groups)))
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Every row is its own group: count 1 and its product, or count 0 when skipped.
        let mut states = vec![State::default(); values[0].len()];
        for_each_row(values, opt_filter, |i, x, w| states[i].update(x, w));
        Ok(state_arrays(&states))
    }

    fn size(&self) -> usize {
        self.groups.capacity() * size_of::<State>()
    }
}

impl AggregateUDFImpl for WeightedMean {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<WeightedMeanAccumulator>::default())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let f = |name: &str, dt: DataType| {
            Arc::new(Field::new(format_state_name(args.name, name), dt, true))
        };
        Ok(vec![
            f("count", DataType::UInt64),
            f("sum_wx", DataType::Float64),
            f("sum_wx_compensation", DataType::Float64),
            f("sum_w", DataType::Float64),
            f("sum_w_compensation", DataType::Float64),
        ])
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::<WeightedMeanGroupsAccumulator>::default())
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
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
        }))
    }
}
