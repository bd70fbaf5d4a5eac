//! A latitude/longitude box around a parent cell, to skip hashing points far from it.
//!
//! With the coordinate index, a cell decodes only the chunks that reach it, but a 10,000-row
//! chunk still spans ~200 km of track and a parent cell ~100 km: about two thirds of the
//! decoded points lie outside the cell, and hashing a point (a `cos` and the healpy
//! arithmetic) costs ~25x a comparison. The box decides which points are worth hashing;
//! the exact hash still decides membership, so results are unchanged as long as the box
//! holds every point of the cell.
//!
//! Why the box holds the cell: a HEALPix cell is bounded by four edges, each a curve of
//! constant `jp` or `jm` in the hashing arithmetic. In the equatorial belt such a curve is
//! a straight line in (longitude, sin latitude); in the polar caps it is
//! `t * sqrt(3 (1 - |z|)) = const`. Along either, latitude and longitude are monotonic, so
//! their extremes over the cell are at its four vertices. The vertices are taken as the
//! centres of the cell's corner descendants at a much finer order (within 1/2^d of the
//! cell's size of the true vertex), and the box is widened by 5% of its size on each side,
//! which covers that approximation many times over. Cells that reach a pole or span 90
//! degrees of longitude get a latitude band only.
//!
//! A box around a cell over Antarctica holds about 1.4 times the cell's points (the cell
//! is a rotated diamond in latitude/longitude). Inside the box, a point is also tested
//! against its latitude band: the box is cut into [`BANDS`] bands and each keeps the
//! longitudes reached, in that band, by the boxes of the cell's 64 descendants three
//! orders down. Every point of the cell is in one descendant, hence in that descendant's
//! box (the argument above, one level down), hence inside the interval of its band; the
//! bands follow the diamond's edges, so fewer points outside the cell are hashed.

use magg_udfs::healpix::{MAX_ORDER, center_with_mode};

use super::CellFilter;

/// Box around a parent cell: every point of the cell is inside.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CellBox {
    lat_min: f64,
    lat_max: f64,
    /// Longitude of the centre and half-width in degrees; `None`: any longitude.
    lon: Option<(f64, f64)>,
    /// Per latitude band, the longitudes (as offsets from the centre) the cell reaches
    /// there; `None` when the box has no longitude bound or descendants are too fine.
    bands: Option<Bands>,
}

/// Latitude bands of a [`CellBox`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bands {
    /// Bands per degree of latitude.
    per_degree: f64,
    /// `(lowest, highest)` longitude offset from the box's centre in each band; a band no
    /// descendant reaches is empty (lowest above highest).
    lon: [(f64, f64); BANDS],
}

/// Relative margin added on each side of the vertices' extent.
const MARGIN: f64 = 0.05;

/// Latitude bands per box.
const BANDS: usize = 16;

/// Orders between a cell and the descendants whose boxes shape its bands (64 of them).
const BAND_DEPTH: u8 = 3;

impl CellBox {
    /// The box of `cell`'s parent, or `None` when the parent is too fine to bother (its
    /// corner descendants would be fewer than 8 orders deeper).
    pub(crate) fn of(cell: &CellFilter) -> Option<Self> {
        let mut b = Self::outer(cell.parent, cell.parent_order, cell.mode)?;
        b.bands = b.bands_of(cell);
        Some(b)
    }

    /// The box of nested cell `parent` at order `k`, without bands.
    fn outer(parent: u64, k: u8, mode: magg_udfs::healpix::LatitudeMode) -> Option<Self> {
        let d = MAX_ORDER.checked_sub(k).filter(|d| *d >= 8)?.min(20);
        let fine = k + d;
        let base = parent << (2 * u32::from(d));
        let all = (1u64 << (2 * u32::from(d))) - 1;
        // Corner descendants: (ix, iy) = (0, 0), (max, max), (max, 0), (0, max); the x bits
        // of a nested id are the even ones.
        let x_bits = all / 3;
        let corners = [base, base + all, base + x_bits, base + 2 * x_bits];
        let centre = center_with_mode(parent, k, mode).ok()?;
        let mut pts = Vec::with_capacity(5);
        pts.push(centre);
        for c in corners {
            pts.push(center_with_mode(c, fine, mode).ok()?);
        }
        let lat_lo = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let lat_hi = pts.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        let pad = MARGIN * (lat_hi - lat_lo) + 1e-9;
        let (lat_min, lat_max) = (lat_lo - pad, lat_hi + pad);
        let near_pole = lat_max >= 89.0 || lat_min <= -89.0;
        let half = pts.iter().map(|p| wrap(p.1 - centre.1).abs()).fold(0.0, f64::max);
        let half = half * (1.0 + 2.0 * MARGIN) + 1e-9;
        let lon = (!near_pole && half < 90.0).then_some((centre.1, half));
        Some(Self { lat_min: lat_min.max(-90.0), lat_max: lat_max.min(90.0), lon, bands: None })
    }

    /// The bands of this box (the outer box of `cell`) from the boxes of its descendants
    /// [`BAND_DEPTH`] orders down; `None` when one of them has no longitude bound.
    fn bands_of(&self, cell: &CellFilter) -> Option<Bands> {
        let (centre, _) = self.lon?;
        let k = cell.parent_order.checked_add(BAND_DEPTH)?;
        let per_degree = BANDS as f64 / (self.lat_max - self.lat_min);
        let mut bands = Bands { per_degree, lon: [(f64::INFINITY, f64::NEG_INFINITY); BANDS] };
        let first = cell.parent << (2 * u32::from(BAND_DEPTH));
        for child in first..first + (1 << (2 * u32::from(BAND_DEPTH))) {
            let b = Self::outer(child, k, cell.mode)?;
            let (c, half) = b.lon?;
            let offset = wrap(c - centre);
            // The same band arithmetic as `may_contain`, which is monotonic in latitude:
            // every latitude of the descendant's box falls in a band marked here.
            let (lo, hi) = (bands.band(self.lat_min, b.lat_min), bands.band(self.lat_min, b.lat_max));
            for band in &mut bands.lon[lo..=hi] {
                band.0 = band.0.min(offset - half);
                band.1 = band.1.max(offset + half);
            }
        }
        Some(bands)
    }

    /// Whether a point may be in the cell (false for NaN coordinates).
    #[inline(always)]
    pub(crate) fn may_contain(&self, lat: f64, lon: f64) -> bool {
        if !(lat >= self.lat_min && lat <= self.lat_max) {
            return false;
        }
        match self.lon {
            None => true,
            Some((c, half)) => {
                let d = wrap(lon - c);
                d.abs() <= half
                    && self.bands.as_ref().is_none_or(|b| {
                        let (lo, hi) = b.lon[b.band(self.lat_min, lat)];
                        d >= lo && d <= hi
                    })
            }
        }
    }
}

impl Bands {
    /// The band of latitude `lat` in a box starting at `lat_min` (clamped to the bands).
    #[inline(always)]
    fn band(&self, lat_min: f64, lat: f64) -> usize {
        (((lat - lat_min) * self.per_degree).max(0.0) as usize).min(BANDS - 1)
    }
}

/// A longitude difference folded into [-180, 180].
#[inline(always)]
fn wrap(d: f64) -> f64 {
    if (-180.0..=180.0).contains(&d) {
        d
    } else {
        let r = d.rem_euclid(360.0);
        if r > 180.0 { r - 360.0 } else { r }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use magg_udfs::healpix::LatitudeMode;

    /// Every point hashed into the cell is inside its box, for cells all over the sphere
    /// (poles, the antimeridian, base-cell corners) and both latitude modes.
    #[test]
    fn boxes_hold_every_point_of_their_cell() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut checked = 0;
        for mode in [LatitudeMode::Sphere, LatitudeMode::Authalic] {
            for order in [0u8, 1, 3, 6, 9] {
                let mut cells = std::collections::HashMap::new();
                for i in 0..60_000 {
                    // Uniform on the sphere, plus points on exact poles and meridians.
                    let mut lat = (2.0 * next() - 1.0).asin().to_degrees();
                    let mut lon = next() * 360.0 - 180.0;
                    if i % 50 == 0 {
                        lat = if i % 100 == 0 { 90.0 } else { -90.0 };
                    }
                    if i % 37 == 0 {
                        lon = [-180.0, 180.0, 0.0, 45.0, -135.0][i % 5];
                    }
                    let h = magg_udfs::healpix::cell(lat, lon, 18, mode).unwrap();
                    let parent = h >> (2 * (18 - u32::from(order)));
                    let filter = CellFilter { hash_order: 18, parent_order: order, parent, mode };
                    let b = *cells.entry(parent).or_insert_with(|| CellBox::of(&filter).unwrap());
                    assert!(b.may_contain(lat, lon), "({lat}, {lon}) in cell {parent} at order {order} ({mode:?}) but outside {b:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 600_000);
    }

    #[test]
    fn boxes_are_tight_enough_to_matter() {
        // An order-6 cell over Antarctica: about a degree of latitude, a few of longitude.
        let h = magg_udfs::healpix::cell(-79.0, -105.0, 18, LatitudeMode::Sphere).unwrap();
        let f = CellFilter { hash_order: 18, parent_order: 6, parent: h >> 24, mode: LatitudeMode::Sphere };
        let b = CellBox::of(&f).unwrap();
        assert!(b.lat_max - b.lat_min < 2.0, "{b:?}");
        let (_, half) = b.lon.expect("a longitude bound");
        assert!(half < 5.0, "{b:?}");
        assert!(b.may_contain(-79.0, -105.0));
        assert!(!b.may_contain(-79.0, 75.0) && !b.may_contain(-70.0, -105.0) && !b.may_contain(f64::NAN, -105.0));
        // Too fine for a box.
        assert!(CellBox::of(&CellFilter { parent_order: 22, ..f }).is_none());
    }

    /// The bands cut the points hashed for nothing: of points spread over the box of an
    /// Antarctic order-6 cell, the box alone keeps about 1.4 per point of the cell, the
    /// bands fewer; and every point of the cell still passes.
    #[test]
    fn bands_keep_fewer_points_outside_the_cell() {
        let h = magg_udfs::healpix::cell(-79.0, -105.0, 18, LatitudeMode::Sphere).unwrap();
        let f = CellFilter { hash_order: 18, parent_order: 6, parent: h >> 24, mode: LatitudeMode::Sphere };
        let banded = CellBox::of(&f).unwrap();
        assert!(banded.bands.is_some(), "{banded:?}");
        let plain = CellBox { bands: None, ..banded };
        let (lon_c, half) = plain.lon.unwrap();
        let (mut in_cell, mut in_box, mut in_bands) = (0, 0, 0);
        let n = 400;
        for i in 0..n {
            for j in 0..n {
                let lat = plain.lat_min + (plain.lat_max - plain.lat_min) * (f64::from(i) + 0.5) / f64::from(n);
                let lon = lon_c - half + 2.0 * half * (f64::from(j) + 0.5) / f64::from(n);
                let inside = magg_udfs::healpix::cell(lat, lon, 6, LatitudeMode::Sphere).unwrap() == f.parent;
                assert!(!inside || banded.may_contain(lat, lon), "({lat}, {lon}) in the cell, outside its bands");
                in_cell += usize::from(inside);
                in_box += usize::from(plain.may_contain(lat, lon));
                in_bands += usize::from(banded.may_contain(lat, lon));
            }
        }
        let (r_box, r_bands) = (in_box as f64 / in_cell as f64, in_bands as f64 / in_cell as f64);
        eprintln!("points per point of the cell: box {r_box:.3}, bands {r_bands:.3}");
        assert!(r_bands < 0.85 * r_box, "box {r_box:.3}, bands {r_bands:.3}");
    }

    #[test]
    fn wrap_folds_longitude_differences() {
        assert_eq!(wrap(10.0), 10.0);
        assert_eq!(wrap(350.0), -10.0);
        assert_eq!(wrap(-350.0), 10.0);
        assert_eq!(wrap(720.0 + 5.0), 5.0);
    }
}
