//! Ground-track geometry on the sphere.
//!
//! ICESat-2 flies a near-polar orbit (inclination 92 degrees), so every reference ground
//! track is, to the precision a synthetic data set needs, a great circle whose orbit pole
//! makes 92 degrees with the Earth's axis; its southernmost point is at -88 degrees. The
//! six beams are parallel small circles offset across track from that great circle. All of
//! this is done with unit vectors, which have no trouble at the pole (longitude and
//! latitude would).

use std::f64::consts::{FRAC_PI_2, PI};

/// Mean Earth radius (IUGG), metres.
pub(crate) const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// ICESat-2 orbit inclination, degrees.
pub(crate) const INCLINATION_DEG: f64 = 92.0;

/// Highest latitude (absolute value) a ground track reaches, degrees.
pub(crate) const MAX_TRACK_LAT_DEG: f64 = 180.0 - INCLINATION_DEG;

/// A 3-D vector; unit vectors are points on the sphere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Vec3 {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) z: f64,
}

impl Vec3 {
    pub(crate) const fn new(x: f64, y: f64, z: f64) -> Self {
        Self { x, y, z }
    }

    /// The unit vector of a geographic point (degrees, spherical latitude).
    pub(crate) fn from_lat_lon(lat_deg: f64, lon_deg: f64) -> Self {
        let (lat, lon) = (lat_deg.to_radians(), lon_deg.to_radians());
        Self::new(lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin())
    }

    /// Latitude and longitude in degrees, longitude in [-180, 180].
    pub(crate) fn lat_lon(self) -> (f64, f64) {
        let lat = self.z.clamp(-1.0, 1.0).asin().to_degrees();
        let lon = self.y.atan2(self.x).to_degrees();
        (lat, lon)
    }

    pub(crate) fn dot(self, o: Self) -> f64 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }

    pub(crate) fn cross(self, o: Self) -> Self {
        Self::new(
            self.y * o.z - self.z * o.y,
            self.z * o.x - self.x * o.z,
            self.x * o.y - self.y * o.x,
        )
    }

    pub(crate) fn scale(self, k: f64) -> Self {
        Self::new(self.x * k, self.y * k, self.z * k)
    }

    pub(crate) fn add(self, o: Self) -> Self {
        Self::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }

    pub(crate) fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }

    pub(crate) fn normalized(self) -> Self {
        self.scale(1.0 / self.norm())
    }
}

/// Great-circle distance between two geographic points, metres (tests measure beam and
/// segment spacing with it).
#[cfg(test)]
pub(crate) fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let a = Vec3::from_lat_lon(lat1, lon1);
    let b = Vec3::from_lat_lon(lat2, lon2);
    // atan2 of |a x b| and a.b stays accurate for the 20 m spacings we measure, where
    // acos(a.b) would lose most of its digits.
    a.cross(b).norm().atan2(a.dot(b)) * EARTH_RADIUS_M
}

/// One reference ground track: a great circle with the ICESat-2 inclination.
///
/// Positions are parametrised by the argument of latitude `u` (radians from the ascending
/// node, increasing in the direction of flight), so `u * R` is the along-track distance
/// `x_atc` of ATL06.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroundTrack {
    /// Ascending node (u = 0).
    node: Vec3,
    /// Position a quarter orbit later (u = pi/2): the northernmost point.
    north: Vec3,
    /// Orbit pole; positive across-track offsets move towards it.
    pole: Vec3,
}

impl GroundTrack {
    /// The track whose orbit pole has longitude `pole_lon_rad`.
    pub(crate) fn with_pole_longitude(pole_lon_rad: f64) -> Self {
        let inc = INCLINATION_DEG.to_radians();
        let pole = Vec3::new(
            inc.sin() * pole_lon_rad.cos(),
            inc.sin() * pole_lon_rad.sin(),
            inc.cos(),
        );
        // The node lies on the equator and in the orbit plane: perpendicular to both the
        // Earth's axis and the orbit pole. With this orientation `pole x node` points
        // north, so increasing u flies north through the node.
        let node = Vec3::new(0.0, 0.0, 1.0).cross(pole).normalized();
        let north = pole.cross(node);
        Self { node, north, pole }
    }

    /// A track whose centre line passes `offset_m` across track from the point, or `None`
    /// when the point is beyond the latitude a 92-degree orbit reaches.
    ///
    /// At a given point a fixed-inclination orbit crosses in exactly two directions (one
    /// ascending, one descending pass); `ascending` picks which.
    pub(crate) fn through(lat_deg: f64, lon_deg: f64, offset_m: f64, ascending: bool) -> Option<Self> {
        let inc = INCLINATION_DEG.to_radians();
        let (lat, lon) = (lat_deg.to_radians(), lon_deg.to_radians());
        // pole . P = sin(i) cos(lat) cos(alpha - lon) + cos(i) sin(lat) must equal the
        // sine of the (angular) across-track offset of P from the centre line.
        let target = (offset_m / EARTH_RADIUS_M).sin();
        let c = (target - inc.cos() * lat.sin()) / (inc.sin() * lat.cos());
        if !(-1.0..=1.0).contains(&c) {
            return None;
        }
        let delta = c.acos();
        // Both roots give a track through P; they differ in whether P is passed heading
        // north or south. Try one and flip if its direction is not the one asked for.
        for alpha in [lon + delta, lon - delta] {
            let track = Self::with_pole_longitude(alpha);
            let u = track.argument_of_latitude(Vec3::from_lat_lon(lat_deg, lon_deg));
            let heading_north = u.cos() > 0.0;
            if heading_north == ascending {
                return Some(track);
            }
        }
        Some(Self::with_pole_longitude(lon + delta))
    }

    /// The argument of latitude of the point of the track closest to `p`, in [0, 2 pi).
    pub(crate) fn argument_of_latitude(&self, p: Vec3) -> f64 {
        let u = p.dot(self.north).atan2(p.dot(self.node));
        if u < 0.0 { u + 2.0 * PI } else { u }
    }

    /// The point at argument of latitude `u`, moved `offset_m` across track (towards the
    /// orbit pole when positive). Offset points trace a small circle parallel to the
    /// track, which is how the fixed beam geometry of ATLAS projects on the ground.
    pub(crate) fn point(&self, u: f64, offset_m: f64) -> Vec3 {
        let on_track = self.node.scale(u.cos()).add(self.north.scale(u.sin()));
        let d = offset_m / EARTH_RADIUS_M;
        on_track.scale(d.cos()).add(self.pole.scale(d.sin()))
    }

    /// Whether the track is heading south at `u` (descending pass).
    pub(crate) fn descending_at(u: f64) -> bool {
        u.cos() < 0.0
    }
}

/// Azimuthal coordinates around the South Pole, metres: distance from the pole along the
/// surface and the EPSG:3031 axis orientation (x towards 90 E, y towards 0 E). Used only
/// to shape the synthetic ice surface, so an equidistant projection (smooth everywhere
/// but at the North Pole) is as good as polar stereographic.
pub(crate) fn south_polar_xy(lat_deg: f64, lon_deg: f64) -> (f64, f64) {
    let rho = (lat_deg.to_radians() + FRAC_PI_2) * EARTH_RADIUS_M;
    let lon = lon_deg.to_radians();
    (rho * lon.sin(), rho * lon.cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_reaches_minus_88() {
        let track = GroundTrack::with_pole_longitude(0.3);
        let (lat, _) = track.point(1.5 * PI, 0.0).lat_lon();
        assert!((lat + 88.0).abs() < 1e-9, "southernmost latitude {lat}");
        let (lat, _) = track.point(0.0, 0.0).lat_lon();
        assert!(lat.abs() < 1e-9, "node latitude {lat}");
        let (lat, _) = track.point(0.1, 0.0).lat_lon();
        assert!(lat > 0.0, "u > 0 must fly north, got lat {lat}");
    }

    #[test]
    fn through_passes_at_the_offset_both_ways() {
        for ascending in [true, false] {
            let track = GroundTrack::through(-75.0, -100.0, 1500.0, ascending).expect("reachable");
            let p = Vec3::from_lat_lon(-75.0, -100.0);
            let u = track.argument_of_latitude(p);
            assert_eq!(GroundTrack::descending_at(u), !ascending);
            // The centre line passes 1500 m from P: P sits at +1500 m across track.
            let q = track.point(u, 1500.0);
            let (lat, lon) = q.lat_lon();
            let d = distance_m(lat, lon, -75.0, -100.0);
            assert!(d < 0.01, "offset point {d} m from P");
        }
        assert!(GroundTrack::through(-89.0, 0.0, 0.0, true).is_none());
    }
}
