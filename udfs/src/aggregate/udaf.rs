//! The `AggregateUDFImpl` every aggregate of this crate is an instance of, and the
//! reading of constant arguments (`q`, `ddof`).
//!
//! All of them return Float64 (`quantiles` a list of Float64) and have both accumulators (see `accumulator.rs`); what
//! differs is the [`GroupState`], the parameters read from the call and the docs.

use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Documentation, GroupsAccumulator,
    Signature,
};

use super::accumulator::{GroupState, StateAccumulator, StateGroupsAccumulator};
use crate::UdfError;
use crate::sql::{Definition, Opaque};

/// Creates the accumulators of one aggregate, hiding the type of its group state.
trait Accumulators: Send + Sync {
    fn state_fields(&self, name: &str) -> Vec<FieldRef>;
    fn accumulator(&self, args: &AccumulatorArgs) -> Result<Box<dyn Accumulator>>;
    fn groups_accumulator(&self, args: &AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>>;
}

/// The accumulators of group state `S`, with the parameters `params` reads from a call.
struct ForState<S, P> {
    params: P,
    state: PhantomData<fn() -> S>,
}

impl<S, P> Accumulators for ForState<S, P>
where
    S: GroupState,
    P: Fn(&AccumulatorArgs) -> Result<S::Params> + Send + Sync,
{
    fn state_fields(&self, name: &str) -> Vec<FieldRef> {
        S::state_fields(name)
    }

    fn accumulator(&self, args: &AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(StateAccumulator::<S>::new((self.params)(args)?)))
    }

    fn groups_accumulator(&self, args: &AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(StateGroupsAccumulator::<S>::new((self.params)(
            args,
        )?)))
    }
}

/// The argument types a call with arguments of the given types is coerced to, or why
/// the call is invalid (for [`Signature::user_defined`] aggregates).
pub(crate) type Coerce = fn(&[DataType]) -> Result<Vec<DataType>>;

/// A numpy-compatible aggregate: a [`Definition`] (returning Float64 unless stated) and its
/// accumulators.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct NumpyAggregate {
    definition: Definition,
    coerce: Opaque<Option<Coerce>>,
    accumulators: Opaque<Box<dyn Accumulators>>,
}

impl NumpyAggregate {
    /// The aggregate `name` over group state `S`, as a DataFusion UDAF; `params` reads
    /// the call's parameters (e.g. a constant argument) when an accumulator is created.
    pub(crate) fn udaf<S: GroupState>(
        name: &'static str,
        signature: Signature,
        params: impl Fn(&AccumulatorArgs) -> Result<S::Params> + Send + Sync + 'static,
        documentation: fn() -> Documentation,
    ) -> AggregateUDF {
        Self::udaf_returning::<S>(name, signature, None, DataType::Float64, params, documentation)
    }

    /// [`Self::udaf`] with a result of type `return_type` (what `S` evaluates to with
    /// the parameters `params` reads), and for a user-defined signature, the function
    /// that checks and coerces argument types.
    pub(crate) fn udaf_returning<S: GroupState>(
        name: &'static str,
        signature: Signature,
        coerce: Option<Coerce>,
        return_type: DataType,
        params: impl Fn(&AccumulatorArgs) -> Result<S::Params> + Send + Sync + 'static,
        documentation: fn() -> Documentation,
    ) -> AggregateUDF {
        AggregateUDF::new_from_impl(Self {
            definition: Definition::new(name, signature, return_type, documentation),
            coerce: Opaque(coerce),
            accumulators: Opaque(Box::new(ForState::<S, _> {
                params,
                state: PhantomData,
            })),
        })
    }
}

impl AggregateUDFImpl for NumpyAggregate {
    fn name(&self) -> &str {
        self.definition.name()
    }

    fn signature(&self) -> &Signature {
        self.definition.signature()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.definition.documentation()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.definition.return_type())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match self.coerce.0 {
            Some(coerce) => coerce(arg_types),
            None => datafusion::common::not_impl_err!("{} has no user-defined coercion", self.name()),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(self.accumulators.0.state_fields(args.name))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.accumulators.0.accumulator(&args)
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.accumulators.0.groups_accumulator(&args)
    }
}

/// The constant argument `index` of an aggregate call (coerced to Float64), or `None` if
/// the call has fewer arguments. A column, a NULL or a value `valid` rejects is an error
/// naming `function`, `argument` and the value, and saying what is `expected`.
pub(crate) fn constant_argument(
    function: &'static str,
    argument: &'static str,
    expected: &str,
    args: &AccumulatorArgs,
    index: usize,
    valid: impl Fn(f64) -> bool,
) -> Result<Option<f64>, UdfError> {
    let Some(expr) = args.exprs.get(index) else {
        return Ok(None);
    };
    let invalid = |value: String| UdfError::InvalidArgument {
        function,
        argument,
        value,
        expected: expected.to_string(),
    };
    // A constant evaluates to a scalar without any input; a column does not.
    let batch = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let value = match expr.evaluate(&batch) {
        Ok(ColumnarValue::Scalar(ScalarValue::Float64(Some(v)))) => v,
        Ok(ColumnarValue::Scalar(s)) => return Err(invalid(s.to_string())),
        _ => return Err(invalid(expr.to_string())),
    };
    if !valid(value) {
        return Err(invalid(value.to_string()));
    }
    Ok(Some(value))
}
