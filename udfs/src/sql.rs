//! Plumbing shared by the SQL functions: the `ScalarUDFImpl` every scalar function is an
//! instance of, typed access to arguments that are either arrays or scalars,
//! null-propagating row loops, signatures and documentation sections.
//!
//! Each function's file holds only what is its own (name, signature, return type, kernel
//! and `documentation()`); [`ScalarFunction`] and [`Definition`] supply the rest, so every
//! function behaves the same way towards DataFusion.
//!
//! The row loops read values straight from the Arrow buffers (no `ScalarValue` per row)
//! and return a scalar when every argument is a scalar, so constant folding works. The
//! hot functions add their own fast path for their common shape: `healpix_cell` and
//! `morton` for "lat and lon arrays, constant order", `healpix_parent` and
//! `healpix_children_first` / `_last` for "a column of cells, constant orders".

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanBufferBuilder, PrimitiveArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{ArrowPrimitiveType, DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::types::NativeType;
use datafusion::common::types::{
    LogicalTypeRef, logical_float64, logical_int64, logical_string, logical_uint64,
};
use datafusion::common::{Result, ScalarValue, internal_datafusion_err, internal_err};
use datafusion::logical_expr::{
    Coercion, ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, TypeSignatureClass, Volatility,
};

use crate::UdfError;
use crate::healpix::LatitudeMode;

/// A field that takes no part in equality or hashing: a function is identified by its
/// [`Definition`] (name, signature, return type), not by its kernel or its docs.
pub(crate) struct Opaque<T>(pub(crate) T);

impl<T> std::fmt::Debug for Opaque<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
}

impl<T> PartialEq for Opaque<T> {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl<T> Eq for Opaque<T> {}

impl<T> Hash for Opaque<T> {
    fn hash<H: Hasher>(&self, _state: &mut H) {}
}

/// Documentation built on first request.
struct LazyDocumentation {
    build: fn() -> Documentation,
    built: OnceLock<Documentation>,
}

/// What every SQL function of the crate declares: name, signature, return type and
/// documentation (built once, on first request).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Definition {
    name: &'static str,
    signature: Signature,
    return_type: DataType,
    documentation: Opaque<LazyDocumentation>,
}

impl Definition {
    pub(crate) fn new(
        name: &'static str,
        signature: Signature,
        return_type: DataType,
        documentation: fn() -> Documentation,
    ) -> Self {
        Self {
            name,
            signature,
            return_type,
            documentation: Opaque(LazyDocumentation {
                build: documentation,
                built: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.name
    }

    pub(crate) fn signature(&self) -> &Signature {
        &self.signature
    }

    pub(crate) fn return_type(&self) -> DataType {
        self.return_type.clone()
    }

    pub(crate) fn documentation(&self) -> Option<&Documentation> {
        let docs = &self.documentation.0;
        Some(docs.built.get_or_init(docs.build))
    }
}

/// The kernel of a scalar function: argument values and number of rows in, result out.
type Kernel = Box<dyn Fn(&[ColumnarValue], usize) -> Result<ColumnarValue> + Send + Sync>;

/// A scalar SQL function of this crate: a [`Definition`] and a [`Kernel`].
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ScalarFunction {
    definition: Definition,
    kernel: Opaque<Kernel>,
}

impl ScalarFunction {
    /// The function as a DataFusion UDF.
    pub(crate) fn udf(
        definition: Definition,
        kernel: impl Fn(&[ColumnarValue], usize) -> Result<ColumnarValue> + Send + Sync + 'static,
    ) -> ScalarUDF {
        ScalarUDF::new_from_impl(Self {
            definition,
            kernel: Opaque(Box::new(kernel)),
        })
    }
}

impl ScalarUDFImpl for ScalarFunction {
    fn name(&self) -> &str {
        self.definition.name()
    }

    fn signature(&self) -> &Signature {
        self.definition.signature()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.definition.return_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        (self.kernel.0)(&args.args, args.number_rows)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.definition.documentation()
    }
}

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

/// An argument of any type of `accepted`, cast to `target`.
fn implicit(target: LogicalTypeRef, accepted: TypeSignatureClass, cast_to: NativeType) -> Coercion {
    Coercion::new_implicit(TypeSignatureClass::Native(target), vec![accepted], cast_to)
}

/// Any numeric argument, cast to Float64.
pub(crate) fn float64() -> Coercion {
    implicit(
        logical_float64(),
        TypeSignatureClass::Numeric,
        NativeType::Float64,
    )
}

/// Any integer argument, cast to Int64 (orders, morton indices).
pub(crate) fn int64() -> Coercion {
    implicit(
        logical_int64(),
        TypeSignatureClass::Integer,
        NativeType::Int64,
    )
}

/// Any integer argument, cast to UInt64 (nested cell ids).
pub(crate) fn uint64() -> Coercion {
    implicit(
        logical_uint64(),
        TypeSignatureClass::Integer,
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

/// The Arrow types arguments are cast to, each with its [`Coercion`].
pub(crate) trait Coerced: ArrowPrimitiveType {
    fn coercion() -> Coercion;
}

macro_rules! coerced {
    ($($type:ty => $coercion:ident),+) => {
        $(impl Coerced for $type {
            fn coercion() -> Coercion {
                $coercion()
            }
        })+
    };
}

coerced!(Float64Type => float64, Int64Type => int64, UInt64Type => uint64);

/// Defines `$map`, which applies `f` row by row to as many arguments as are listed (a
/// NULL in any argument gives NULL, all-scalar arguments give a scalar), and, if named,
/// `$udf`, the scalar function of that many arguments computed with `$map`.
macro_rules! map_rows {
    ($(#[$doc:meta])* $map:ident, $udf:ident: $(($A:ident, $a:ident)),+) => {
        map_rows!($(#[$doc])* $map: $(($A, $a)),+);

        /// The scalar function `name` whose arguments are cast to the listed types and
        /// whose value is `f(name, arguments...)`, row by row (NULL in, NULL out).
        pub(crate) fn $udf<$($A: Coerced,)+ O: ArrowPrimitiveType>(
            name: &'static str,
            f: impl Fn(&'static str, $($A::Native),+) -> Result<O::Native, UdfError>
                + Send
                + Sync
                + 'static,
            documentation: fn() -> Documentation,
        ) -> ScalarUDF {
            let signature = Signature::coercible(vec![$($A::coercion()),+], Volatility::Immutable);
            let definition = Definition::new(name, signature, O::DATA_TYPE, documentation);
            ScalarFunction::udf(definition, move |args, rows| {
                let [$($a),+] = args else {
                    return internal_err!("{name}: the signature fixes the number of arguments");
                };
                $map::<$($A,)+ O>($($a,)+ rows, |$($a),+| f(name, $($a),+))
            })
        }
    };
    ($(#[$doc:meta])* $map:ident: $(($A:ident, $a:ident)),+) => {
        $(#[$doc])*
        pub(crate) fn $map<$($A,)+ O>(
            $($a: &ColumnarValue,)+
            n: usize,
            mut f: impl FnMut($($A::Native),+) -> Result<O::Native, UdfError>,
        ) -> Result<ColumnarValue>
        where
            $($A: ArrowPrimitiveType,)+
            O: ArrowPrimitiveType,
        {
            $(let $a = Arg::<$A>::new($a)?;)+
            let scalar = $($a.is_scalar())&&+;
            let n = if scalar { 1 } else { n };
            let mut rows = Rows::<O>::new(n);
            for i in 0..n {
                rows.push(match ($($a.get(i),)+) {
                    ($(Some($a),)+) => Some(f($($a),+)?),
                    _ => None,
                });
            }
            rows.finish(scalar)
        }
    };
}

map_rows!(
    /// Applies `f` row by row to one argument; NULL in, NULL out.
    map1, udf1: (A, a)
);
map_rows!(
    /// Applies `f` row by row to two arguments; a NULL in any gives NULL.
    map2, udf2: (A, a), (B, b)
);
map_rows!(
    /// Applies `f` row by row to three arguments; a NULL in any gives NULL.
    map3: (A, a), (B, b), (C, c)
);
