//! Geodetic <-> authalic latitude on the WGS84 ellipsoid.
//!
//! The authalic latitude `beta` of a geodetic latitude `phi` is the latitude on the sphere
//! of equal area (radius `R_q = 6 371 007.181 m` for WGS84) that encloses the same area
//! between it and the equator:
//!
//! ```text
//! q(phi)   = (1 - e^2) * ( sin(phi) / (1 - e^2 sin^2(phi)) + atanh(e sin(phi)) / e )
//! sin(beta) = q(phi) / q(90 deg)
//! ```
//!
//! Hashing `beta` instead of `phi` makes HEALPix cells equal-area on the ellipsoid, which is
//! what a DGGS block declaring `ellipsoid: WGS84` promises. The two latitudes agree at the
//! equator and the poles; the largest difference is **0.1282974 degrees at
//! phi = 45.0545 degrees, 14 266 m on the authalic sphere (14 258 m along the WGS84
//! meridian)**, about 9 cells at order 12 (asserted in the tests below).
//!
//! Both directions are exact formulas evaluated so that neither the equator nor the poles
//! lose precision (`sin(beta)` from `q`, `cos(beta)` from `q(90) - q` written without
//! cancellation), accurate to about 1e-15 degrees against a 50-digit evaluation
//! (`tests/golden/authalic.csv`).

use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};
use std::sync::LazyLock;

/// WGS84 semi-major axis, metres.
pub const WGS84_A: f64 = 6_378_137.0;
/// WGS84 inverse flattening.
pub const WGS84_INV_F: f64 = 298.257_223_563;

struct Ellipsoid {
    e: f64,
    e2: f64,
    /// `q` at the pole.
    qp: f64,
}

static WGS84: LazyLock<Ellipsoid> = LazyLock::new(|| {
    let f = 1.0 / WGS84_INV_F;
    let e2 = f * (2.0 - f);
    let e = e2.sqrt();
    let qp = 1.0 + (1.0 - e2) * e.atanh() / e;
    Ellipsoid { e, e2, qp }
});

/// Radius of the WGS84 authalic sphere (same area as the ellipsoid), metres.
pub fn authalic_radius() -> f64 {
    WGS84_A * (WGS84.qp / 2.0).sqrt()
}

/// Authalic latitude and its cosine, radians, for `|phi| <= pi/2`.
#[inline]
fn beta_and_cos(phi: f64) -> (f64, f64) {
    let Ellipsoid { e, e2, qp } = *WGS84;
    let a = phi.abs();
    let s = a.sin();
    // 1 - sin(phi) without cancellation near the pole.
    let h = (FRAC_PI_4 - 0.5 * a).sin();
    let one_minus_s = 2.0 * h * h;
    let one_minus_e2s2 = 1.0 - e2 * s * s;
    let q = (1.0 - e2) * (s / one_minus_e2s2 + (e * s).atanh() / e);
    // q(90) - q(phi) = (1-s)(1+e^2 s)/(1-e^2 s^2) + (1-e^2)/e atanh(e(1-s)/(1-e^2 s)).
    let qp_minus_q = one_minus_s * (1.0 + e2 * s) / one_minus_e2s2
        + (1.0 - e2) / e * (e * one_minus_s / (1.0 - e2 * s)).atanh();
    let sin_beta = q / qp;
    let d = qp_minus_q / qp; // 1 - sin(beta)
    let cos_beta = (d * (2.0 - d)).max(0.0).sqrt();
    (sin_beta.atan2(cos_beta).copysign(phi), cos_beta)
}

/// Geodetic to authalic latitude, radians (`|phi| <= pi/2`).
#[inline]
pub fn authalic_from_geodetic_rad(phi: f64) -> f64 {
    beta_and_cos(phi).0.clamp(-FRAC_PI_2, FRAC_PI_2)
}

/// Authalic to geodetic latitude, radians (`|beta| <= pi/2`): the inverse series as a
/// start, then two Newton steps on the exact forward formula.
pub fn geodetic_from_authalic_rad(beta: f64) -> f64 {
    if beta.abs() >= FRAC_PI_2 {
        return FRAC_PI_2.copysign(beta);
    }
    let e2 = WGS84.e2;
    let (e4, e6) = (e2 * e2, e2 * e2 * e2);
    let mut phi = beta
        + (e2 / 3.0 + 31.0 * e4 / 180.0 + 517.0 * e6 / 5040.0) * (2.0 * beta).sin()
        + (23.0 * e4 / 360.0 + 251.0 * e6 / 3780.0) * (4.0 * beta).sin()
        + (761.0 * e6 / 45360.0) * (6.0 * beta).sin();
    for _ in 0..2 {
        let (b, cos_b) = beta_and_cos(phi);
        let s = phi.sin();
        let w = 1.0 - e2 * s * s;
        // d(beta)/d(phi) = q'(phi) / (q_p cos(beta)), q' = 2 (1-e^2) cos(phi) / w^2.
        let slope = 2.0 * (1.0 - e2) * phi.cos() / (w * w) / (WGS84.qp * cos_b);
        if !slope.is_finite() || slope == 0.0 {
            break;
        }
        phi -= (b - beta) / slope;
    }
    phi.clamp(-FRAC_PI_2, FRAC_PI_2)
}

/// Geodetic to authalic latitude, degrees (`-90..=90`).
pub fn authalic_latitude(lat_deg: f64) -> f64 {
    authalic_from_geodetic_rad(lat_deg.to_radians())
        .to_degrees()
        .clamp(-90.0, 90.0)
}

/// Authalic to geodetic latitude, degrees (`-90..=90`).
pub fn geodetic_latitude(authalic_deg: f64) -> f64 {
    geodetic_from_authalic_rad(authalic_deg.to_radians())
        .to_degrees()
        .clamp(-90.0, 90.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Snyder (1987) eq. 3-18, accurate to O(e^8) ~ 1e-10 rad.
    fn series(phi: f64) -> f64 {
        let e2 = WGS84.e2;
        let (e4, e6) = (e2 * e2, e2 * e2 * e2);
        phi - (e2 / 3.0 + 31.0 * e4 / 180.0 + 59.0 * e6 / 560.0) * (2.0 * phi).sin()
            + (17.0 * e4 / 360.0 + 61.0 * e6 / 1260.0) * (4.0 * phi).sin()
            - (383.0 * e6 / 45360.0) * (6.0 * phi).sin()
    }

    #[test]
    fn authalic_radius_is_wgs84s() {
        // 6 371 007.1809 m (NGA / Moritz, Geodetic Reference System 1980 table).
        assert!(
            (authalic_radius() - 6_371_007.180_918_5).abs() < 1e-4,
            "{}",
            authalic_radius()
        );
    }

    #[test]
    fn agrees_with_the_series() {
        for i in -900..=900 {
            let phi = (f64::from(i) * 0.1).to_radians();
            let d = authalic_from_geodetic_rad(phi) - series(phi);
            assert!(d.abs() < 1e-9, "phi {i} diff {d}");
        }
    }

    #[test]
    fn equator_poles_and_symmetry() {
        assert_eq!(authalic_latitude(0.0), 0.0);
        assert_eq!(authalic_latitude(90.0), 90.0);
        assert_eq!(authalic_latitude(-90.0), -90.0);
        assert_eq!(geodetic_latitude(90.0), 90.0);
        for lat in [1e-12, 0.3, 12.0, 45.0, 71.0, 89.999_999] {
            assert_eq!(authalic_latitude(-lat), -authalic_latitude(lat));
            // The authalic latitude lies between the equator and the geodetic one.
            let b = authalic_latitude(lat);
            assert!(b > 0.0 && b <= lat, "{lat} -> {b}");
        }
        // Relative precision survives near the equator.
        let tiny = 1e-9;
        let ratio = authalic_latitude(tiny) / tiny;
        let slope_at_equator = 2.0 * (1.0 - WGS84.e2) / WGS84.qp;
        assert!((ratio - slope_at_equator).abs() < 1e-12, "{ratio}");
    }

    #[test]
    fn round_trip() {
        let mut worst: f64 = 0.0;
        for i in -90_000..=90_000 {
            let lat = f64::from(i) * 0.001;
            let back = geodetic_latitude(authalic_latitude(lat));
            worst = worst.max((back - lat).abs());
        }
        assert!(worst < 1e-12, "worst round trip error {worst} deg");
    }

    /// The figure quoted in the module docs and in docs/udfs.md.
    #[test]
    fn largest_shift_is_14_3_km() {
        let (mut worst, mut at) = (0.0_f64, 0.0);
        for i in 0..=900_000 {
            let lat = f64::from(i) * 1e-4;
            let d = lat - authalic_latitude(lat);
            if d > worst {
                (worst, at) = (d, lat);
            }
        }
        let metres = worst.to_radians() * authalic_radius();
        assert!((worst - 0.128_297_4).abs() < 1e-6, "max shift {worst} deg");
        assert!((at - 45.0545).abs() < 2e-3, "at {at}");
        assert!((metres - 14_266.0).abs() < 1.0, "{metres} m");
        // docs/udfs.md: 0.0643 degrees (7.1 km) at 75 S.
        let at_75s = authalic_latitude(-75.0) + 75.0;
        assert!((at_75s - 0.064_25).abs() < 1e-5, "{at_75s}");
        assert!((at_75s.to_radians() * authalic_radius() - 7_145.0).abs() < 1.0);
    }
}
