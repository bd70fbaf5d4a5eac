//! `np_var(x)`: numpy.var(x) (ddof=0), the population variance.

use std::sync::OnceLock;

use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature, Volatility,
};

use super::moments::{MomentsAccumulator, MomentsGroupsAccumulator, Output, state_fields};
use crate::sql::{DOC_SECTION_AGGREGATE, float64};

pub(crate) const NAME: &str = "np_var";

/// `np_var(x)`: numpy.var(x) (ddof=0) in Float64, streaming and mergeable; see `moments.rs` for why
/// DataFusion's built-in is not used.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NpVar {
    signature: Signature,
}

impl Default for NpVar {
    fn default() -> Self {
        Self::new()
    }
}

impl NpVar {
    /// The UDAF implementation.
    pub fn new() -> Self {
        Self {
            signature: Signature::coercible(vec![float64()], Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for NpVar {
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
        Ok(Box::new(MomentsAccumulator::new(Output::Variance)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(state_fields(args.name))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(MomentsGroupsAccumulator::new(Output::Variance)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: OnceLock<Documentation> = OnceLock::new();
        Some(DOC.get_or_init(|| {
            Documentation::builder(
                DOC_SECTION_AGGREGATE,
                "numpy.var(x) (ddof=0): population variance, mean((x - mean(x))^2), \
                 computed in Float64 with shifted, compensated sums so it agrees with numpy's \
                 two-pass result to about 1e-15 relative even for large means (DataFusion's \
                 var_pop drifts by a few 1e-12 there). NULLs are ignored, an empty \
                 group gives NULL, NaN or infinite values give NaN.",
                "np_var(x)",
            )
            .with_argument("x", "Values (any numeric type).")
            .with_sql_example(
                "```sql\n> SELECT np_var(h) AS v FROM (VALUES (2.0), (4.0), (4.0), (4.0), (5.0), (5.0), (7.0), (9.0)) t(h);\n+------+\n| v    |\n+------+\n| 4.0  |\n+------+\n```",
            )
            .with_related_udf("np_std")
            .build()
        }))
    }
}
