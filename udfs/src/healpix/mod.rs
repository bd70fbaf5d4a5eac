//! HEALPix NESTED cells of latitude/longitude points.
//!
//! # Scheme
//!
//! HEALPix (Górski et al. 2005, <https://healpix.sourceforge.io>) splits the sphere into 12
//! base cells and each cell into 4 children per order, so order `k` has `12 * 4^k` cells of
//! equal area. Ids are in the **NESTED** scheme: the id of a cell at order `k` is
//! `base * 4^k + sub`, its parent at order `k - 1` is `id >> 2`, and the children of `p`
//! at order `k + d` are `p << 2d ..= ((p + 1) << 2d) - 1`. Orders `0..=29` are supported
//! (29 is the finest a 64-bit id can hold; order 12 cells are about 1.7 km across,
//! order 18 about 24 m, order 29 about 1.2 cm).
//!
//! # Coordinates
//!
//! Latitude and longitude are degrees. Latitude must be in `-90..=90` (else an error);
//! longitude may be any finite value and is wrapped (`-180`, `180` and `540` are the same
//! meridian). Cell centres come back with longitude in `[-180, 180)`.
//!
//! # Latitude modes
//!
//! [`LatitudeMode::Sphere`] (the default) hashes the geodetic latitude as if it were a
//! latitude on the HEALPix sphere, exactly as the reference (Python magg, via healpy and
//! mortie) does. [`LatitudeMode::Authalic`] first converts the geodetic latitude to the
//! WGS84 authalic latitude ([`authalic_latitude`]), which makes cells equal-area on the
//! ellipsoid the output's DGGS block declares. The two assign a point up to 0.1283 degrees
//! (14.3 km) apart in latitude, at 45 degrees; identical at the equator and the poles.
//!
//! # Compatibility
//!
//! The hash is bit-for-bit healpy's `ang2pix(2**order, lon, lat, nest=True, lonlat=True)`
//! and the centres are healpy's `pix2ang(..., nest=True, lonlat=True)` (see
//! `kernel.rs`), checked against golden vectors of thousands of points at every order,
//! including the poles, the antimeridian and points exactly on cell corners. On such
//! boundary points `cdshealpix` and mortie 0.6 (which uses the `healpix` 0.3 Rust crate)
//! may choose a neighbouring cell; away from boundaries all of them agree, except that
//! mortie differs from healpy for about 3.5 in a million random points at order 18.
//!
//! # SQL
//!
//! `healpix_cell`, `healpix_parent`, `healpix_children_first`, `healpix_children_last`,
//! `healpix_center_lat`, `healpix_center_lon`; see [`register`] and docs/udfs.md.

use std::f64::consts::FRAC_PI_2;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, UInt64Array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{ArrowPrimitiveType, DataType, Float64Type, Int64Type, UInt64Type};
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarUDF, Signature, TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::UdfError;
use crate::error::check_order;
use crate::sql::{
    Arg, Definition, ScalarFunction, all_null, finish, float64, int64, map3, mode_arg, string,
    uint64,
};

pub mod authalic;
mod healpix_cell;
mod healpix_center_lat;
mod healpix_center_lon;
mod healpix_children_first;
mod healpix_children_last;
mod healpix_parent;
mod kernel;

pub use authalic::{authalic_latitude, authalic_radius, geodetic_latitude};

/// Finest order a 64-bit NESTED id supports.
pub const MAX_ORDER: u8 = kernel::MAX_ORDER;

/// Which latitude is hashed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LatitudeMode {
    /// The geodetic latitude is used as a latitude on the HEALPix sphere, as the reference
    /// does (default).
    #[default]
    Sphere,
    /// The geodetic latitude is converted to the WGS84 authalic latitude first, making
    /// cells equal-area on the ellipsoid.
    Authalic,
}

impl LatitudeMode {
    /// The SQL spelling: `sphere` or `authalic`.
    pub fn as_str(self) -> &'static str {
        match self {
            LatitudeMode::Sphere => "sphere",
            LatitudeMode::Authalic => "authalic",
        }
    }

    /// Parses `sphere` / `authalic` (ASCII case-insensitive) for SQL function `function`.
    pub(crate) fn parse_for(function: &'static str, text: &str) -> Result<Self, UdfError> {
        if text.eq_ignore_ascii_case("sphere") {
            Ok(LatitudeMode::Sphere)
        } else if text.eq_ignore_ascii_case("authalic") {
            Ok(LatitudeMode::Authalic)
        } else {
            Err(UdfError::InvalidArgument {
                function,
                argument: "mode",
                value: format!("'{text}'"),
                expected: "a constant 'sphere' (default) or 'authalic'".to_string(),
            })
        }
    }
}

impl FromStr for LatitudeMode {
    type Err = UdfError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_for("latitude_mode", s)
    }
}

impl fmt::Display for LatitudeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Number of cells at `order` (`12 * 4^order`); `order <= 29`.
pub const fn n_cells(order: u8) -> u64 {
    12_u64 << (2 * order as u32)
}

pub(crate) const CELL: &str = "healpix_cell";
pub(crate) const PARENT: &str = "healpix_parent";
pub(crate) const CHILDREN_FIRST: &str = "healpix_children_first";
pub(crate) const CHILDREN_LAST: &str = "healpix_children_last";
pub(crate) const CENTER_LAT: &str = "healpix_center_lat";
pub(crate) const CENTER_LON: &str = "healpix_center_lon";

#[inline(always)]
pub(crate) fn check_lat_lon(function: &'static str, lat: f64, lon: f64) -> Result<(), UdfError> {
    if lat.is_nan() || lat.abs() > 90.0 {
        return Err(UdfError::LatitudeOutOfRange {
            function,
            argument: "lat",
            value: lat,
        });
    }
    if !lon.is_finite() {
        return Err(UdfError::LongitudeNotFinite {
            function,
            argument: "lon",
            value: lon,
        });
    }
    Ok(())
}

pub(crate) fn check_cell(
    function: &'static str,
    argument: &'static str,
    cell: u64,
    order: u8,
) -> Result<(), UdfError> {
    if cell >= n_cells(order) {
        return Err(cell_out_of_range(function, argument, cell, order));
    }
    Ok(())
}

#[cold]
fn cell_out_of_range(
    function: &'static str,
    argument: &'static str,
    cell: u64,
    order: u8,
) -> UdfError {
    UdfError::CellOutOfRange {
        function,
        argument,
        value: cell,
        order,
        n_cells: n_cells(order),
    }
}

/// The hash of a validated point.
#[inline(always)]
fn hash(lat: f64, lon: f64, order: u8, mode: LatitudeMode) -> u64 {
    match mode {
        LatitudeMode::Sphere => kernel::lonlat2nest(u32::from(order), lat, lon),
        LatitudeMode::Authalic => {
            let beta = authalic::authalic_from_geodetic_rad(lat.to_radians());
            kernel::ang2nest(u32::from(order), FRAC_PI_2 - beta, lon.to_radians())
        }
    }
}

/// How a point function hashes: at a checked `order`, in a latitude `mode`, reporting
/// bad points as `function`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hashing {
    function: &'static str,
    pub(crate) order: u8,
    mode: LatitudeMode,
}

impl Hashing {
    /// Checks `order` against `min..=max` for `function`.
    pub(crate) fn new(
        function: &'static str,
        order: i64,
        (min, max): (u8, u8),
        mode: LatitudeMode,
    ) -> Result<Self, UdfError> {
        let order = check_order(function, "order", order, min, max)?;
        Ok(Self {
            function,
            order,
            mode,
        })
    }

    /// The cell of one point.
    #[inline(always)]
    pub(crate) fn cell(self, lat: f64, lon: f64) -> Result<u64, UdfError> {
        check_lat_lon(self.function, lat, lon)?;
        Ok(hash(lat, lon, self.order, self.mode))
    }

    /// Appends the cell of every point to `out`; on an error `out` is left as it was.
    pub(crate) fn cells(
        self,
        lat: &[f64],
        lon: &[f64],
        out: &mut Vec<u64>,
    ) -> Result<(), UdfError> {
        self.check_lengths(lat, lon)?;
        // Validate in a separate, branch-light pass so the hashing loop has no early exits.
        let bad = lat
            .iter()
            .zip(lon)
            .any(|(la, lo)| la.is_nan() | (la.abs() > 90.0) | !lo.is_finite());
        if bad {
            for (&la, &lo) in lat.iter().zip(lon) {
                check_lat_lon(self.function, la, lo)?;
            }
        }
        out.reserve(lat.len());
        match self.mode {
            LatitudeMode::Sphere => {
                // Same ids as kernel::lonlat2nest, libm-free where that is certified.
                kernel::lonlat2nest_many(u32::from(self.order), lat, lon, out);
            }
            LatitudeMode::Authalic => {
                out.extend(
                    lat.iter()
                        .zip(lon)
                        .map(|(&la, &lo)| hash(la, lo, self.order, self.mode)),
                );
            }
        }
        Ok(())
    }

    pub(crate) fn check_lengths(self, lat: &[f64], lon: &[f64]) -> Result<(), UdfError> {
        if lat.len() != lon.len() {
            return Err(UdfError::InvalidArgument {
                function: self.function,
                argument: "lon",
                value: format!("{} values", lon.len()),
                expected: format!("as many values as lat ({})", lat.len()),
            });
        }
        Ok(())
    }
}

/// NESTED id at `order` (0-29) of the point (`lat_deg`, `lon_deg`).
///
/// ```
/// use magg_udfs::healpix::{self, LatitudeMode};
/// let c = healpix::cell(-75.0, 100.0, 6, LatitudeMode::Sphere).unwrap();
/// assert_eq!(c, 37388); // healpy.ang2pix(64, 100.0, -75.0, nest=True, lonlat=True)
/// assert_eq!(healpix::parent(c, 6, 0).unwrap(), 9); // base cell 9, southern cap
/// ```
pub fn cell(lat_deg: f64, lon_deg: f64, order: u8, mode: LatitudeMode) -> Result<u64, UdfError> {
    Hashing::new(CELL, order.into(), (0, MAX_ORDER), mode)?.cell(lat_deg, lon_deg)
}

/// Vectorised [`cell`]: appends the id of every point to `out`. Fails (leaving `out` as it
/// was) on the first bad latitude or longitude, or if the slices differ in length.
pub fn cells_into(
    lat: &[f64],
    lon: &[f64],
    order: u8,
    mode: LatitudeMode,
    out: &mut Vec<u64>,
) -> Result<(), UdfError> {
    Hashing::new(CELL, order.into(), (0, MAX_ORDER), mode)?.cells(lat, lon, out)
}

/// Which way a hierarchy function goes from `from_order` to `to_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// To the ancestor: `to_order <= from_order` (`healpix_parent`).
    Coarser,
    /// To the descendants: `to_order >= from_order` (`healpix_children_first` / `_last`).
    Finer,
}

/// Checks both orders of a hierarchy function against 0..=29.
fn check_orders(function: &'static str, from: i64, to: i64) -> Result<(u8, u8), UdfError> {
    let from = check_order(function, "from_order", from, 0, MAX_ORDER)?;
    let to = check_order(function, "to_order", to, 0, MAX_ORDER)?;
    Ok((from, to))
}

/// Checks that `to` is on the `direction` side of `from` (or equal).
fn check_direction(
    function: &'static str,
    from: u8,
    to: u8,
    direction: Direction,
) -> Result<(), UdfError> {
    let (wrong_way, limit) = match direction {
        Direction::Coarser => (to > from, "finer"),
        Direction::Finer => (to < from, "coarser"),
    };
    if wrong_way {
        return Err(UdfError::InvalidArgument {
            function,
            argument: "to_order",
            value: to.to_string(),
            expected: format!("an order no {limit} than from_order ({from})"),
        });
    }
    Ok(())
}

/// Checks the arguments of a hierarchy function, the first failure being the error: both
/// orders in 0..=29, `cell` a cell at `from`, and `to` on the `direction` side of `from`.
/// Returns the number of bits between ids at the two orders, `2 * |from - to|`.
fn check_hierarchy(
    function: &'static str,
    cell: u64,
    from: i64,
    to: i64,
    direction: Direction,
) -> Result<u32, UdfError> {
    let (from, to) = check_orders(function, from, to)?;
    check_cell(function, "cell", cell, from)?;
    check_direction(function, from, to, direction)?;
    Ok(order_shift(from, to))
}

/// The number of bits between ids at two orders: `2 * |from - to|`.
fn order_shift(from: u8, to: u8) -> u32 {
    2 * u32::from(from.abs_diff(to))
}

/// The ancestor of a valid `cell`, `shift / 2` orders coarser.
#[inline(always)]
fn ancestor(cell: u64, shift: u32) -> u64 {
    cell >> shift
}

/// The first descendant of a valid `cell`, `shift / 2` orders finer.
#[inline(always)]
fn first_descendant(cell: u64, shift: u32) -> u64 {
    cell << shift
}

/// The last descendant of a valid `cell`, `shift / 2` orders finer. Wrapping because the
/// column path of [`cell_orders_udf`] also maps the undefined values under NULLs; for a
/// valid cell nothing wraps (the result is below `12 * 4^29`).
#[inline(always)]
fn last_descendant(cell: u64, shift: u32) -> u64 {
    (cell.wrapping_add(1) << shift).wrapping_sub(1)
}

/// The ancestor at `to_order` of `cell` (at `from_order`); `to_order <= from_order`.
pub fn parent(cell: u64, from_order: u8, to_order: u8) -> Result<u64, UdfError> {
    let shift = check_hierarchy(
        PARENT,
        cell,
        from_order.into(),
        to_order.into(),
        Direction::Coarser,
    )?;
    Ok(ancestor(cell, shift))
}

/// First and last descendant (inclusive) at `to_order` of `cell` (at `from_order`);
/// `to_order >= from_order`. The descendants are exactly the ids in between.
pub fn children_range(cell: u64, from_order: u8, to_order: u8) -> Result<(u64, u64), UdfError> {
    let shift = check_hierarchy(
        "healpix_children_range",
        cell,
        from_order.into(),
        to_order.into(),
        Direction::Finer,
    )?;
    Ok((first_descendant(cell, shift), last_descendant(cell, shift)))
}

pub(crate) fn center_in(
    function: &'static str,
    cell: u64,
    order: i64,
    mode: LatitudeMode,
) -> Result<(f64, f64), UdfError> {
    let order = check_order(function, "order", order, 0, MAX_ORDER)?;
    check_cell(function, "cell", cell, order)?;
    let (lat, lon) = kernel::nest2lonlat(u32::from(order), cell);
    let lat = match mode {
        LatitudeMode::Sphere => lat,
        LatitudeMode::Authalic => geodetic_latitude(lat),
    };
    Ok((lat, lon))
}

/// Centre of `cell` at `order` as (latitude, longitude) in degrees, longitude in
/// `[-180, 180)`; healpy's `pix2ang(..., nest=True, lonlat=True)` bit for bit.
pub fn center(cell: u64, order: u8) -> Result<(f64, f64), UdfError> {
    center_in("healpix_center", cell, order.into(), LatitudeMode::Sphere)
}

/// [`center`] for cells assigned with `mode`: with [`LatitudeMode::Authalic`] the centre's
/// latitude is converted back from authalic to geodetic.
pub fn center_with_mode(cell: u64, order: u8, mode: LatitudeMode) -> Result<(f64, f64), UdfError> {
    center_in("healpix_center", cell, order.into(), mode)
}

/// A point function (`healpix_cell`, `morton`): `(lat, lon, order [, mode])` with
/// orders in `orders`, valued `O`. Columns of lat/lon with a constant order go through
/// `batch` (the vectorised kernel); every other shape through `one`, row by row.
pub(crate) fn points_udf<O: ArrowPrimitiveType>(
    name: &'static str,
    orders: (u8, u8),
    batch: impl Fn(Hashing, &[f64], &[f64], &mut Vec<O::Native>) -> Result<(), UdfError>
    + Send
    + Sync
    + 'static,
    one: impl Fn(Hashing, f64, f64) -> Result<O::Native, UdfError> + Send + Sync + 'static,
    documentation: fn() -> Documentation,
) -> ScalarUDF {
    let signature = Signature::one_of(
        vec![
            TypeSignature::Coercible(vec![float64(), float64(), int64()]),
            TypeSignature::Coercible(vec![float64(), float64(), int64(), string()]),
        ],
        Volatility::Immutable,
    );
    let definition = Definition::new(name, signature, O::DATA_TYPE, documentation);
    ScalarFunction::udf(definition, move |args, rows| {
        invoke_points::<O>(name, args, rows, orders, &batch, &one)
    })
}

fn invoke_points<O: ArrowPrimitiveType>(
    function: &'static str,
    args: &[ColumnarValue],
    n: usize,
    orders: (u8, u8),
    batch: impl Fn(Hashing, &[f64], &[f64], &mut Vec<O::Native>) -> Result<(), UdfError>,
    one: impl Fn(Hashing, f64, f64) -> Result<O::Native, UdfError>,
) -> Result<ColumnarValue> {
    let mode = mode_arg(function, args, 3)?;
    let [lat, lon, order] = &args[..3] else {
        unreachable!("the signature has at least three arguments")
    };
    if let (ColumnarValue::Array(_), ColumnarValue::Array(_), ColumnarValue::Scalar(_)) =
        (lat, lon, order)
    {
        let (Arg::Array(la), Arg::Array(lo)) =
            (Arg::<Float64Type>::new(lat)?, Arg::<Float64Type>::new(lon)?)
        else {
            unreachable!("arrays stay arrays")
        };
        let Arg::Scalar(Some(o)) = Arg::<Int64Type>::new(order)? else {
            return all_null::<O>(n, false);
        };
        let hashing = Hashing::new(function, o, orders, mode)?;
        let nulls = NullBuffer::union(la.nulls(), lo.nulls());
        let mut out = Vec::with_capacity(n);
        match &nulls {
            None => batch(hashing, la.values(), lo.values(), &mut out)?,
            Some(valid) => {
                for i in 0..la.len() {
                    out.push(if valid.is_valid(i) {
                        one(hashing, la.value(i), lo.value(i))?
                    } else {
                        O::Native::default()
                    });
                }
            }
        }
        return finish::<O>(out, nulls, false);
    }
    map3::<Float64Type, Float64Type, Int64Type, O>(lat, lon, order, n, |la, lo, o| {
        one(Hashing::new(function, o, orders, mode)?, la, lo)
    })
}

/// A function of `(cell, from_order, to_order)` to a cell id (`healpix_parent`,
/// `healpix_children_first` / `_last`): the arguments are checked as by
/// [`check_hierarchy`] (`to_order` on the `direction` side), then the value is
/// `step(cell, 2 * |from_order - to_order|)`. NULL in any argument gives NULL.
///
/// A column of cells with constant orders, the shape of the main job's GROUP BY key
/// `healpix_parent(healpix_cell(lat, lon, 18), 18, 12)`, has its own path: the orders are
/// checked once, the cells in one pass, and `step` is one map over the column.
pub(crate) fn cell_orders_udf(
    name: &'static str,
    direction: Direction,
    step: impl Fn(u64, u32) -> u64 + Copy + Send + Sync + 'static,
    documentation: fn() -> Documentation,
) -> ScalarUDF {
    let signature = Signature::coercible(vec![uint64(), int64(), int64()], Volatility::Immutable);
    let definition = Definition::new(name, signature, DataType::UInt64, documentation);
    ScalarFunction::udf(definition, move |args, rows| {
        invoke_cell_orders(name, args, rows, direction, step)
    })
}

fn invoke_cell_orders(
    function: &'static str,
    args: &[ColumnarValue],
    n: usize,
    direction: Direction,
    step: impl Fn(u64, u32) -> u64,
) -> Result<ColumnarValue> {
    let [cell, from, to] = args else {
        return internal_err!("{function}: the signature fixes the number of arguments");
    };
    if let (ColumnarValue::Array(_), ColumnarValue::Scalar(_), ColumnarValue::Scalar(_)) =
        (cell, from, to)
    {
        let (Arg::Array(cells), Arg::Scalar(from_order), Arg::Scalar(to_order)) = (
            Arg::<UInt64Type>::new(cell)?,
            Arg::<Int64Type>::new(from)?,
            Arg::<Int64Type>::new(to)?,
        ) else {
            unreachable!("arrays stay arrays and scalars scalars")
        };
        let (Some(from_order), Some(to_order)) = (from_order, to_order) else {
            return all_null::<UInt64Type>(n, false);
        };
        // Bad orders go on to the row loop below, which reports them on the first
        // non-NULL cell as it always has (and gives NULLs, no error, for a column of
        // NULLs); good ones are checked here once.
        if let Ok((from_order, to_order)) = check_orders(function, from_order, to_order)
            && check_direction(function, from_order, to_order, direction).is_ok()
        {
            let out = map_cells(function, cells, from_order, to_order, step)?;
            return Ok(ColumnarValue::Array(Arc::new(out)));
        }
    }
    map3::<UInt64Type, Int64Type, Int64Type, UInt64Type>(cell, from, to, n, |c, f, t| {
        Ok(step(c, check_hierarchy(function, c, f, t, direction)?))
    })
}

/// `step(cell, 2 * |from - to|)` over a column of cells at the checked order `from`, after
/// checking that every non-NULL cell exists at `from`. A bad cell gives the error the row
/// loop gives: the first in row order, the same text.
fn map_cells(
    function: &'static str,
    cells: &UInt64Array,
    from: u8,
    to: u8,
    step: impl Fn(u64, u32) -> u64,
) -> Result<UInt64Array, UdfError> {
    let limit = n_cells(from);
    // One branch-free pass over every value (it vectorises). The values under NULLs are
    // undefined, so only when one is too large are the non-NULL ones searched.
    let max = cells.values().iter().fold(0, |m, &c| m.max(c));
    if max >= limit
        && let Some(bad) = cells.iter().flatten().find(|&c| c >= limit)
    {
        return Err(cell_out_of_range(function, "cell", bad, from));
    }
    let shift = order_shift(from, to);
    Ok(cells.unary::<_, UInt64Type>(|c| step(c, shift)))
}

/// Registers the HEALPix scalar functions on `ctx`.
pub fn register(ctx: &SessionContext) {
    for udf in udfs() {
        ctx.register_udf(udf);
    }
}

/// The HEALPix scalar functions.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        healpix_cell::udf(),
        healpix_parent::udf(),
        healpix_children_first::udf(),
        healpix_children_last::udf(),
        healpix_center_lat::udf(),
        healpix_center_lon::udf(),
    ]
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, AsArray, Int64Array};
    use datafusion::common::ScalarValue;
    use datafusion::error::DataFusionError;

    use super::*;

    #[test]
    fn mode_parsing() {
        assert_eq!(
            "sphere".parse::<LatitudeMode>().unwrap(),
            LatitudeMode::Sphere
        );
        assert_eq!(
            "AUTHALIC".parse::<LatitudeMode>().unwrap(),
            LatitudeMode::Authalic
        );
        assert_eq!(LatitudeMode::default(), LatitudeMode::Sphere);
        let e = "wgs84".parse::<LatitudeMode>().unwrap_err().to_string();
        assert!(e.contains("'wgs84'") && e.contains("'authalic'"), "{e}");
    }

    #[test]
    fn hierarchy() {
        let c = cell(-77.5, 166.7, 12, LatitudeMode::Sphere).unwrap();
        for k in 0..=12 {
            assert_eq!(
                parent(c, 12, k).unwrap(),
                cell(-77.5, 166.7, k, LatitudeMode::Sphere).unwrap()
            );
        }
        let (first, last) = children_range(parent(c, 12, 6).unwrap(), 6, 12).unwrap();
        assert!(first <= c && c <= last);
        assert_eq!(last - first + 1, 4_u64.pow(6));
        assert_eq!(children_range(5, 0, 0).unwrap(), (5, 5));
        assert_eq!(
            children_range(11, 0, 29).unwrap(),
            (11 << 58, (12 << 58) - 1)
        );
    }

    #[test]
    fn errors_name_function_argument_and_value() {
        let e = cell(90.5, 0.0, 3, LatitudeMode::Sphere)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("healpix_cell") && e.contains("lat") && e.contains("90.5"),
            "{e}"
        );
        let e = cell(0.0, f64::INFINITY, 3, LatitudeMode::Sphere)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("healpix_cell") && e.contains("lon") && e.contains("inf"),
            "{e}"
        );
        let e = cell(f64::NAN, 0.0, 3, LatitudeMode::Sphere)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lat = NaN"), "{e}");
        let e = cell(0.0, 0.0, 30, LatitudeMode::Sphere)
            .unwrap_err()
            .to_string();
        assert!(e.contains("order = 30") && e.contains("0..=29"), "{e}");
        let e = parent(48, 1, 0).unwrap_err().to_string();
        assert!(
            e.contains("healpix_parent") && e.contains("cell = 48"),
            "{e}"
        );
        let e = parent(4, 1, 2).unwrap_err().to_string();
        assert!(e.contains("to_order = 2"), "{e}");
        let e = children_range(4, 2, 1).unwrap_err().to_string();
        assert!(e.contains("to_order = 1"), "{e}");
        let e = center(12, 0).unwrap_err().to_string();
        assert!(e.contains("cell = 12") && e.contains("order 0"), "{e}");
        let mut out = vec![];
        let e = cells_into(
            &[0.0, -91.0],
            &[0.0, 0.0],
            4,
            LatitudeMode::Sphere,
            &mut out,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("lat = -91"), "{e}");
        assert!(out.is_empty());
    }

    #[test]
    fn authalic_mode_moves_mid_latitude_points_poleward_cells_only_slightly() {
        // At 45 degrees the authalic latitude is 0.128 degrees smaller: a different cell
        // at order 12 (about 0.014 degrees per cell), the same at order 4.
        let s = cell(45.2, 10.0, 12, LatitudeMode::Sphere).unwrap();
        let a = cell(45.2, 10.0, 12, LatitudeMode::Authalic).unwrap();
        assert_ne!(s, a);
        assert_eq!(
            a,
            cell(authalic_latitude(45.2), 10.0, 12, LatitudeMode::Sphere).unwrap()
        );
        assert_eq!(parent(s, 12, 4).unwrap(), parent(a, 12, 4).unwrap());
        // Poles and equator do not move.
        for lat in [90.0, -90.0, 0.0] {
            assert_eq!(
                cell(lat, 33.0, 29, LatitudeMode::Sphere).unwrap(),
                cell(lat, 33.0, 29, LatitudeMode::Authalic).unwrap()
            );
        }
        // Centres round-trip in authalic mode.
        let (clat, clon) = center_with_mode(a, 12, LatitudeMode::Authalic).unwrap();
        assert_eq!(cell(clat, clon, 12, LatitudeMode::Authalic).unwrap(), a);
    }

    /// Runs a hierarchy function over a column of cells with the orders given as constants
    /// (the column path) or as columns (the row loop).
    fn cell_orders(
        function: &'static str,
        direction: Direction,
        step: fn(u64, u32) -> u64,
        cells: &UInt64Array,
        (from, to): (Option<i64>, Option<i64>),
        constant: bool,
    ) -> Result<ArrayRef> {
        let n = cells.len();
        let order = |o: Option<i64>| {
            if constant {
                ColumnarValue::Scalar(ScalarValue::Int64(o))
            } else {
                ColumnarValue::Array(Arc::new(Int64Array::from(vec![o; n])))
            }
        };
        let cells = ColumnarValue::Array(Arc::new(cells.clone()));
        invoke_cell_orders(
            function,
            &[cells, order(from), order(to)],
            n,
            direction,
            step,
        )?
        .into_array(n)
    }

    #[test]
    fn constant_orders_give_what_the_row_loop_gives() {
        // u64::MAX under the NULL: the values under NULLs are undefined and must neither
        // fail the cell check nor overflow in the arithmetic.
        let cells = |values: Vec<u64>| {
            let valid = values.iter().map(|&c| c != u64::MAX).collect::<Vec<_>>();
            UInt64Array::new(values.into(), Some(NullBuffer::from(valid)))
        };
        type Case = (&'static str, Direction, fn(u64, u32) -> u64);
        let functions: [Case; 3] = [
            (PARENT, Direction::Coarser, ancestor),
            (CHILDREN_FIRST, Direction::Finer, first_descendant),
            (CHILDREN_LAST, Direction::Finer, last_descendant),
        ];
        let orders = [
            (1, 0),
            (1, 1),
            (1, 3),
            (0, 29),
            (29, 0),
            (3, 1),
            (1, 30),
            (-1, 0),
        ];
        let columns = [
            vec![5, u64::MAX, 47, 0],
            vec![u64::MAX, 48, 5],
            vec![5, 48, u64::MAX, 49],
            vec![u64::MAX, u64::MAX],
            vec![],
        ];
        for (function, direction, step) in functions {
            for (from, to) in orders {
                for column in &columns {
                    let cells = cells(column.clone());
                    let run = |constant| {
                        cell_orders(
                            function,
                            direction,
                            step,
                            &cells,
                            (Some(from), Some(to)),
                            constant,
                        )
                        .map(|a| a.as_primitive::<UInt64Type>().clone())
                        .map_err(|e| e.to_string())
                    };
                    let (fast, rows) = (run(true), run(false));
                    assert_eq!(fast, rows, "{function}({column:?}, {from}, {to})");
                }
            }
            // A NULL order gives a column of NULLs.
            let c = cells(vec![5, 7]);
            for orders in [(None, Some(0)), (Some(1), None)] {
                let a = cell_orders(function, direction, step, &c, orders, true).unwrap();
                assert_eq!((a.len(), a.null_count()), (2, 2));
            }
        }
        // The values, and the error text, spelled out once.
        let c = cells(vec![5, u64::MAX, 47, 0]);
        let a = cell_orders(
            PARENT,
            Direction::Coarser,
            ancestor,
            &c,
            (Some(1), Some(0)),
            true,
        )
        .unwrap();
        assert_eq!(
            a.as_primitive::<UInt64Type>(),
            &UInt64Array::from(vec![Some(1), None, Some(11), Some(0)])
        );
        let e = cell_orders(
            PARENT,
            Direction::Coarser,
            ancestor,
            &cells(vec![5, u64::MAX, 48, 49]),
            (Some(1), Some(0)),
            true,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "Execution error: healpix_parent: argument cell = 48 is not a cell at order 1, expected 0..48"
        );
        assert_eq!(
            e,
            DataFusionError::from(parent(48, 1, 0).unwrap_err()).to_string()
        );
    }
}
