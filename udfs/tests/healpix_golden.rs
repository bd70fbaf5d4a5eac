//! The pure-Rust core against healpy, mortie 0.6 and mpmath (golden vectors).

use std::collections::BTreeMap;

use magg_udfs::healpix::{self, LatitudeMode};
use magg_udfs::morton;

use crate::golden::{self, Point};

const SPHERE: LatitudeMode = LatitudeMode::Sphere;

#[test]
fn cells_equal_healpy_at_every_order() {
    let points = golden::points();
    assert!(points.len() > 5000);
    let mut compared = 0;
    for p in &points {
        for order in 0..=29 {
            let got = healpix::cell(p.lat, p.lon, order, SPHERE).unwrap();
            assert_eq!(
                got,
                p.cell(order),
                "lat {:?} lon {:?} order {order} ({})",
                p.lat,
                p.lon,
                p.kind
            );
            compared += 1;
        }
    }
    // Vectorised kernel, same answers.
    let lat: Vec<f64> = points.iter().map(|p| p.lat).collect();
    let lon: Vec<f64> = points.iter().map(|p| p.lon).collect();
    for order in [0, 1, 6, 12, 18, 29] {
        let mut out = Vec::new();
        healpix::cells_into(&lat, &lon, order, SPHERE, &mut out).unwrap();
        let want: Vec<u64> = points.iter().map(|p| p.cell(order)).collect();
        assert_eq!(out, want, "order {order}");
    }
    assert_eq!(compared, points.len() * 30);
}

#[test]
fn morton_equals_encoded_healpy_and_mortie_away_from_boundaries() {
    let points = golden::points();
    // (kind) -> number of (point, order) pairs where mortie 0.6 picked another cell.
    let mut disagreements: BTreeMap<String, usize> = BTreeMap::new();
    for p in &points {
        for order in 1..=18 {
            let ours = morton::from_lat_lon(p.lat, p.lon, order, SPHERE).unwrap();
            assert_eq!(ours, morton::from_nested(p.cell(order), order).unwrap());
            let theirs = p.mortie(order);
            // mortie's own values decode to its cells and encode back (its round trip).
            let (cell, k) = morton::to_nested(theirs).unwrap();
            assert_eq!(k, order);
            assert_eq!(morton::from_nested(cell, order).unwrap(), theirs);
            if ours != theirs {
                *disagreements.entry(p.kind.clone()).or_default() += 1;
                assert!(
                    !p.is_random(),
                    "mortie differs on a random point {p:?} at order {order}"
                );
            }
        }
    }
    eprintln!("(point, order) pairs where mortie 0.6 != healpy: {disagreements:?}");
    // The eight points the generator found where mortie disagrees with healpy at order 18.
    assert!(disagreements.get("mortie-disagrees").copied().unwrap_or(0) >= 8);
    // Points exactly on boundaries: the two libraries break ties differently.
    assert!(disagreements.get("corner").copied().unwrap_or(0) > 0);
    for kind in disagreements.keys() {
        assert!(
            [
                "corner",
                "near-corner",
                "pole",
                "antimeridian",
                "center",
                "mortie-disagrees"
            ]
            .contains(&kind.as_str()),
            "unexpected kind {kind}"
        );
    }
}

#[test]
fn morton_round_trips_at_every_order() {
    for p in golden::points() {
        let m18 = morton::from_lat_lon(p.lat, p.lon, 18, SPHERE).unwrap();
        for order in 1..=18 {
            let cell = p.cell(order);
            let m = morton::from_nested(cell, order).unwrap();
            assert_eq!(morton::to_nested(m).unwrap(), (cell, order));
            assert_eq!(morton::order_of(m).unwrap(), order);
            assert_eq!(morton::parent(m18, order).unwrap(), m, "{p:?}");
            assert_eq!(
                healpix::parent(p.cell(29), 29, order).unwrap(),
                p.cell(order)
            );
            let (first, last) = healpix::children_range(cell, order, 29).unwrap();
            assert!(first <= p.cell(29) && p.cell(29) <= last);
        }
    }
}

#[test]
fn centers_equal_healpy_bit_for_bit() {
    let centers = golden::centers();
    assert!(centers.len() > 1000);
    for (order, cell, lat, lon) in centers {
        let (got_lat, got_lon) = healpix::center(cell, order).unwrap();
        assert_eq!(
            (got_lat.to_bits(), got_lon.to_bits()),
            (lat.to_bits(), lon.to_bits()),
            "order {order} cell {cell}: ({got_lat}, {got_lon}) vs healpy ({lat}, {lon})"
        );
        // A centre lies in its own cell.
        assert_eq!(healpix::cell(lat, lon, order, SPHERE).unwrap(), cell);
    }
}

/// cdshealpix is what the reference's figures (REFERENCE.md section 9) were measured
/// with; it agrees with healpy on every point off a boundary but breaks ties on cell
/// boundaries differently, which is why the crate carries its own healpy-exact kernel.
#[test]
fn cdshealpix_agrees_with_healpy_except_on_boundaries() {
    let points = golden::points();
    let mut differ: BTreeMap<String, usize> = BTreeMap::new();
    for p in &points {
        for order in [0_u8, 3, 6, 12, 18, 29] {
            let cds = cdshealpix::nested::hash(order, p.lon.to_radians(), p.lat.to_radians());
            if cds != p.cell(order) {
                assert!(
                    !p.is_random(),
                    "cdshealpix differs on {p:?} at order {order}"
                );
                *differ.entry(p.kind.clone()).or_default() += 1;
            }
        }
    }
    eprintln!("(point, order) pairs where cdshealpix != healpy: {differ:?}");
    assert!(differ.get("corner").copied().unwrap_or(0) > 0);
    // The example in docs/udfs.md: the corner at latitude 0, longitude 45.
    assert_eq!(cdshealpix::nested::hash(0, 45_f64.to_radians(), 0.0), 0);
    assert_eq!(healpix::cell(0.0, 45.0, 0, SPHERE).unwrap(), 5);
}

#[test]
fn authalic_latitude_matches_50_digit_reference() {
    let rows = golden::authalic();
    assert!(rows.len() > 50);
    for (lat, want) in rows {
        let got = healpix::authalic_latitude(lat);
        assert!((got - want).abs() <= 1e-13, "{lat}: {got} vs {want}");
        let back = healpix::geodetic_latitude(want);
        assert!((back - lat).abs() <= 1e-12, "{want}: {back} vs {lat}");
    }
}

#[test]
fn authalic_mode_is_sphere_mode_on_the_authalic_latitude() {
    for p in golden::points()
        .iter()
        .filter(|p: &&Point| p.is_random())
        .take(1000)
    {
        let beta = healpix::authalic_latitude(p.lat);
        for order in [6, 12, 18] {
            let a = healpix::cell(p.lat, p.lon, order, LatitudeMode::Authalic).unwrap();
            let s = healpix::cell(beta, p.lon, order, SPHERE).unwrap();
            // Equal except for the rare point within a rounding error of a boundary.
            if a != s {
                assert!(order >= 18, "{p:?} order {order}");
            }
        }
    }
}
