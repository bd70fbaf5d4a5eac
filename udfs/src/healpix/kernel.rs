//! healpy-compatible NESTED hashing and cell centres.
//!
//! The arithmetic follows the HEALPix paper (Górski et al. 2005, ApJ 622, 759) in the
//! form healpy 1.x evaluates it (`ang2pix(nside, lon, lat, nest=True, lonlat=True)` and
//! `pix2ang`): the latitude becomes the colatitude `theta = pi/2 - lat * (pi/180)`, the
//! hash works on `z = cos(theta)`, near the poles (`theta < 0.01`) on `sin(theta)` too,
//! and every multiplication happens in the same order with the same constants. That is
//! what makes the results bit-for-bit equal to healpy's, including points that lie
//! exactly on a cell boundary (the equator at multiples of 45 degrees, the poles,
//! base-cell corners), where any other evaluation order may pick the neighbouring cell.
//! `cdshealpix` agrees with healpy everywhere except on such boundaries; see the crate
//! docs and `tests/healpix_golden.rs`.
//!
//! Nothing here validates its input: callers check the order (`0..=29`), the latitude
//! range and finiteness first.

use std::f64::consts::{FRAC_2_PI, FRAC_PI_2, TAU};

/// Largest order a 64-bit nested id supports.
pub(crate) const MAX_ORDER: u8 = 29;

/// Row of the south vertex of each base cell, in units of nside (HEALPix "jrll").
const JRLL: [i64; 12] = [2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4];
/// Longitude index of each base cell's centre, in units of pi/4 (HEALPix "jpll").
const JPLL: [i64; 12] = [1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7];

/// Spreads the low 32 bits of `v` to the even bit positions.
#[inline(always)]
pub(crate) const fn spread(v: u64) -> u64 {
    let mut x = v & 0xFFFF_FFFF;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Inverse of [`spread`]: gathers the even bits of `v`.
#[inline(always)]
pub(crate) const fn compress(v: u64) -> u64 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF
}

#[inline(always)]
fn xyf2nest(ix: i64, iy: i64, face: i64, order: u32) -> u64 {
    ((face as u64) << (2 * order)) + spread(ix as u64) + (spread(iy as u64) << 1)
}

/// `v` reduced to `[0, m)` exactly as HEALPix's `fmodulo` does. `fmod` is exact, and for
/// `-m < v < 0` it returns `v`, so that common case (western longitudes) skips the libm
/// call without changing a bit of the result.
#[inline(always)]
fn fmodulo(v: f64, m: f64) -> f64 {
    if v >= 0.0 {
        if v < m { v } else { v % m }
    } else {
        let tmp = if v > -m { v + m } else { v % m + m };
        if tmp == m { 0.0 } else { tmp }
    }
}

/// NESTED id of the point with `z = cos(theta)` and longitude `phi` (radians).
/// `sth = sin(theta)` is used only when `have_sth` (near the poles).
#[inline(always)]
fn loc2nest(order: u32, z: f64, phi: f64, sth: f64, have_sth: bool) -> u64 {
    let nside = 1_i64 << order;
    let nside_f = nside as f64;
    let za = z.abs();
    let tt = fmodulo(phi * FRAC_2_PI, 4.0);
    if za <= 2.0 / 3.0 {
        // Equatorial belt: the two families of edge lines are straight in (phi, z).
        let temp1 = nside_f * (0.5 + tt);
        let temp2 = nside_f * (z * 0.75);
        let jp = (temp1 - temp2) as i64; // ascending edge line
        let jm = (temp1 + temp2) as i64; // descending edge line
        let ifp = jp >> order;
        let ifm = jm >> order;
        let face = if ifp == ifm {
            ifp | 4
        } else if ifp < ifm {
            ifp
        } else {
            ifm + 8
        };
        let ix = jm & (nside - 1);
        let iy = nside - (jp & (nside - 1)) - 1;
        xyf2nest(ix, iy, face, order)
    } else {
        // Polar caps.
        let ntt = (tt as i64).min(3);
        let tp = tt - ntt as f64;
        let tmp = if za < 0.99 || !have_sth {
            nside_f * (3.0 * (1.0 - za)).sqrt()
        } else {
            nside_f * sth / ((1.0 + za) / 3.0).sqrt()
        };
        let jp = ((tp * tmp) as i64).min(nside - 1);
        let jm = (((1.0 - tp) * tmp) as i64).min(nside - 1);
        if z >= 0.0 {
            xyf2nest(nside - jm - 1, nside - jp - 1, ntt, order)
        } else {
            xyf2nest(jp, jm, ntt + 8, order)
        }
    }
}

/// NESTED id from colatitude `theta` in `[0, pi]` and longitude `phi` (radians, any
/// finite value).
#[inline(always)]
pub(crate) fn ang2nest(order: u32, theta: f64, phi: f64) -> u64 {
    // healpy normalises every pointing first (`pointing::normalize`): phi to [0, 2pi).
    // That rounding decides points on the meridians of cell corners west of Greenwich.
    let phi = fmodulo(phi, TAU);
    // healpy's switch to sin(theta) for the last 0.01 rad around each pole, with its
    // literal bounds (3.14159 is not pi on purpose: it is what healpy compares with).
    #[allow(clippy::approx_constant)]
    const SOUTH: f64 = 3.14159 - 0.01;
    if !(0.01..=SOUTH).contains(&theta) {
        loc2nest(order, theta.cos(), phi, theta.sin(), true)
    } else {
        loc2nest(order, theta.cos(), phi, 0.0, false)
    }
}

/// NESTED id from latitude and longitude in degrees (`|lat| <= 90`, finite `lon`).
#[inline(always)]
pub(crate) fn lonlat2nest(order: u32, lat_deg: f64, lon_deg: f64) -> u64 {
    ang2nest(
        order,
        FRAC_PI_2 - lat_deg.to_radians(),
        lon_deg.to_radians(),
    )
}

/// Centre of a NESTED cell as (colatitude, longitude) in radians, longitude in `[0, 2pi)`.
/// `pix` must be below `12 * 4^order`.
pub(crate) fn nest2ang(order: u32, pix: u64) -> (f64, f64) {
    let nside = 1_i64 << order;
    let npix = 12 * nside * nside;
    let fact2 = 4.0 / npix as f64;
    let fact1 = ((nside << 1) as f64) * fact2;
    let face = (pix >> (2 * order)) as usize;
    let in_face = pix & ((1_u64 << (2 * order)) - 1);
    let ix = compress(in_face) as i64;
    let iy = compress(in_face >> 1) as i64;

    let jr = (JRLL[face] << order) - ix - iy - 1;
    let mut sth = 0.0;
    let mut have_sth = false;
    let nr;
    let z;
    if jr < nside {
        nr = jr;
        let tmp = (nr * nr) as f64 * fact2;
        z = 1.0 - tmp;
        if z > 0.99 {
            sth = (tmp * (2.0 - tmp)).sqrt();
            have_sth = true;
        }
    } else if jr > 3 * nside {
        nr = nside * 4 - jr;
        let tmp = (nr * nr) as f64 * fact2;
        z = tmp - 1.0;
        if z < -0.99 {
            sth = (tmp * (2.0 - tmp)).sqrt();
            have_sth = true;
        }
    } else {
        nr = nside;
        z = (2 * nside - jr) as f64 * fact1;
    }

    let mut tmp = JPLL[face] * nr + ix - iy;
    if tmp < 0 {
        tmp += 8 * nr;
    }
    let phi = if nr == nside {
        0.75 * FRAC_PI_2 * tmp as f64 * fact1
    } else {
        (0.5 * FRAC_PI_2 * tmp as f64) / nr as f64
    };
    let theta = if have_sth { sth.atan2(z) } else { z.acos() };
    (theta, phi)
}

/// Centre of a NESTED cell as (latitude, longitude) in degrees, longitude in
/// `[-180, 180)` (healpy's `[0, 360)` value minus 360 where it is 180 or more; exact).
pub(crate) fn nest2lonlat(order: u32, pix: u64) -> (f64, f64) {
    let (theta, phi) = nest2ang(order, pix);
    let lat = 90.0 - theta.to_degrees();
    let mut lon = phi.to_degrees();
    if lon >= 180.0 {
        lon -= 360.0;
    }
    (lat, lon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_compress_are_inverse() {
        for v in [0_u64, 1, 2, 3, 0x1234_5678, (1 << 29) - 1, 0xFFFF_FFFF] {
            assert_eq!(compress(spread(v)), v);
        }
        assert_eq!(spread(0b111), 0b10101);
    }

    #[test]
    fn fmodulo_matches_its_fmod_definition() {
        for m in [4.0, TAU] {
            for v in [
                0.0, 3.999, 4.0, 6.3, 7.5, -0.5, -1e-300, -3.9, -4.0, -4.5, -6.3, -8.0, 1e6, -1e6,
            ] {
                let want = if v >= 0.0 {
                    if v < m { v } else { v % m }
                } else {
                    let t = v % m + m;
                    if t == m { 0.0 } else { t }
                };
                assert_eq!(fmodulo(v, m).to_bits(), want.to_bits(), "{v} mod {m}");
            }
        }
    }

    #[test]
    fn base_cells_at_order_zero() {
        // Centres of the 12 base cells hash back to themselves.
        for b in 0..12 {
            let (theta, phi) = nest2ang(0, b);
            assert_eq!(ang2nest(0, theta, phi), b);
        }
    }
}
