//! Decimal morton indices, the reference's cell keys (REFERENCE.md section 2).
//!
//! # Form
//!
//! A morton index is a signed 64-bit decimal number naming one HEALPix NESTED cell at
//! order `k` in `1..=18`:
//!
//! - after the leading digit come `k` digits in `1..=4`, coarsest order first; each is the
//!   2-bit sub-cell index at that order plus one;
//! - the leading digit and the sign name the base cell `b`: `b` in `0..=5` is positive
//!   with leading digit `b + 1`, `b` in `6..=11` is negative with leading digit `b - 5`.
//!
//! So `-4211322` is order 6 in base cell 9, nested id `9 * 4^6 + 0b01_00_00_10_01_01`
//! = 37925. The parent at order `j` of an index at order `k` is
//! `sign(m) * (|m| / 10^(k-j))`, and the children of a parent, in ascending order, are
//! its digits followed by `11..1` to `44..4`, which is also ascending nested id.
//!
//! Order 18 is the finest that fits 64 bits (19 decimal digits). The values are mortie
//! 0.6's (`geo2mort`, `mort2healpix`), except that the cell of a point is healpy's (see
//! [`crate::healpix`]): mortie 0.6 uses the `healpix` 0.3 crate, which puts points lying
//! exactly on a cell boundary, and about 3.5 in a million random points at order 18, in a
//! neighbouring cell.
//!
//! # Errors
//!
//! Zero, a digit `0` or `5..=9` after the leading digit, a leading digit above 6, or a
//! single digit (order 0) are malformed and give an error naming the function, argument
//! and value.

use datafusion::logical_expr::ScalarUDF;
use datafusion::prelude::SessionContext;

use crate::UdfError;
use crate::error::check_order;
use crate::healpix::{Hashing, LatitudeMode, check_cell};

mod cell_to_morton;
#[allow(clippy::module_inception)]
mod morton;
mod morton_order;
mod morton_parent;
mod morton_to_cell;

/// Coarsest order a morton index can have.
pub const MIN_ORDER: u8 = 1;
/// Finest order a morton index can have (19 decimal digits).
pub const MAX_ORDER: u8 = 18;

pub(crate) const MORTON: &str = "morton";
pub(crate) const PARENT: &str = "morton_parent";
pub(crate) const ORDER: &str = "morton_order";
pub(crate) const TO_CELL: &str = "morton_to_cell";
pub(crate) const FROM_CELL: &str = "cell_to_morton";

const POW10: [u64; 20] = {
    let mut p = [1_u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

const fn digit_at(byte: usize, shift: usize) -> u16 {
    ((byte >> shift) & 3) as u16 + 1
}

/// Four 2-bit sub-cell indices (one byte, most significant first) as four decimal digits.
const ENCODE4: [u16; 256] = {
    let mut t = [0_u16; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = digit_at(b, 6) * 1000 + digit_at(b, 4) * 100 + digit_at(b, 2) * 10 + digit_at(b, 0);
        b += 1;
    }
    t
};

/// Inverse of [`ENCODE4`]: a four-digit group to its byte, or -1 if a digit is not 1-4.
static DECODE4: [i16; 10_000] = {
    let mut t = [-1_i16; 10_000];
    let mut b = 0;
    while b < 256 {
        t[ENCODE4[b] as usize] = b as i16;
        b += 1;
    }
    t
};

/// The order-`order` digits (each 1-4) of the sub-cell index `sub`.
#[inline(always)]
fn encode_digits(sub: u64, order: u32) -> u64 {
    let head = order % 4;
    let mut d = 0_u64;
    let mut i = order;
    while i > order - head {
        i -= 1;
        d = d * 10 + ((sub >> (2 * i)) & 3) + 1;
    }
    while i > 0 {
        i -= 4;
        d = d * 10_000 + u64::from(ENCODE4[((sub >> (2 * i)) & 0xFF) as usize]);
    }
    d
}

/// Morton of a nested id that is known to be valid at `order` (1..=18).
#[inline(always)]
pub(crate) fn encode(cell: u64, order: u8) -> i64 {
    let order = u32::from(order);
    let base = cell >> (2 * order);
    let sub = cell & ((1_u64 << (2 * order)) - 1);
    let digits = encode_digits(sub, order);
    let scale = POW10[order as usize];
    // |m| < 7 * 10^18 < i64::MAX.
    if base < 6 {
        ((base + 1) * scale + digits) as i64
    } else {
        -(((base - 5) * scale + digits) as i64)
    }
}

fn malformed(function: &'static str, argument: &'static str, m: i64, reason: String) -> UdfError {
    UdfError::MalformedMorton {
        function,
        argument,
        value: m,
        reason,
    }
}

/// Decodes a morton into (nested id, order), or says what is wrong with it.
#[inline]
pub(crate) fn decode(
    function: &'static str,
    argument: &'static str,
    m: i64,
) -> Result<(u64, u8), UdfError> {
    let a = m.unsigned_abs();
    if a == 0 {
        return Err(malformed(
            function,
            argument,
            m,
            "zero names no cell".to_string(),
        ));
    }
    // Number of decimal digits, 1..=19.
    let n_digits = POW10.partition_point(|&p| p <= a);
    let order = n_digits - 1;
    if order == 0 {
        return Err(malformed(
            function,
            argument,
            m,
            format!(
                "it has no digit after the base-cell digit (order 0); orders are {MIN_ORDER}..={MAX_ORDER}"
            ),
        ));
    }
    let lead = a / POW10[order];
    if lead > 6 {
        return Err(malformed(
            function,
            argument,
            m,
            format!("leading digit {lead} is not in 1..=6"),
        ));
    }
    let base = if m > 0 { lead - 1 } else { lead + 5 };
    let mut rest = a % POW10[order];
    let mut sub = 0_u64;
    let mut shift = 0;
    for _ in 0..order / 4 {
        let group = DECODE4[(rest % 10_000) as usize];
        if group < 0 {
            return Err(bad_digit(function, argument, m, order));
        }
        sub |= (group as u64) << shift;
        shift += 8;
        rest /= 10_000;
    }
    for _ in 0..order % 4 {
        let digit = rest % 10;
        if !(1..=4).contains(&digit) {
            return Err(bad_digit(function, argument, m, order));
        }
        sub |= (digit - 1) << shift;
        shift += 2;
        rest /= 10;
    }
    Ok(((base << (2 * order)) | sub, order as u8))
}

#[cold]
fn bad_digit(function: &'static str, argument: &'static str, m: i64, order: usize) -> UdfError {
    let text = m.unsigned_abs().to_string();
    let (position, digit) = text
        .chars()
        .enumerate()
        .skip(1)
        .find(|(_, c)| !('1'..='4').contains(c))
        .expect("a bad digit was found");
    malformed(
        function,
        argument,
        m,
        format!(
            "digit {digit} at position {} (order {position} of {order}) is not in 1..=4",
            position + 1
        ),
    )
}

pub(crate) fn order_in(function: &'static str, m: i64) -> Result<u8, UdfError> {
    decode(function, "m", m).map(|(_, order)| order)
}

/// The order (1-18) of a morton index, after checking it is well formed.
pub fn order_of(m: i64) -> Result<u8, UdfError> {
    order_in(ORDER, m)
}

/// The nested id and order of a morton index.
///
/// ```
/// assert_eq!(magg_udfs::morton::to_nested(-4211322).unwrap(), (37925, 6));
/// ```
pub fn to_nested(m: i64) -> Result<(u64, u8), UdfError> {
    decode(TO_CELL, "m", m)
}

pub(crate) fn from_nested_in(
    function: &'static str,
    cell: u64,
    order: i64,
) -> Result<i64, UdfError> {
    let order = check_order(function, "order", order, MIN_ORDER, MAX_ORDER)?;
    check_cell(function, "cell", cell, order)?;
    Ok(encode(cell, order))
}

/// The morton index of nested id `cell` at `order` (1-18).
///
/// ```
/// assert_eq!(magg_udfs::morton::from_nested(37925, 6).unwrap(), -4211322);
/// ```
pub fn from_nested(cell: u64, order: u8) -> Result<i64, UdfError> {
    from_nested_in(FROM_CELL, cell, order.into())
}

pub(crate) fn parent_in(function: &'static str, m: i64, order: i64) -> Result<i64, UdfError> {
    let (_, own) = decode(function, "m", m)?;
    let order = check_order(function, "order", order, MIN_ORDER, MAX_ORDER)?;
    if order > own {
        return Err(UdfError::InvalidArgument {
            function,
            argument: "order",
            value: order.to_string(),
            expected: format!("an order no finer than that of m = {m} ({own})"),
        });
    }
    let a = m.unsigned_abs() / POW10[usize::from(own - order)];
    // a <= |m|, so it fits; the sign is the base cell's and stays.
    Ok(if m < 0 { -(a as i64) } else { a as i64 })
}

/// The ancestor at `order` of a morton index: `sign(m) * (|m| / 10^(own order - order))`.
///
/// ```
/// assert_eq!(magg_udfs::morton::parent(-4211322, 3).unwrap(), -4211);
/// ```
pub fn parent(m: i64, order: u8) -> Result<i64, UdfError> {
    parent_in(PARENT, m, order.into())
}

/// The orders a morton index can have.
const ORDERS: (u8, u8) = (MIN_ORDER, MAX_ORDER);

/// The morton index at `order` (1-18) of the point (`lat`, `lon`) in degrees.
pub fn from_lat_lon(lat: f64, lon: f64, order: u8, mode: LatitudeMode) -> Result<i64, UdfError> {
    let hashing = Hashing::new(MORTON, order.into(), ORDERS, mode)?;
    Ok(encode(hashing.cell(lat, lon)?, hashing.order))
}

/// Appends the morton index of every point to `out`; on an error `out` is left as it was.
pub(crate) fn mortons(
    hashing: Hashing,
    lat: &[f64],
    lon: &[f64],
    out: &mut Vec<i64>,
) -> Result<(), UdfError> {
    // Hash a block at a time into a small buffer, then encode: two tight loops.
    const BLOCK: usize = 1024;
    hashing.check_lengths(lat, lon)?;
    let mut cells = Vec::with_capacity(BLOCK.min(lat.len()));
    let start = out.len();
    out.reserve(lat.len());
    for (la, lo) in lat.chunks(BLOCK).zip(lon.chunks(BLOCK)) {
        cells.clear();
        if let Err(e) = hashing.cells(la, lo, &mut cells) {
            out.truncate(start);
            return Err(e);
        }
        out.extend(cells.iter().map(|&c| encode(c, hashing.order)));
    }
    Ok(())
}

/// Vectorised [`from_lat_lon`]: appends the morton index of every point to `out`. Fails
/// (leaving `out` as it was) on the first bad point or a length mismatch.
pub fn from_lat_lon_into(
    lat: &[f64],
    lon: &[f64],
    order: u8,
    mode: LatitudeMode,
    out: &mut Vec<i64>,
) -> Result<(), UdfError> {
    mortons(
        Hashing::new(MORTON, order.into(), ORDERS, mode)?,
        lat,
        lon,
        out,
    )
}

/// Decodes morton indices one at a time into nested ids, requiring one order for all of
/// them: the first fixes it, a later one of another order is a
/// [`UdfError::MixedOrders`] naming both (as `morton_to_cell`).
#[derive(Debug, Default)]
pub(crate) struct OneOrder {
    /// The first index and its order.
    first: Option<(i64, u8)>,
}

impl OneOrder {
    pub(crate) fn decode(&mut self, m: i64) -> Result<u64, UdfError> {
        let (cell, order) = decode(TO_CELL, "m", m)?;
        match self.first {
            None => self.first = Some((m, order)),
            Some((first, first_order)) if first_order != order => {
                return Err(UdfError::MixedOrders {
                    function: TO_CELL,
                    argument: "m",
                    first,
                    first_order,
                    value: m,
                    order,
                });
            }
            Some(_) => {}
        }
        Ok(cell)
    }

    /// The shared order, `None` before the first index.
    pub(crate) fn order(&self) -> Option<u8> {
        self.first.map(|(_, order)| order)
    }
}

/// Decodes morton indices that must all share one order; appends their nested ids to
/// `out` and returns the order (`None` for an empty slice).
pub fn to_nested_into(ms: &[i64], out: &mut Vec<u64>) -> Result<Option<u8>, UdfError> {
    let mut one_order = OneOrder::default();
    out.reserve(ms.len());
    for &m in ms {
        out.push(one_order.decode(m)?);
    }
    Ok(one_order.order())
}

/// Registers the morton scalar functions on `ctx`.
pub fn register(ctx: &SessionContext) {
    for udf in udfs() {
        ctx.register_udf(udf);
    }
}

/// The morton scalar functions.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        morton::udf(),
        morton_parent::udf(),
        morton_order::udf(),
        morton_to_cell::udf(),
        cell_to_morton::udf(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healpix;

    /// REFERENCE.md's digit rule, one digit at a time.
    fn encode_slow(cell: u64, order: u8) -> i64 {
        let base = cell >> (2 * order);
        let mut d: i64 = 0;
        for level in 0..order {
            d = d * 10 + ((cell >> (2 * (order - 1 - level))) & 3) as i64 + 1;
        }
        let scale = 10_i64.pow(order.into());
        if base < 6 {
            (base as i64 + 1) * scale + d
        } else {
            -((base as i64 - 5) * scale + d)
        }
    }

    #[test]
    fn reference_example() {
        assert_eq!(to_nested(-4211322).unwrap(), (37925, 6));
        assert_eq!(37925 >> 12, 9);
        assert_eq!(order_of(-4211322).unwrap(), 6);
    }

    #[test]
    fn extremes() {
        // First and last cell of every base cell at orders 1 and 18.
        for order in [1_u8, 2, 3, 4, 5, 17, 18] {
            let per_base = 1_u64 << (2 * order);
            for b in 0..12 {
                for cell in [
                    b * per_base,
                    (b + 1) * per_base - 1,
                    b * per_base + (0x1B & (per_base - 1)),
                ] {
                    let m = from_nested(cell, order).unwrap();
                    assert_eq!(m, encode_slow(cell, order), "cell {cell} order {order}");
                    assert_eq!(to_nested(m).unwrap(), (cell, order));
                }
            }
        }
        assert_eq!(from_nested(0, 18).unwrap(), 1_111_111_111_111_111_111);
        assert_eq!(
            from_nested(12 * 4_u64.pow(18) - 1, 18).unwrap(),
            -6_444_444_444_444_444_444
        );
        assert_eq!(from_nested(6 * 4, 1).unwrap(), -11);
    }

    #[test]
    fn children_are_digit_suffixes_in_ascending_order() {
        let p = -4211_i64;
        let (cell, order) = to_nested(p).unwrap();
        let (first, last) = healpix::children_range(cell, order, order + 2).unwrap();
        let kids: Vec<i64> = (first..=last)
            .map(|c| from_nested(c, order + 2).unwrap())
            .collect();
        assert_eq!(kids.len(), 16);
        assert_eq!(kids[0], -421_111);
        assert_eq!(kids[15], -421_144);
        for k in &kids {
            assert_eq!(parent(*k, order).unwrap(), p);
        }
    }

    #[test]
    fn malformed_values_name_the_problem() {
        let cases: [(i64, &str); 9] = [
            (0, "zero"),
            (4, "order 0"),
            (-6, "order 0"),
            (7_111, "leading digit 7"),
            (-42_113_022, "digit 0 at position 6"),
            (1_511, "digit 5 at position 2"),
            (1_111_111_111_111_111_119, "digit 9 at position 19"),
            (i64::MAX, "leading digit 9"),
            (i64::MIN, "leading digit 9"),
        ];
        for (m, want) in cases {
            let e = to_nested(m).unwrap_err().to_string();
            assert!(
                e.contains("morton_to_cell")
                    && e.contains("argument m")
                    && e.contains(&m.to_string()),
                "{e}"
            );
            assert!(e.contains(want), "{m}: {e}");
        }
        let e = parent(-4211322, 7).unwrap_err().to_string();
        assert!(
            e.contains("morton_parent") && e.contains("order = 7") && e.contains("-4211322"),
            "{e}"
        );
        let e = from_nested(37925, 19).unwrap_err().to_string();
        assert!(
            e.contains("cell_to_morton") && e.contains("order = 19") && e.contains("1..=18"),
            "{e}"
        );
        let e = from_nested(12 * 4096, 6).unwrap_err().to_string();
        assert!(e.contains("cell = 49152"), "{e}");
        let e = from_lat_lon(0.0, 0.0, 0, LatitudeMode::Sphere)
            .unwrap_err()
            .to_string();
        assert!(e.contains("morton:") && e.contains("order = 0"), "{e}");
        let e = from_lat_lon(-90.25, 0.0, 6, LatitudeMode::Sphere)
            .unwrap_err()
            .to_string();
        assert!(e.contains("morton:") && e.contains("lat = -90.25"), "{e}");
    }

    #[test]
    fn mixed_orders() {
        let mut out = vec![];
        assert_eq!(
            to_nested_into(&[-4211322, -4211321], &mut out).unwrap(),
            Some(6)
        );
        assert_eq!(out, vec![37925, 37924]);
        let e = to_nested_into(&[-4211322, 42113], &mut out)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mixes orders") && e.contains("42113 is order 4"),
            "{e}"
        );
    }

    #[test]
    fn vectorised_equals_scalar() {
        let lat: Vec<f64> = (0..3000).map(|i| -89.9 + f64::from(i) * 0.0599).collect();
        let lon: Vec<f64> = (0..3000).map(|i| -180.0 + f64::from(i) * 0.17).collect();
        for mode in [LatitudeMode::Sphere, LatitudeMode::Authalic] {
            let mut out = vec![];
            from_lat_lon_into(&lat, &lon, 18, mode, &mut out).unwrap();
            for i in 0..lat.len() {
                assert_eq!(out[i], from_lat_lon(lat[i], lon[i], 18, mode).unwrap());
            }
        }
    }
}
