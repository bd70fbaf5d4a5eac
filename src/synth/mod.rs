//! Synthetic ATL06-like granules for the demo, the tests and the benchmarks.
//!
//! [`generate`] writes `N` HDF5 files shaped like ICESat-2 ATL06 land-ice granules
//! (REFERENCE.md section 1) and a granule catalog of the parent cells they cross
//! (section 3), so the whole pipeline can run without NASA credentials or network.
//!
//! # What a granule looks like
//!
//! - File name `ATL06_YYYYMMDDhhmmss_ttttccnn_007_01.h5` (rgt, cycle, granule region).
//! - Six beams `gt1l .. gt3r`; the pairs are 3.3 km apart across track, the beams of a
//!   pair 90 m apart. Every beam has `rows_per_beam` segments 20 m apart along a great
//!   circle of a 92-degree-inclination orbit (tracks reach -88 degrees, like ICESat-2's).
//! - `gtXY/land_ice_segments/` with `latitude`, `longitude`, `delta_time` (f64), `h_li`,
//!   `h_li_sigma` (f32), `atl06_quality_summary` (i8), `segment_id` (i32) and the
//!   sub-groups `bias_correction`, `dem`, `fit_statistics`, `geophysical`,
//!   `ground_track`; sibling groups `residual_histogram` and `segment_quality`; root
//!   groups `ancillary_data`, `orbit_info`, `METADATA`.
//! - Every 1-D dataset is chunked by 10000 (partial last chunk), deflate level 6 (shuffle
//!   first for floats), unlimited max shape, with `units`, `long_name`, `description`,
//!   `_FillValue` and, where geolocated, `coordinates` attributes. Fill values are
//!   float32 max for f32, float64 max for f64 and the type's max for integers, as in ATL06.
//! - Heights follow a smooth ice surface ([`surface_height`]) plus 0.1 m Gaussian noise;
//!   `h_li_sigma` is 0.02-0.5 m. About 5 % of rows have `atl06_quality_summary = 1` and a
//!   third of those have `h_li` and `h_li_sigma` set to the fill value.
//!
//! # Determinism
//!
//! Granule `i` draws from ChaCha8 stream `i` of the seed, so the same seed and options give
//! byte-identical granules whatever the thread count. Only `catalog.json` differs between
//! runs (its `created` time and the absolute paths).

mod geometry;
mod granule;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indexmap::IndexMap;

use crate::catalog::{Catalog, CatalogError, CatalogMetadata};

pub use granule::{BEAM_SPACING_M, CHUNK_LEN, PAIR_SPACING_M, SEGMENT_SPACING_M};

/// Beam group names of every synthetic granule, in file order.
pub const BEAM_NAMES: [&str; 6] = ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"];

/// Errors of [`generate`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// An option is out of range.
    #[error("invalid {option}: got {value}, expected {expected}")]
    InvalidOption {
        /// The option (flag name without dashes).
        option: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// No ICESat-2 ground track passes through the point (beyond 88 degrees).
    #[error(
        "no ground track passes through lat {lat}, lon {lon}: ICESat-2's 92-degree orbit reaches latitudes up to +-88 degrees"
    )]
    Unreachable {
        /// Latitude, degrees.
        lat: f64,
        /// Longitude, degrees.
        lon: f64,
    },
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The HDF5 encoder rejected a granule (a bug in this module).
    #[error("{path}: hdf5 encoding failed: {source}")]
    Hdf5 {
        /// The granule being written.
        path: PathBuf,
        /// The cause.
        source: hdf5_writer::Error,
    },
    /// A point could not be converted to a morton cell.
    #[error("granule {path}: cannot compute the order-{order} cell of lat {lat}, lon {lon}: {message}")]
    Cell {
        /// The granule.
        path: PathBuf,
        /// Latitude, degrees.
        lat: f64,
        /// Longitude, degrees.
        lon: f64,
        /// The parent order.
        order: u8,
        /// The cause.
        message: String,
    },
    /// The catalog could not be written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Where granules go when no `--through` point is given.
///
/// Each granule's track crosses a random point of the region (uniform in area); the
/// track then runs `rows_per_beam * 20 m` and may leave the region.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Region {
    /// West Antarctica: latitudes -85 to -72, longitudes -150 to -60 (the default).
    #[default]
    WestAntarctica,
    /// All of Antarctica: latitudes -88 to -62, all longitudes.
    Antarctica,
    /// A latitude/longitude box in degrees; `lon_min > lon_max` crosses the antimeridian.
    BBox {
        /// Southern edge.
        lat_min: f64,
        /// Northern edge.
        lat_max: f64,
        /// Western edge.
        lon_min: f64,
        /// Eastern edge.
        lon_max: f64,
    },
}

impl Region {
    /// `(lat_min, lat_max, lon_min, lon_max)` in degrees.
    pub fn bounds(&self) -> (f64, f64, f64, f64) {
        match *self {
            Self::WestAntarctica => (-85.0, -72.0, -150.0, -60.0),
            Self::Antarctica => (-88.0, -62.0, -180.0, 180.0),
            Self::BBox {
                lat_min,
                lat_max,
                lon_min,
                lon_max,
            } => (lat_min, lat_max, lon_min, lon_max),
        }
    }
}

impl FromStr for Region {
    type Err = String;

    /// `west-antarctica`, `antarctica`, or `lat_min,lat_max,lon_min,lon_max`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "west-antarctica" | "wais" => return Ok(Self::WestAntarctica),
            "antarctica" => return Ok(Self::Antarctica),
            _ => {}
        }
        let parts: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("got {s:?}, expected west-antarctica, antarctica or lat_min,lat_max,lon_min,lon_max"))?;
        let [lat_min, lat_max, lon_min, lon_max] = parts[..] else {
            return Err(format!(
                "got {} numbers in {s:?}, expected 4: lat_min,lat_max,lon_min,lon_max",
                parts.len()
            ));
        };
        if !(-90.0..=90.0).contains(&lat_min) || !(-90.0..=90.0).contains(&lat_max) || lat_min >= lat_max {
            return Err(format!(
                "got latitudes {lat_min},{lat_max}, expected -90 <= lat_min < lat_max <= 90"
            ));
        }
        if !(-180.0..=180.0).contains(&lon_min) || !(-180.0..=180.0).contains(&lon_max) {
            return Err(format!("got longitudes {lon_min},{lon_max}, expected both in [-180, 180]"));
        }
        Ok(Self::BBox {
            lat_min,
            lat_max,
            lon_min,
            lon_max,
        })
    }
}

/// Options of [`generate`]; the `Default` is the benchmark set's shape with 10 granules.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthOptions {
    /// Output directory (created if missing); granules and `catalog.json` go here.
    pub out_dir: PathBuf,
    /// Number of granules.
    pub granules: usize,
    /// Random seed; the same seed gives byte-identical granules.
    pub seed: u64,
    /// Segments per beam (20 m apart): 60000 is a 1200 km track.
    pub rows_per_beam: usize,
    /// `(lat, lon)` every granule's track passes within 3 km of (overrides `region`).
    pub through: Option<(f64, f64)>,
    /// Where tracks go when `through` is not set.
    pub region: Region,
    /// HEALPix order of the catalog's cells.
    pub parent_order: u8,
}

impl Default for SynthOptions {
    fn default() -> Self {
        Self {
            out_dir: PathBuf::from("synthetic"),
            granules: 10,
            seed: 0,
            rows_per_beam: 60_000,
            through: None,
            region: Region::default(),
            parent_order: 6,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct SynthOutput {
    /// Absolute paths of the granules, in generation order (= time order).
    pub granules: Vec<PathBuf>,
    /// `out_dir/catalog.json`.
    pub catalog_path: PathBuf,
    /// The catalog as written.
    pub catalog: Catalog,
    /// Segments over all beams and granules.
    pub rows_written: u64,
}

/// One finished granule, reported to the progress callback.
#[derive(Debug, Clone)]
pub struct GranuleWritten {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Segments over its six beams.
    pub rows: u64,
    /// Size of the file, bytes.
    pub bytes: u64,
}

/// The synthetic surface height (metres) at a point: what `h_li` scatters around with
/// 0.1 m noise. Tests use it to check aggregated means.
pub fn surface_height(lat: f64, lon: f64) -> f64 {
    granule::surface_m(lat, lon)
}

/// Writes the granules and the catalog. Sync and CPU-bound: call it from
/// `spawn_blocking` in async code.
pub fn generate(opts: &SynthOptions) -> Result<SynthOutput, SynthError> {
    generate_with_progress(opts, &|_| {})
}

/// [`generate`], calling `progress` once per finished granule (from worker threads).
pub fn generate_with_progress(
    opts: &SynthOptions,
    progress: &(dyn Fn(&GranuleWritten) + Sync),
) -> Result<SynthOutput, SynthError> {
    validate(opts)?;
    std::fs::create_dir_all(&opts.out_dir).map_err(|source| SynthError::Io {
        path: opts.out_dir.clone(),
        source,
    })?;
    let out_dir = std::fs::canonicalize(&opts.out_dir).map_err(|source| SynthError::Io {
        path: opts.out_dir.clone(),
        source,
    })?;

    struct Done {
        path: PathBuf,
        rows: u64,
        t0: f64,
        t_end: f64,
        cells: BTreeSet<i64>,
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Done, SynthError>>>> =
        Mutex::new((0..opts.granules).map(|_| None).collect());
    // Deflate dominates; one granule per core, pulled from a shared counter so a slow
    // granule never idles the other threads.
    let workers = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .min(opts.granules.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= opts.granules {
                        break;
                    }
                    let result = make_granule(opts, &out_dir, i).map(|(done, bytes)| {
                        progress(&GranuleWritten {
                            path: done.path.clone(),
                            rows: done.rows,
                            bytes,
                        });
                        done
                    });
                    let failed = result.is_err();
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                    if failed {
                        // Stop handing out work; the error is reported below.
                        next.store(opts.granules, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    fn make_granule(opts: &SynthOptions, out_dir: &Path, i: usize) -> Result<(Done, u64), SynthError> {
        let g = granule::simulate(opts, i)?;
        let path = out_dir.join(&g.file_name);
        let bytes = granule::encode(&g, opts.seed).map_err(|source| SynthError::Hdf5 {
            path: path.clone(),
            source,
        })?;
        // Write then rename, so an interrupted run never leaves a truncated granule under
        // its final name.
        let part = path.with_extension("h5.part");
        std::fs::write(&part, &bytes).map_err(|source| SynthError::Io {
            path: part.clone(),
            source,
        })?;
        std::fs::rename(&part, &path).map_err(|source| SynthError::Io {
            path: path.clone(),
            source,
        })?;
        let mut cells = BTreeSet::new();
        let mut rows = 0_u64;
        let mut t_end = g.t0;
        for beam in &g.beams {
            rows += beam.latitude.len() as u64;
            if let Some(&t) = beam.delta_time.last() {
                t_end = t_end.max(t);
            }
            // Consecutive segments are 20 m apart and mostly share a cell; skip the set
            // insert for runs.
            let mut last: Option<i64> = None;
            for k in 0..beam.latitude.len() {
                // The catalog lists cells with usable data: rows the quality filter keeps.
                if beam.quality[k] != 0 {
                    continue;
                }
                let (lat, lon) = (beam.latitude[k], beam.longitude[k]);
                let cell = parent_cell(lat, lon, opts.parent_order).map_err(|message| SynthError::Cell {
                    path: path.clone(),
                    lat,
                    lon,
                    order: opts.parent_order,
                    message,
                })?;
                if last != Some(cell) {
                    cells.insert(cell);
                }
                last = Some(cell);
            }
        }
        Ok((
            Done {
                path,
                rows,
                t0: g.t0,
                t_end,
                cells,
            },
            bytes.len() as u64,
        ))
    }

    let slots = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut done = Vec::with_capacity(opts.granules);
    for slot in slots {
        match slot {
            Some(Ok(d)) => done.push(d),
            Some(Err(e)) => return Err(e),
            // Skipped because another granule failed; that error comes first above
            // unless it sits later in the list, so keep looking.
            None => {}
        }
    }
    if done.len() != opts.granules {
        // Unreachable in practice: every missing slot has a recorded error.
        return Err(SynthError::InvalidOption {
            option: "granules",
            value: opts.granules.to_string(),
            expected: "every granule to be written (a worker thread stopped early)",
        });
    }

    let mut by_cell: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for d in &done {
        for &cell in &d.cells {
            by_cell.entry(cell).or_default().push(d.path.display().to_string());
        }
    }
    let t_start = done.iter().map(|d| d.t0).fold(f64::INFINITY, f64::min);
    let t_stop = done.iter().map(|d| d.t_end).fold(f64::NEG_INFINITY, f64::max);
    let created_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (lat_min, lat_max, lon_min, lon_max) = opts.region.bounds();
    let catalog = Catalog {
        metadata: CatalogMetadata {
            short_name: "ATL06".into(),
            version: "007".into(),
            provider: "synthetic".into(),
            start_date: if done.is_empty() { String::new() } else { granule::date_iso(t_start) },
            end_date: if done.is_empty() { String::new() } else { granule::date_iso(t_stop) },
            parent_order: opts.parent_order,
            total_granules: done.len(),
            total_cells: by_cell.len(),
            created: granule::unix_datetime_iso(created_unix),
            cycle: None,
            bbox: if opts.through.is_none() { Some(vec![lon_min, lat_min, lon_max, lat_max]) } else { None },
            polygon: None,
        },
        catalog: by_cell
            .into_iter()
            .map(|(cell, urls)| (cell.to_string(), urls))
            .collect::<IndexMap<_, _>>(),
        warnings: Vec::new(),
    };
    let catalog_path = out_dir.join("catalog.json");
    catalog.write(&catalog_path)?;
    Ok(SynthOutput {
        rows_written: done.iter().map(|d| d.rows).sum(),
        granules: done.into_iter().map(|d| d.path).collect(),
        catalog_path,
        catalog,
    })
}

/// The parent cell (decimal morton) of a point, on the sphere like the reference.
fn parent_cell(lat: f64, lon: f64, order: u8) -> Result<i64, String> {
    magg_udfs::morton::from_lat_lon(lat, lon, order, magg_udfs::healpix::LatitudeMode::Sphere)
        .map_err(|e| e.to_string())
}

fn validate(opts: &SynthOptions) -> Result<(), SynthError> {
    if opts.rows_per_beam == 0 || opts.rows_per_beam > 2_000_000 {
        return Err(SynthError::InvalidOption {
            option: "rows-per-beam",
            value: opts.rows_per_beam.to_string(),
            expected: "1 to 2000000 (a 40000 km track)",
        });
    }
    if opts.parent_order > 18 {
        return Err(SynthError::InvalidOption {
            option: "parent-order",
            value: opts.parent_order.to_string(),
            expected: "0 to 18",
        });
    }
    if let Some((lat, lon)) = opts.through {
        if !(-180.0..=180.0).contains(&lon) || !lat.is_finite() {
            return Err(SynthError::InvalidOption {
                option: "through",
                value: format!("{lat},{lon}"),
                expected: "LAT,LON with lon in [-180, 180]",
            });
        }
        if lat.abs() > geometry::MAX_TRACK_LAT_DEG - 0.01 {
            return Err(SynthError::Unreachable { lat, lon });
        }
    } else {
        let (lat_min, lat_max, ..) = opts.region.bounds();
        let limit = geometry::MAX_TRACK_LAT_DEG - 0.5;
        if lat_min.max(-limit) >= lat_max.min(limit) {
            return Err(SynthError::InvalidOption {
                option: "region",
                value: format!("{:?}", opts.region),
                expected: "a region with latitudes inside +-87.5 degrees (ICESat-2 tracks reach 88)",
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
