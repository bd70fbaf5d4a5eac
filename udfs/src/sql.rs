//! Plumbing shared by the scalar UDFs: typed access to arguments that are either arrays
//! or scalars, null-propagating row loops, signatures and documentation sections.
//!
//! The row loops read values straight from the Arrow buffers (no `ScalarValue` per row)
//! and return a scalar when every argument is a scalar, so constant folding works. The
//! hot functions (`healpix_cell`, `morton`) add their own fast path for the common shape
//! "lat and lon arrays, constant order".

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanBufferBuilder, PrimitiveArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::ArrowPrimitiveType;
use datafusion::common::types::NativeType;
use datafusion::common::types::{logical_float64, logical_int64, logical_string, logical_uint64};
use datafusion::common::{Result, ScalarValue, internal_datafusion_err};
use datafusion::logical_expr::{Coercion, ColumnarValue, DocSection, TypeSignatureClass};

use crate::UdfError;
use crate::healpix::LatitudeMode;

/// Documentation section of the HEALPix cell functions.
pub(crate) const DOC_SECTION_HEALPIX: DocSection = DocSection {
    include: true,
    label: "HEALPix Functions",
    description: Some("HEALPix NESTED cells (orders 0-29) of latitude/longitude points."),
};

/// Documentation section of the morton functions.
pub(crate) const DOC_SECTION_MORTON: DocSection = DocSection {
    include: true,
    label: "Morton Functions",
    description: Some("Decimal morton indices (orders 1-18), the reference's cell keys."),
};

/// Documentation section of the numpy-compatible aggregates.
pub(crate) const DOC_SECTION_AGGREGATE: DocSection = DocSection {
    include: true,
    label: "numpy-compatible Aggregate Functions",
    description: Some("Aggregates whose results equal numpy's definitions."),
};

/// Any numeric argument, cast to Float64.
pub(crate) fn float64() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_float64()),
        vec![TypeSignatureClass::Numeric],
        NativeType::Float64,
    )
}

/// Any integer argument, cast to Int64 (orders, morton indices).
pub(crate) fn int64() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_int64()),
        vec![TypeSignatureClass::Integer],
        NativeType::Int64,
    )
}

/// Any integer argument, cast to UInt64 (nested cell ids).
pub(crate) fn uint64() -> Coercion {
    Coercion::new_implicit(
        TypeSignatureClass::Native(logical_uint64()),
        vec![TypeSignatureClass::Integer],
        NativeType::UInt64,
    )
}

/// A string argument (the latitude mode).
pub(crate) fn string() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_string()))
}

/// One argument, either a whole column or a constant.
pub(crate) enum Arg<'a, T: ArrowPrimitiveType> {
    Scalar(Option<T::Native>),
    Array(&'a PrimitiveArray<T>),
}

impl<'a, T: ArrowPrimitiveType> Arg<'a, T> {
    pub(crate) fn new(value: &'a ColumnarValue) -> Result<Self> {
        let wrong_type = |dt: &arrow::datatypes::DataType| {
            internal_datafusion_err!("expected a {} argument, got {dt}", T::DATA_TYPE)
        };
        match value {
            ColumnarValue::Array(a) => a
                .as_primitive_opt::<T>()
                .map(Arg::Array)
                .ok_or_else(|| wrong_type(a.data_type())),
            ColumnarValue::Scalar(s) => {
                let a = s.to_array_of_size(1)?;
                let p = a
                    .as_primitive_opt::<T>()
                    .ok_or_else(|| wrong_type(a.data_type()))?;
                Ok(Arg::Scalar(p.is_valid(0).then(|| p.value(0))))
            }
        }
    }

    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<T::Native> {
        match self {
            Arg::Scalar(v) => *v,
            Arg::Array(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }

    pub(crate) fn is_scalar(&self) -> bool {
        matches!(self, Arg::Scalar(_))
    }
}

/// The optional latitude-mode argument at `index`: absent means [`LatitudeMode::Sphere`];
/// present it must be a constant string.
pub(crate) fn mode_arg(
    function: &'static str,
    args: &[ColumnarValue],
    index: usize,
) -> Result<LatitudeMode, UdfError> {
    let Some(value) = args.get(index) else {
        return Ok(LatitudeMode::default());
    };
    let text = match value {
        ColumnarValue::Scalar(s) => match s.try_as_str() {
            Some(Some(t)) => t.to_string(),
            Some(None) => "NULL".to_string(),
            None => s.to_string(),
        },
        ColumnarValue::Array(a) => format!("a column of {} values", a.data_type()),
    };
    LatitudeMode::parse_for(function, &text)
}

/// Builds the result from values and validity; a scalar when every input was a scalar.
pub(crate) fn finish<O: ArrowPrimitiveType>(
    values: Vec<O::Native>,
    nulls: Option<NullBuffer>,
    scalar: bool,
) -> Result<ColumnarValue> {
    let array = PrimitiveArray::<O>::new(values.into(), nulls);
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(Arc::new(array) as ArrayRef))
    }
}

/// A column of `n` nulls (or a NULL scalar).
pub(crate) fn all_null<O: ArrowPrimitiveType>(n: usize, scalar: bool) -> Result<ColumnarValue> {
    let n = if scalar { 1 } else { n };
    finish::<O>(
        vec![O::Native::default(); n],
        Some(NullBuffer::new_null(n)),
        scalar,
    )
}

struct Rows<O: ArrowPrimitiveType> {
    values: Vec<O::Native>,
    valid: BooleanBufferBuilder,
    any_null: bool,
}

impl<O: ArrowPrimitiveType> Rows<O> {
    fn new(n: usize) -> Self {
        Self {
            values: Vec::with_capacity(n),
            valid: BooleanBufferBuilder::new(n),
            any_null: false,
        }
    }

    #[inline(always)]
    fn push(&mut self, v: Option<O::Native>) {
        match v {
            Some(v) => {
                self.values.push(v);
                self.valid.append(true);
            }
            None => {
                self.values.push(O::Native::default());
                self.valid.append(false);
                self.any_null = true;
            }
        }
    }

    fn finish(mut self, scalar: bool) -> Result<ColumnarValue> {
        let nulls = self.any_null.then(|| NullBuffer::new(self.valid.finish()));
        finish::<O>(self.values, nulls, scalar)
    }
}

/// Applies `f` row by row to one argument; NULL in, NULL out.
pub(crate) fn map1<A, O>(
    a: &ColumnarValue,
    n: usize,
    mut f: impl FnMut(A::Native) -> Result<O::Native, UdfError>,
) -> Result<ColumnarValue>
where
    A: ArrowPrimitiveType,
    O: ArrowPrimitiveType,
{
    let a = Arg::<A>::new(a)?;
    let scalar = a.is_scalar();
    let n = if scalar { 1 } else { n };
    let mut rows = Rows::<O>::new(n);
    for i in 0..n {
        rows.push(match a.get(i) {
            Some(x) => Some(f(x)?),
            None => None,
        });
    }
    rows.finish(scalar)
}

/// Applies `f` row by row to two arguments; a NULL in any gives NULL.
pub(crate) fn map2<A, B, O>(
    a: &ColumnarValue,
    b: &ColumnarValue,
    n: usize,
    mut f: impl FnMut(A::Native, B::Native) -> Result<O::Native, UdfError>,
) -> Result<ColumnarValue>
where
    A: ArrowPrimitiveType,
    B: ArrowPrimitiveType,
    O: ArrowPrimitiveType,
{
    let (a, b) = (Arg::<A>::new(a)?, Arg::<B>::new(b)?);
    let scalar = a.is_scalar() && b.is_scalar();
    let n = if scalar { 1 } else { n };
    let mut rows = Rows::<O>::new(n);
    for i in 0..n {
        rows.push(match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => Some(f(x, y)?),
            _ => None,
        });
    }
    rows.finish(scalar)
}

/// Applies `f` row by row to three arguments; a NULL in any gives NULL.
pub(crate) fn map3<A, B, C, O>(
    a: &ColumnarValue,
    b: &ColumnarValue,
    c: &ColumnarValue,
    n: usize,
    mut f: impl FnMut(A::Native, B::Native, C::Native) -> Result<O::Native, UdfError>,
) -> Result<ColumnarValue>
where
    A: ArrowPrimitiveType,
    B: ArrowPrimitiveType,
    C: ArrowPrimitiveType,
    O: ArrowPrimitiveType,
{
    let (a, b, c) = (Arg::<A>::new(a)?, Arg::<B>::new(b)?, Arg::<C>::new(c)?);
    let scalar = a.is_scalar() && b.is_scalar() && c.is_scalar();
    let n = if scalar { 1 } else { n };
    let mut rows = Rows::<O>::new(n);
    for i in 0..n {
        rows.push(match (a.get(i), b.get(i), c.get(i)) {
            (Some(x), Some(y), Some(z)) => Some(f(x, y, z)?),
            _ => None,
        });
    }
    rows.finish(scalar)
}
