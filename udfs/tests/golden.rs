//! Readers for the golden vectors written by `tests/golden/generate.py`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Under the crate's directory as the test runner reports it when the test runs (cargo
/// and nextest set `CARGO_MANIFEST_DIR`), not as it was when the binary was built: with
/// one target dir shared by several clones, cargo may reuse a binary built in another.
pub fn path(name: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/golden")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// `k:value;k:value` -> map.
fn exceptions<T: std::str::FromStr>(field: &str) -> BTreeMap<u8, T>
where
    T::Err: std::fmt::Debug,
{
    field
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once(':').expect("k:v");
            (k.parse().unwrap(), v.parse().unwrap())
        })
        .collect()
}

/// One row of healpix_points.csv.
#[derive(Debug, Clone)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
    cell29: u64,
    cell_exc: BTreeMap<u8, u64>,
    mortie18: i64,
    mortie_exc: BTreeMap<u8, i64>,
    pub kind: String,
}

impl Point {
    /// healpy's nested id at `order` (0..=29).
    pub fn cell(&self, order: u8) -> u64 {
        self.cell_exc
            .get(&order)
            .copied()
            .unwrap_or(self.cell29 >> (2 * (29 - u32::from(order))))
    }

    /// mortie 0.6's geo2mort at `order` (1..=18).
    pub fn mortie(&self, order: u8) -> i64 {
        if let Some(m) = self.mortie_exc.get(&order) {
            return *m;
        }
        let a = self.mortie18.unsigned_abs() / 10_u64.pow(u32::from(18 - order));
        if self.mortie18 < 0 {
            -(a as i64)
        } else {
            a as i64
        }
    }

    /// Points away from any cell boundary (random draws).
    pub fn is_random(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "random" | "antarctic" | "greenland" | "theta-switch"
        )
    }
}

pub fn points() -> Vec<Point> {
    let text = read("healpix_points.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("lat,lon,cell29,cell_exc,mortie18,mortie_exc,kind")
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 7, "{line}");
            Point {
                lat: f[0].parse().unwrap(),
                lon: f[1].parse().unwrap(),
                cell29: f[2].parse().unwrap(),
                cell_exc: exceptions(f[3]),
                mortie18: f[4].parse().unwrap(),
                mortie_exc: exceptions(f[5]),
                kind: f[6].to_string(),
            }
        })
        .collect()
}

/// (order, cell, lat, lon) from healpy.pix2ang.
pub fn centers() -> Vec<(u8, u64, f64, f64)> {
    let text = read("healpix_centers.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("order,cell,lat,lon"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

/// (geodetic, authalic) latitude pairs, degrees.
pub fn authalic() -> Vec<(f64, f64)> {
    let text = read("authalic.csv");
    text.lines()
        .skip(1)
        .map(|line| {
            let (a, b) = line.split_once(',').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect()
}

/// One group of aggregates.json.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub float32: bool,
    pub x: Vec<f64>,
    pub w: Option<Vec<f64>>,
    pub quantile: Vec<(f64, f64)>,
    pub median: f64,
    pub var: f64,
    pub std: f64,
    /// numpy's var / std with ddof=1 (NaN for one value).
    pub var_ddof1: f64,
    pub std_ddof1: f64,
    pub weighted_mean: Option<f64>,
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_str()
        .expect("numbers are written as repr strings")
        .parse()
        .unwrap()
}

pub fn groups() -> Vec<Group> {
    let json: serde_json::Value = serde_json::from_str(&read("aggregates.json")).unwrap();
    json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let np = &g["numpy"];
            Group {
                name: g["name"].as_str().unwrap().to_string(),
                float32: g["dtype"] == "float32",
                x: g["x"].as_array().unwrap().iter().map(num).collect(),
                w: g["w"].as_array().map(|w| w.iter().map(num).collect()),
                quantile: np["quantile"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(q, v)| (q.parse().unwrap(), num(v)))
                    .collect(),
                median: num(&np["median"]),
                var: num(&np["var"]),
                std: num(&np["std"]),
                var_ddof1: num(&np["var_ddof1"]),
                std_ddof1: num(&np["std_ddof1"]),
                weighted_mean: np.get("weighted_mean").map(num),
            }
        })
        .collect()
}
