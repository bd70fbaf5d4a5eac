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
        belt_nest(jp, jm, order)
    } else {
        // Polar caps.
        let ntt = (tt as i64).min(3);
        let tp = tt - ntt as f64;
        let tmp = if za < 0.99 || !have_sth {
            nside_f * (3.0 * (1.0 - za)).sqrt()
        } else {
            nside_f * sth / ((1.0 + za) / 3.0).sqrt()
        };
        cap_nest((tp * tmp) as i64, ((1.0 - tp) * tmp) as i64, ntt, z >= 0.0, order)
    }
}

/// NESTED id from the equatorial belt's edge-line indices `jp` (ascending) and `jm`
/// (descending); shared by the exact and the certified paths.
#[inline(always)]
fn belt_nest(jp: i64, jm: i64, order: u32) -> u64 {
    let nside = 1_i64 << order;
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
}

/// NESTED id from a polar cap's truncated `jp`, `jm` (clamped here to `nside - 1`) in
/// quadrant `ntt` of the northern (`north`) or southern cap.
#[inline(always)]
fn cap_nest(jp: i64, jm: i64, ntt: i64, north: bool, order: u32) -> u64 {
    let nside = 1_i64 << order;
    let (jp, jm) = (jp.min(nside - 1), jm.min(nside - 1));
    if north {
        xyf2nest(nside - jm - 1, nside - jp - 1, ntt, order)
    } else {
        xyf2nest(jp, jm, ntt + 8, order)
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

// ---------------------------------------------------------------------------------------
// Fast path: `z` without libm, with a certificate that the result is the exact one.
//
// Why it is exact. In the range where healpy does not use sin(theta)
// (`0.01 <= theta <= 3.14159 - 0.01`), the hash depends on `z` only through
// (a) the test `|z| <= 2/3`, (b) in the belt the truncations of
// `temp1 -/+ nside * (z * 0.75)`, (c) in the caps the truncations of `tp * tmp` and
// `(1 - tp) * tmp` with `tmp = nside * sqrt(3 * (1 - |z|))`, and the sign of `z`.
// Every one of those is a composition of IEEE-754 operations with one argument fixed
// (correctly rounded +, -, *, sqrt, and truncation toward zero), each of which is monotone
// in the varying argument. So if the exact `z` lies in `[zlo, zhi]`, the side of 2/3 is the
// same over the whole interval, and each truncated integer is equal at `zlo` and at `zhi`,
// then it has that same value at the exact `z`, and so has the id built from them. No
// error propagation through the formulas is needed, only a bound on `|z_fast - z_exact|`.
//
// The bound. `r = lat.to_radians()` (the same rounded product the exact path uses),
// `theta = fl(FRAC_PI_2 - r)` and `z_exact = glibc_cos(theta)`, while `z_fast` evaluates
// sin(r) by a polynomial. With `cos(theta) = sin(pi/2 - theta)` and |sin'| <= 1:
//   |z_exact - cos(theta)|          <= 1 ulp(1)                       = 2.3e-16 (libm)
//   |pi/2 - theta - r| <= |pi/2 - FRAC_PI_2| + |fl(FRAC_PI_2 - r) - (FRAC_PI_2 - r)|
//                      <= 6.2e-17 + ulp(theta <= pi)/2 = 6.2e-17 + 2^-52  = 2.9e-16
//   |sin(r) - taylor_21(r)| <= (pi/2)^23 / 23!  (|r| <= pi/2)            = 1.3e-18
//   Horner rounding: 11 steps of `p * x2 + c` with |x2| <= 2.47 and the alternating
//   series damping each step, then `r + (r * x2) * p`: a few ulp of 1    <= 1.0e-15
// Total below 1.6e-15. `Z_MARGIN` is 1e-14, about six times that, which also covers the
// half-ulp rounding of `zf -/+ Z_MARGIN` itself; the tests measure the actual maximum of
// `|z_fast - z_exact|` (far below the margin) and check that a zero margin does give wrong
// ids, so the certificate is what makes this exact. A point whose interval straddles
// a decision (about 1e-5 of the points at order 29, fewer at coarser orders) is
// recomputed by the exact path, as are all points of the sin(theta) zone near the poles.

/// Bound used for `|z_fast - z_exact|`; see above.
pub(crate) const Z_MARGIN: f64 = 1e-14;

/// Points per block of the vectorised `z` pass.
const BLOCK: usize = 128;

/// Taylor coefficients of sin(x) = x + x^3 * (S3 + x^2 * (S5 + ...)), up to x^21.
const S3: f64 = -1.0 / 6.0;
const S5: f64 = 1.0 / 120.0;
const S7: f64 = -1.0 / 5040.0;
const S9: f64 = 1.0 / 362_880.0;
const S11: f64 = -1.0 / 39_916_800.0;
const S13: f64 = 1.0 / 6_227_020_800.0;
const S15: f64 = -1.0 / 1_307_674_368_000.0;
const S17: f64 = 1.0 / 355_687_428_096_000.0;
const S19: f64 = -1.0 / 121_645_100_408_832_000.0;
const S21: f64 = 1.0 / 51_090_942_171_709_440_000.0;

/// sin(lat) for `|lat| <= 90` degrees, within 1.6e-15 of healpy's `cos(pi/2 - lat_rad)`.
/// Branch-free and libm-free, so a loop over it vectorises.
#[inline(always)]
pub(crate) fn z_fast(lat_deg: f64) -> f64 {
    let x = lat_deg.to_radians();
    let x2 = x * x;
    let mut p = S21;
    p = p * x2 + S19;
    p = p * x2 + S17;
    p = p * x2 + S15;
    p = p * x2 + S13;
    p = p * x2 + S11;
    p = p * x2 + S9;
    p = p * x2 + S7;
    p = p * x2 + S5;
    p = p * x2 + S3;
    x + (x * x2) * p
}

/// [`fmodulo`] for `|v| < m` without a branch on the sign of `v` (random longitudes
/// would mispredict it half the time); the same value bit for bit, `-0.0` included.
#[inline(always)]
fn fmodulo_small(v: f64, m: f64) -> f64 {
    let t = if v < 0.0 { v + m } else { v };
    if t == m { 0.0 } else { t }
}

/// The id of the point, computed from `z` known only to lie in `[zlo, zhi]`, and whether
/// that interval decides it (see the comment above [`Z_MARGIN`]); the id is meaningless
/// when it does not. `tt` is `fmodulo(phi * 2/pi, 4)` as in [`loc2nest`]. The caller has
/// excluded the sin(theta) zone, so `|z| < 0.99995` and the cap formula is the one
/// without `sth`.
#[inline(always)]
fn loc2nest_bracketed(order: u32, zlo: f64, zhi: f64, tt: f64) -> (u64, bool) {
    const TWO_THIRDS: f64 = 2.0 / 3.0;
    let nside = 1_i64 << order;
    let nside_f = nside as f64;
    if zlo >= -TWO_THIRDS && zhi <= TWO_THIRDS {
        // Every z of the interval has |z| <= 2/3: equatorial belt, the expressions of
        // loc2nest. `temp1 - temp2` decreases and `temp1 + temp2` increases with z.
        let temp1 = nside_f * (0.5 + tt);
        let t_lo = nside_f * (zlo * 0.75);
        let t_hi = nside_f * (zhi * 0.75);
        let jp = (temp1 - t_hi) as i64;
        let jm = (temp1 + t_lo) as i64;
        let ok = (jp == (temp1 - t_lo) as i64) & (jm == (temp1 + t_hi) as i64);
        (belt_nest(jp, jm, order), ok)
    } else {
        // Every z of the interval in one cap (else not certified), |z| ranging over
        // [za_lo, za_hi]; tmp decreases with |z|, and tp and 1 - tp are >= 0.
        let north = zlo > TWO_THIRDS;
        let cap = north || zhi < -TWO_THIRDS;
        let za_lo = if north { zlo } else { -zhi };
        let za_hi = if north { zhi } else { -zlo };
        let ntt = (tt as i64).min(3);
        let tp = tt - ntt as f64;
        let tmp_big = nside_f * (3.0 * (1.0 - za_lo)).sqrt();
        let tmp_small = nside_f * (3.0 * (1.0 - za_hi)).sqrt();
        let jp = (tp * tmp_small) as i64;
        let jm = ((1.0 - tp) * tmp_small) as i64;
        let ok = cap & (jp == (tp * tmp_big) as i64) & (jm == ((1.0 - tp) * tmp_big) as i64);
        (cap_nest(jp, jm, ntt, north, order), ok)
    }
}

/// [`lonlat2nest`] from `zf = z_fast(lat_deg)`, and whether it is certified equal; when
/// not (sin(theta) zone, `zf -/+ margin` not deciding the id, a longitude outside
/// `(-360, 360)`) the point must take the exact path.
#[inline(always)]
pub(crate) fn lonlat2nest_certified(
    order: u32,
    lat_deg: f64,
    lon_deg: f64,
    zf: f64,
    margin: f64,
) -> (u64, bool) {
    let theta = FRAC_PI_2 - lat_deg.to_radians();
    #[allow(clippy::approx_constant)]
    const SOUTH: f64 = 3.14159 - 0.01;
    let polar = !(0.01..=SOUTH).contains(&theta);
    // ang2nest's and loc2nest's longitude reductions; the second argument is in [0, 4]
    // whenever the first is in [0, 2pi).
    let lon_rad = lon_deg.to_radians();
    let small = lon_rad.abs() < TAU;
    let phi = fmodulo_small(lon_rad, TAU);
    let tt = fmodulo_small(phi * FRAC_2_PI, 4.0);
    let (id, ok) = loc2nest_bracketed(order, zf - margin, zf + margin, tt);
    (id, ok & small & !polar)
}

#[cold]
#[inline(never)]
fn lonlat2nest_cold(order: u32, lat_deg: f64, lon_deg: f64) -> u64 {
    lonlat2nest(order, lat_deg, lon_deg)
}

/// [`lonlat2nest`] of every point, appended to `out`: bit for bit the same ids, computed
/// with [`z_fast`] over blocks of points and the exact path only where the certificate
/// fails. `lat` and `lon` have the same length and hold validated values.
pub(crate) fn lonlat2nest_many(order: u32, lat: &[f64], lon: &[f64], out: &mut Vec<u64>) {
    debug_assert_eq!(lat.len(), lon.len());
    out.reserve(lat.len());
    let mut z = [0.0_f64; BLOCK];
    for (la, lo) in lat.chunks(BLOCK).zip(lon.chunks(BLOCK)) {
        // Separate pass without branches or calls, so it vectorises.
        for (z, &la) in z.iter_mut().zip(la) {
            *z = z_fast(la);
        }
        out.extend(la.iter().zip(lo).zip(&z).map(|((&la, &lo), &zf)| {
            let (id, ok) = lonlat2nest_certified(order, la, lo, zf, Z_MARGIN);
            if ok {
                id
            } else {
                lonlat2nest_cold(order, la, lo)
            }
        }));
    }
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

    /// xorshift64: deterministic points without a dependency.
    struct Rng(u64);
    impl Rng {
        fn f64(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1_u64 << 53) as f64
        }
    }

    /// `x` moved by `k` ulps (k may be negative), staying finite.
    fn nudge(x: f64, k: i64) -> f64 {
        let mut y = x;
        for _ in 0..k.unsigned_abs() {
            y = if k > 0 { y.next_up() } else { y.next_down() };
        }
        y
    }

    /// Points at `order` that stress the certificate: uniform on the sphere, and points
    /// within a few ulps of belt and cap edge lines, base-cell meridians, |z| = 2/3, the
    /// sin(theta) switch and order-29 cell centres.
    #[allow(clippy::approx_constant)] // healpy's literal 3.14159
    fn hard_points(order: u32, rng: &mut Rng, n: usize) -> Vec<(f64, f64)> {
        let nside = (1_u64 << order) as f64;
        let mut pts = Vec::new();
        let push_nudged = |pts: &mut Vec<(f64, f64)>, lat: f64, lon: f64| {
            if lat.is_nan() || lat.abs() > 90.0 {
                return;
            }
            for k in -4..=4 {
                let la = nudge(lat, k).clamp(-90.0, 90.0);
                pts.push((la, lon));
                pts.push((la, nudge(lon, k)));
            }
        };
        for _ in 0..n {
            // Uniform.
            pts.push((
                (2.0 * rng.f64() - 1.0).asin().to_degrees(),
                360.0 * rng.f64() - 180.0,
            ));
            let lon = 720.0 * rng.f64() - 360.0;
            let tt = (lon.to_radians() * FRAC_2_PI).rem_euclid(4.0);
            // Belt: the z where nside * (0.5 + tt) -/+ nside * 0.75 * z is an integer.
            let z = (2.0 * rng.f64() - 1.0) * (2.0 / 3.0);
            let temp1 = nside * (0.5 + tt);
            for sign in [-1.0, 1.0] {
                let j = (temp1 + sign * nside * 0.75 * z).round();
                let ze = sign * (j - temp1) / (0.75 * nside);
                push_nudged(&mut pts, ze.asin().to_degrees(), lon);
            }
            // Caps: the |z| where tp * tmp or (1 - tp) * tmp is an integer.
            let tp = tt - tt.floor().min(3.0);
            let za = 2.0 / 3.0 + rng.f64() * (1.0 / 3.0);
            let tmp = nside * (3.0 * (1.0 - za)).sqrt();
            for f in [tp, 1.0 - tp] {
                if f > 0.0 {
                    let t = (f * tmp).round() / f;
                    let zc = 1.0 - (t / nside).powi(2) / 3.0;
                    let hemi = if rng.f64() < 0.5 { 1.0 } else { -1.0 };
                    push_nudged(&mut pts, hemi * zc.asin().to_degrees(), lon);
                }
            }
            // Base-cell meridians, |z| = 2/3, the sin(theta) switch.
            let lat = (2.0 * rng.f64() - 1.0).asin().to_degrees();
            push_nudged(&mut pts, lat, 45.0 * (rng.f64() * 16.0 - 8.0).round());
            let hemi = if rng.f64() < 0.5 { 1.0 } else { -1.0 };
            push_nudged(&mut pts, hemi * (2.0_f64 / 3.0).asin().to_degrees(), lon);
            push_nudged(&mut pts, hemi * (90.0 - 0.01_f64.to_degrees()), lon);
            push_nudged(&mut pts, 90.0 - (3.14159_f64 - 0.01).to_degrees(), lon);
            // Centres of order-29 cells: extremely close to edges of coarser cells.
            let pix = (rng.f64() * (12_u64 << 58) as f64) as u64;
            let (clat, clon) = nest2lonlat(29, pix.min((12_u64 << 58) - 1));
            push_nudged(&mut pts, clat, clon);
        }
        pts
    }

    /// Compares the certified fast path with the exact one; returns (points, fallbacks,
    /// wrong certified ids, max |z_fast - z_exact| outside the sin(theta) zone).
    #[allow(clippy::approx_constant)] // healpy's literal 3.14159
    fn compare(order: u32, pts: &[(f64, f64)], margin: f64) -> (usize, usize, usize, f64) {
        let (mut fallback, mut wrong, mut max_dz) = (0, 0, 0.0_f64);
        for &(lat, lon) in pts {
            let zf = z_fast(lat);
            let theta = FRAC_PI_2 - lat.to_radians();
            if (0.01..=3.14159 - 0.01).contains(&theta) {
                max_dz = max_dz.max((zf - theta.cos()).abs());
            }
            let (id, ok) = lonlat2nest_certified(order, lat, lon, zf, margin);
            if !ok {
                fallback += 1;
            } else if id != lonlat2nest(order, lat, lon) {
                wrong += 1;
            }
        }
        (pts.len(), fallback, wrong, max_dz)
    }

    #[test]
    fn fast_path_equals_exact_path_at_every_order() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut total, mut fallbacks, mut wrong_at_zero_margin, mut max_dz) = (0, 0, 0, 0.0);
        for order in 0..=MAX_ORDER as u32 {
            let pts = hard_points(order, &mut rng, 4_000);
            let (n, fallback, wrong, dz) = compare(order, &pts, Z_MARGIN);
            assert_eq!(
                wrong, 0,
                "order {order}: certified ids differ from healpy's"
            );
            total += n;
            fallbacks += fallback;
            max_dz = f64::max(max_dz, dz);
            // The certificate is what makes it exact: without the margin, ids differ.
            wrong_at_zero_margin += compare(order, &pts, 0.0).2;
            // The vectorised entry gives the exact ids too.
            let (lat, lon): (Vec<f64>, Vec<f64>) = pts.iter().copied().unzip();
            let mut out = vec![];
            lonlat2nest_many(order, &lat, &lon, &mut out);
            let want = pts.iter().map(|&(la, lo)| lonlat2nest(order, la, lo));
            assert!(out.into_iter().eq(want), "order {order}: lonlat2nest_many");
        }
        eprintln!(
            "fast vs exact: {total} points at orders 0..=29, {fallbacks} took the exact path, \
             max |z_fast - z_exact| = {max_dz:e}, {wrong_at_zero_margin} wrong with margin 0"
        );
        assert!(
            max_dz < Z_MARGIN / 4.0,
            "z error {max_dz:e} too close to the margin"
        );
        assert!(
            wrong_at_zero_margin > 0,
            "the test cannot detect a missing margin"
        );
        // Uniform points barely ever fall back (the sin(theta) zone is 5e-5 of the sphere).
        let uniform: Vec<(f64, f64)> = (0..200_000)
            .map(|_| {
                (
                    (2.0 * rng.f64() - 1.0).asin().to_degrees(),
                    360.0 * rng.f64() - 180.0,
                )
            })
            .collect();
        let (n, fallback, wrong, _) = compare(18, &uniform, Z_MARGIN);
        assert_eq!(wrong, 0);
        assert!(
            fallback < n / 1000,
            "{fallback} of {n} uniform points fell back"
        );
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
