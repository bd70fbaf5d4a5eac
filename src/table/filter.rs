//! Which `WHERE` predicates the granule table applies itself while reading.
//!
//! Two kinds are recognised and reported to DataFusion as *exact* pushdowns, so the plan
//! does not filter the rows again:
//!
//! - equality on a column (`atl06_quality_summary = 0`): rows are dropped while reading;
//! - a parent-cell predicate, in any spelling the docs give:
//!   `healpix_parent(cell18, 18, P) = X` (the table's per-point cell column),
//!   `healpix_parent(healpix_cell(latitude, longitude, K[, mode]), K, P) = X` or
//!   `morton_parent(morton(latitude, longitude, K[, mode]), P) = M`.
//!   The scan then reads latitude/longitude first, keeps the rows inside the cell, and
//!   reads the other datasets only for the chunks covering those rows, as the reference
//!   does; granules whose catalog entry does not list the cell are not opened at all.
//!
//! Casts that type coercion wraps around either side are looked through.

use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;
use magg_udfs::healpix::LatitudeMode;

/// Rows inside one parent cell, with cells computed as the reference does: hash each point
/// at `hash_order` and truncate to `parent_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellFilter {
    /// Order at which points are hashed (18, like the reference's morton indices).
    pub hash_order: u8,
    /// Order of the parent cell.
    pub parent_order: u8,
    /// Nested id of the parent cell at `parent_order`.
    pub parent: u64,
    /// Latitude convention.
    pub mode: LatitudeMode,
}

impl CellFilter {
    /// The filter for a parent given as a decimal morton index, hashing at order 18.
    pub fn from_morton(morton: i64, mode: LatitudeMode) -> Result<Self, magg_udfs::UdfError> {
        let (parent, parent_order) = magg_udfs::morton::to_nested(morton)?;
        Ok(Self { hash_order: 18, parent_order, parent, mode })
    }

    /// The parent as a decimal morton index.
    pub fn morton(&self) -> Result<i64, magg_udfs::UdfError> {
        magg_udfs::morton::from_nested(self.parent, self.parent_order)
    }
}

/// A predicate the scan applies itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed {
    /// `column = value` on an integer column.
    Equals {
        /// The column.
        column: String,
        /// The value.
        value: i64,
    },
    /// Rows inside a parent cell.
    Cell(CellFilter),
}

fn strip_casts(mut e: &Expr) -> &Expr {
    loop {
        match e {
            Expr::Cast(c) => e = &c.expr,
            Expr::TryCast(c) => e = &c.expr,
            Expr::Alias(a) => e = &a.expr,
            _ => return e,
        }
    }
}

fn int_literal(e: &Expr) -> Option<i128> {
    match strip_casts(e) {
        Expr::Literal(v, _) => scalar_to_i128(v),
        _ => None,
    }
}

fn scalar_to_i128(v: &ScalarValue) -> Option<i128> {
    Some(match v {
        ScalarValue::Int8(Some(x)) => i128::from(*x),
        ScalarValue::Int16(Some(x)) => i128::from(*x),
        ScalarValue::Int32(Some(x)) => i128::from(*x),
        ScalarValue::Int64(Some(x)) => i128::from(*x),
        ScalarValue::UInt8(Some(x)) => i128::from(*x),
        ScalarValue::UInt16(Some(x)) => i128::from(*x),
        ScalarValue::UInt32(Some(x)) => i128::from(*x),
        ScalarValue::UInt64(Some(x)) => i128::from(*x),
        ScalarValue::Float64(Some(x)) if x.fract() == 0.0 && x.abs() < 9.0e15 => *x as i128,
        _ => return None,
    })
}

fn str_literal(e: &Expr) -> Option<&str> {
    match strip_casts(e) {
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)), _) => Some(s),
        _ => None,
    }
}

fn column_name(e: &Expr) -> Option<&str> {
    match strip_casts(e) {
        Expr::Column(c) => Some(&c.name),
        _ => None,
    }
}

fn call<'a>(e: &'a Expr, name: &str) -> Option<&'a [Expr]> {
    match strip_casts(e) {
        Expr::ScalarFunction(f) if f.func.name() == name => Some(&f.args),
        _ => None,
    }
}

fn order(v: i128, max: u8) -> Option<u8> {
    u8::try_from(v).ok().filter(|o| *o <= max)
}

/// `healpix_cell(latitude, longitude, K[, mode])` or `morton(...)`: (K, mode).
fn point_hash(e: &Expr, function: &str, lat: &str, lon: &str) -> Option<(u8, LatitudeMode)> {
    let args = call(e, function)?;
    if !(3..=4).contains(&args.len()) {
        return None;
    }
    if column_name(&args[0])? != lat || column_name(&args[1])? != lon {
        return None;
    }
    let k = order(int_literal(&args[2])?, if function == "morton" { 18 } else { 29 })?;
    let mode = match args.get(3) {
        None => LatitudeMode::Sphere,
        Some(m) => str_literal(m)?.parse().ok()?,
    };
    Some((k, mode))
}

/// The table's per-point cell column: its name and latitude mode (order 18).
pub type PointCell<'a> = Option<(&'a str, LatitudeMode)>;

fn cell_predicate(side: &Expr, value: i128, lat: &str, lon: &str, point_cell: PointCell<'_>) -> Option<CellFilter> {
    if let Some(args) = call(side, "healpix_parent") {
        if args.len() != 3 {
            return None;
        }
        let (k, mode) = match (point_cell, column_name(&args[0])) {
            (Some((name, mode)), Some(c)) if c == name => (super::POINT_CELL_ORDER, mode),
            _ => point_hash(&args[0], "healpix_cell", lat, lon)?,
        };
        let from = order(int_literal(&args[1])?, 29)?;
        let to = order(int_literal(&args[2])?, 29)?;
        if from != k || to > k {
            return None;
        }
        let parent = u64::try_from(value).ok()?;
        if parent >= 12u64 << (2 * u32::from(to)) {
            return None;
        }
        return Some(CellFilter { hash_order: k, parent_order: to, parent, mode });
    }
    if let Some(args) = call(side, "morton_parent") {
        if args.len() != 2 {
            return None;
        }
        let (k, mode) = point_hash(&args[0], "morton", lat, lon)?;
        let to = order(int_literal(&args[1])?, 18)?;
        if to > k {
            return None;
        }
        let (parent, parent_order) = magg_udfs::morton::to_nested(i64::try_from(value).ok()?).ok()?;
        if parent_order != to {
            return None;
        }
        return Some(CellFilter { hash_order: k, parent_order: to, parent, mode });
    }
    None
}

/// Recognise one filter. `int_columns` are the integer data columns equality may target.
/// `point_cell` names the table's per-point cell column, which `healpix_parent` may take
/// in place of `healpix_cell(latitude, longitude, 18[, mode])`.
pub fn recognise(expr: &Expr, lat: &str, lon: &str, int_columns: &[String], point_cell: PointCell<'_>) -> Option<Pushed> {
    let Expr::BinaryExpr(BinaryExpr { left, op: Operator::Eq, right }) = expr else {
        return None;
    };
    for (a, b) in [(left, right), (right, left)] {
        let Some(value) = int_literal(b) else { continue };
        if let Some(col) = column_name(a)
            && int_columns.iter().any(|c| c == col)
        {
            let value = i64::try_from(value).ok()?;
            return Some(Pushed::Equals { column: col.to_owned(), value });
        }
        if let Some(cell) = cell_predicate(a, value, lat, lon, point_cell) {
            return Some(Pushed::Cell(cell));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::FunctionRegistry;
    use datafusion::prelude::*;

    fn ctx() -> SessionContext {
        let ctx = SessionContext::new();
        magg_udfs::register_all(&ctx);
        ctx
    }

    fn udf(ctx: &SessionContext, name: &str, args: Vec<Expr>) -> Expr {
        ctx.udf(name).unwrap().call(args)
    }

    fn ints() -> Vec<String> {
        vec!["atl06_quality_summary".into()]
    }

    #[test]
    fn quality_equality() {
        let e = col("atl06_quality_summary").eq(lit(0i64));
        assert_eq!(
            recognise(&e, "latitude", "longitude", &ints(), None),
            Some(Pushed::Equals { column: "atl06_quality_summary".into(), value: 0 })
        );
        // Reversed, and through a cast.
        let e = lit(0i32).eq(cast(col("atl06_quality_summary"), arrow::datatypes::DataType::Int64));
        assert!(matches!(recognise(&e, "latitude", "longitude", &ints(), None), Some(Pushed::Equals { value: 0, .. })));
        // Not an integer column the table knows.
        assert_eq!(recognise(&col("h_li").eq(lit(0i64)), "latitude", "longitude", &ints(), None), None);
        // Not equality.
        assert_eq!(recognise(&col("atl06_quality_summary").lt(lit(1i64)), "latitude", "longitude", &ints(), None), None);
    }

    #[test]
    fn healpix_parent_predicate() {
        let c = ctx();
        let hash = udf(&c, "healpix_cell", vec![col("latitude"), col("longitude"), lit(29i64)]);
        let parent = udf(&c, "healpix_parent", vec![hash, lit(29i64), lit(6i64)]);
        let e = parent.eq(lit(40_000i64));
        assert_eq!(
            recognise(&e, "latitude", "longitude", &ints(), None),
            Some(Pushed::Cell(CellFilter { hash_order: 29, parent_order: 6, parent: 40_000, mode: LatitudeMode::Sphere }))
        );
        // A parent id beyond the order's range is not a cell.
        let hash = udf(&c, "healpix_cell", vec![col("latitude"), col("longitude"), lit(18i64)]);
        let parent = udf(&c, "healpix_parent", vec![hash, lit(18i64), lit(1i64)]);
        assert_eq!(recognise(&parent.eq(lit(48i64)), "latitude", "longitude", &ints(), None), None);
        // The table's per-point cell column stands for the order-18 hash, in its mode.
        let point = Some(("cell18", LatitudeMode::Authalic));
        let parent = udf(&c, "healpix_parent", vec![col("cell18"), lit(18i64), lit(6i64)]);
        assert_eq!(
            recognise(&parent.clone().eq(lit(40_000i64)), "latitude", "longitude", &ints(), point),
            Some(Pushed::Cell(CellFilter { hash_order: 18, parent_order: 6, parent: 40_000, mode: LatitudeMode::Authalic }))
        );
        // Not without the column, nor with the column's order misstated.
        assert_eq!(recognise(&parent.eq(lit(40_000i64)), "latitude", "longitude", &ints(), None), None);
        let parent = udf(&c, "healpix_parent", vec![col("cell18"), lit(20i64), lit(6i64)]);
        assert_eq!(recognise(&parent.eq(lit(40_000i64)), "latitude", "longitude", &ints(), point), None);
    }

    #[test]
    fn morton_parent_predicate_with_mode() {
        let c = ctx();
        let m = udf(&c, "morton", vec![col("latitude"), col("longitude"), lit(18i64), lit("authalic")]);
        let parent = udf(&c, "morton_parent", vec![m, lit(6i64)]);
        let got = recognise(&parent.eq(lit(-4_211_322i64)), "latitude", "longitude", &ints(), None);
        let (nested, order) = magg_udfs::morton::to_nested(-4_211_322).unwrap();
        assert_eq!(order, 6);
        assert_eq!(
            got,
            Some(Pushed::Cell(CellFilter { hash_order: 18, parent_order: 6, parent: nested, mode: LatitudeMode::Authalic }))
        );
        // Wrong columns are not the coordinates.
        let m = udf(&c, "morton", vec![col("longitude"), col("latitude"), lit(18i64)]);
        let parent = udf(&c, "morton_parent", vec![m, lit(6i64)]);
        assert_eq!(recognise(&parent.eq(lit(-4_211_322i64)), "latitude", "longitude", &ints(), None), None);
    }
}
