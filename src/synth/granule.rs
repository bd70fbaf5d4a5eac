//! One synthetic granule: simulate the six beams, then encode them as an ATL06-shaped
//! HDF5 file.
//!
//! Everything random comes from one ChaCha stream per granule (seed, granule index), so a
//! granule's bytes depend only on the seed, its index and the options, never on which
//! thread made it or in which order.

use std::f64::consts::PI;

use hdf5_writer::{
    AttributeBuilder, DatasetBuilder, FILTER_DEFLATE, FILTER_SHUFFLE, FilterDescription,
    H5WriteElement, Hdf5Builder, UNLIMITED, WriteOptions,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::geometry::{EARTH_RADIUS_M, GroundTrack, MAX_TRACK_LAT_DEG, Vec3, south_polar_xy};
use super::{SynthError, SynthOptions};

/// Along-track segment spacing of ATL06, metres.
pub const SEGMENT_SPACING_M: f64 = 20.0;
/// Across-track distance between the three beam pairs, metres.
pub const PAIR_SPACING_M: f64 = 3300.0;
/// Across-track distance between the left and right beam of a pair, metres.
pub const BEAM_SPACING_M: f64 = 90.0;
/// Ground speed of the spot, m/s; 20 m segments are 2.86 ms apart.
const GROUND_SPEED_M_S: f64 = 7000.0;
/// HDF5 chunk length libhdf5 uses for ATL06 1-D datasets.
pub const CHUNK_LEN: u64 = 10_000;
/// ATL06's float fill value (float32 max), also used as the float64 fill.
pub(crate) const FILL_F32: f32 = f32::MAX;
/// Fill value of float64 datasets in ATL06 (double max).
pub(crate) const FILL_F64: f64 = f64::MAX;
/// Fraction of rows flagged `atl06_quality_summary = 1`.
const BAD_FRACTION: f64 = 0.05;
/// Fraction of flagged rows whose heights are the fill value.
const FILLED_FRACTION_OF_BAD: f64 = 1.0 / 3.0;
/// Seconds from 1970-01-01 to the ATLAS SDP epoch 2018-01-01T00:00:00Z.
const SDP_EPOCH_UNIX: i64 = 1_514_764_800;
/// First granule time, seconds since the SDP epoch: 2019-04-01T00:00:00Z (455 days; in
/// cycle 2, which runs 2019-01-12 to 2019-04-12).
const FIRST_GRANULE_T: f64 = 39_312_000.0;
/// Start of cycle 1 (2018-10-13, day 285), seconds since the SDP epoch, and the cycle
/// length (REFERENCE.md section 3).
const CYCLE1_T: f64 = 24_624_000.0;
const CYCLE_S: f64 = 91.0 * 86_400.0;
/// One orbit, seconds: consecutive synthetic granules start about one orbit apart.
const ORBIT_S: f64 = 5731.0;

/// Beam names in ATL06 order with their across-track offsets (metres, positive towards
/// the orbit pole): pairs at -3.3 km, 0, +3.3 km, left and right 90 m apart.
pub(crate) const BEAMS: [(&str, f64); 6] = [
    ("gt1l", -PAIR_SPACING_M - BEAM_SPACING_M / 2.0),
    ("gt1r", -PAIR_SPACING_M + BEAM_SPACING_M / 2.0),
    ("gt2l", -BEAM_SPACING_M / 2.0),
    ("gt2r", BEAM_SPACING_M / 2.0),
    ("gt3l", PAIR_SPACING_M - BEAM_SPACING_M / 2.0),
    ("gt3r", PAIR_SPACING_M + BEAM_SPACING_M / 2.0),
];

/// The simulated rows of one beam (the `land_ice_segments` columns and their sub-groups).
#[derive(Debug, Clone, Default)]
pub(crate) struct Beam {
    pub(crate) name: &'static str,
    pub(crate) strong: bool,
    pub(crate) latitude: Vec<f64>,
    pub(crate) longitude: Vec<f64>,
    pub(crate) delta_time: Vec<f64>,
    pub(crate) h_li: Vec<f32>,
    pub(crate) h_li_sigma: Vec<f32>,
    pub(crate) quality: Vec<i8>,
    pub(crate) segment_id: Vec<i32>,
    pub(crate) dem_h: Vec<f32>,
    pub(crate) n_fit_photons: Vec<i32>,
    pub(crate) h_robust_sprd: Vec<f32>,
    pub(crate) tide_ocean: Vec<f32>,
    pub(crate) fpb_mean_corr: Vec<f32>,
    pub(crate) x_atc: Vec<f64>,
    pub(crate) y_atc: Vec<f32>,
}

/// A simulated granule before encoding.
#[derive(Debug, Clone)]
pub(crate) struct Granule {
    pub(crate) file_name: String,
    pub(crate) rgt: u16,
    pub(crate) cycle: u8,
    pub(crate) region: u8,
    /// Start time, seconds since 2018-01-01.
    pub(crate) t0: f64,
    pub(crate) beams: Vec<Beam>,
}

/// The ice surface: an ice-sheet dome centred on the pole with large-scale undulations,
/// smooth at every scale the aggregation looks at, so cell means are predictable.
pub(crate) fn surface_m(lat: f64, lon: f64) -> f64 {
    let (x, y) = south_polar_xy(lat, lon);
    let (xk, yk) = (x / 1000.0, y / 1000.0);
    let rho = (xk * xk + yk * yk).sqrt();
    500.0
        + 2500.0 * (-(rho / 1800.0).powi(2)).exp()
        + 150.0 * (xk / 97.0).sin() * (yk / 131.0).cos()
        + 40.0 * ((xk - yk) / 23.0).sin()
}

/// A standard normal draw (Box-Muller); `rand_distr` is not worth a dependency here.
fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1], keeps ln finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

/// Picks the point a granule must cross: the `--through` point, or a random point of the
/// region (uniform in area), kept inside the latitudes a ground track reaches.
fn crossing_point(opts: &SynthOptions, rng: &mut ChaCha8Rng) -> (f64, f64) {
    if let Some(p) = opts.through {
        return p;
    }
    let (lat_min, lat_max, lon_min, lon_max) = opts.region.bounds();
    let limit = MAX_TRACK_LAT_DEG - 0.5;
    let (lat_min, lat_max) = (lat_min.max(-limit), lat_max.min(limit));
    let (s0, s1) = (lat_min.to_radians().sin(), lat_max.to_radians().sin());
    let lat = (s0 + (s1 - s0) * rng.random::<f64>()).asin().to_degrees();
    let lon_span = if lon_max >= lon_min { lon_max - lon_min } else { lon_max + 360.0 - lon_min };
    let mut lon = lon_min + lon_span * rng.random::<f64>();
    if lon > 180.0 {
        lon -= 360.0;
    }
    (lat, lon)
}

/// Simulates granule `index` of a synthetic set.
pub(crate) fn simulate(opts: &SynthOptions, index: usize) -> Result<Granule, SynthError> {
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    rng.set_stream(index as u64);

    // Granule-level draws first, in a fixed order, so they do not depend on row counts.
    let (lat_p, lon_p) = crossing_point(opts, &mut rng);
    // The centre line passes within 3 km of the point; with beams out to +-3.35 km the
    // point is always inside the beam bundle.
    let offset_m = (rng.random::<f64>() * 2.0 - 1.0) * 3000.0;
    let ascending = rng.random::<bool>();
    // Where along the granule the point falls: away from the ends so it is well inside.
    let fraction = 0.25 + 0.5 * rng.random::<f64>();
    let rgt = rng.random_range(1..=1387_u16);
    let jitter = (rng.random::<f64>() * 3000.0).floor();
    let t0 = FIRST_GRANULE_T + index as f64 * ORBIT_S + jitter;
    let track = GroundTrack::through(lat_p, lon_p, offset_m, ascending).ok_or(
        SynthError::Unreachable { lat: lat_p, lon: lon_p },
    )?;

    let rows = opts.rows_per_beam;
    let du = SEGMENT_SPACING_M / EARTH_RADIUS_M;
    let u_p = track.argument_of_latitude(Vec3::from_lat_lon(lat_p, lon_p));
    let u0 = (u_p - fraction * rows as f64 * du).rem_euclid(2.0 * PI);
    let u_mid = u0 + 0.5 * rows as f64 * du;
    let (lat_mid, _) = track.point(u_mid, 0.0).lat_lon();
    // ATL06 granule regions: 10 southbound into Antarctica, 11 over the pole, 12
    // northbound out of it (and 3-5 / 1,14 for the Arctic, which we mirror coarsely).
    let region = if lat_mid.abs() > 86.0 {
        if lat_mid < 0.0 { 11 } else { 4 }
    } else if GroundTrack::descending_at(u_mid) {
        if lat_mid < 0.0 { 10 } else { 3 }
    } else if lat_mid < 0.0 {
        12
    } else {
        5
    };
    let cycle = (((t0 - CYCLE1_T) / CYCLE_S).floor() as i64 + 1).clamp(1, 99) as u8;
    let dt = SEGMENT_SPACING_M / GROUND_SPEED_M_S;

    let mut beams = Vec::with_capacity(BEAMS.len());
    for (name, beam_offset) in BEAMS {
        // Spacecraft in backward orientation: the left beams are the strong ones.
        let strong = name.ends_with('l');
        let mut b = Beam {
            name,
            strong,
            ..Beam::default()
        };
        for v in [&mut b.latitude, &mut b.longitude, &mut b.delta_time, &mut b.x_atc] {
            v.reserve_exact(rows);
        }
        for k in 0..rows {
            let u = u0 + k as f64 * du;
            let (lat, lon) = track.point(u, beam_offset).lat_lon();
            b.latitude.push(lat);
            b.longitude.push(lon);
            b.delta_time.push(t0 + k as f64 * dt);
            b.x_atc.push(u * EARTH_RADIUS_M);
            // ATL03 segments are 20 m long and numbered from the ascending node.
            b.segment_id.push((u * EARTH_RADIUS_M / SEGMENT_SPACING_M).round() as i32 + 1);
            b.y_atc.push((beam_offset + 2.0 * gauss(&mut rng)) as f32);

            let truth = surface_m(lat, lon);
            let weak_factor = if strong { 1.0 } else { 1.6 };
            let sigma = (0.02 + 0.48 * rng.random::<f64>().powi(3)) * weak_factor;
            let sigma = sigma.min(0.5);
            let h = truth + 0.1 * gauss(&mut rng);
            let bad = rng.random::<f64>() < BAD_FRACTION;
            let filled = bad && rng.random::<f64>() < FILLED_FRACTION_OF_BAD;
            b.quality.push(i8::from(bad));
            if filled {
                b.h_li.push(FILL_F32);
                b.h_li_sigma.push(FILL_F32);
            } else if bad {
                // Flagged rows keep a height, but a poor one (cloud, first-photon bias).
                b.h_li.push((h + 3.0 * gauss(&mut rng)) as f32);
                b.h_li_sigma.push((sigma * 4.0).min(5.0) as f32);
            } else {
                b.h_li.push(h as f32);
                b.h_li_sigma.push(sigma as f32);
            }
            b.dem_h.push((truth + 2.0 + 1.5 * gauss(&mut rng)) as f32);
            let photons = if bad { rng.random_range(5..20) } else if strong { rng.random_range(80..240) } else { rng.random_range(20..70) };
            b.n_fit_photons.push(photons);
            b.h_robust_sprd.push((0.05 + 0.5 * rng.random::<f64>()) as f32);
            let t = t0 + k as f64 * dt;
            b.tide_ocean.push((0.4 * (2.0 * PI * t / 44_714.0).sin()) as f32);
            b.fpb_mean_corr.push((0.005 * rng.random::<f64>()) as f32);
        }
        beams.push(b);
    }

    let file_name = format!(
        "ATL06_{}_{rgt:04}{cycle:02}{region:02}_007_01.h5",
        timestamp_compact(t0)
    );
    Ok(Granule {
        file_name,
        rgt,
        cycle,
        region,
        t0,
        beams,
    })
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Broken-down UTC time of seconds since the SDP epoch (leap seconds ignored).
fn utc(t: f64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = SDP_EPOCH_UNIX + t.floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    (y, m, d, (rem / 3600) as u32, (rem % 3600 / 60) as u32, (rem % 60) as u32)
}

/// `YYYYMMDDhhmmss` as in ATL06 file names.
pub(crate) fn timestamp_compact(t: f64) -> String {
    let (y, mo, d, h, mi, s) = utc(t);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// `YYYY-MM-DD` of seconds since the SDP epoch.
pub(crate) fn date_iso(t: f64) -> String {
    let (y, mo, d, ..) = utc(t);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// `YYYY-MM-DDThh:mm:ss.000000Z` of seconds since the SDP epoch.
pub(crate) fn datetime_iso(t: f64) -> String {
    let (y, mo, d, h, mi, s) = utc(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000000Z")
}

/// `YYYY-MM-DDThh:mm:ssZ` of the Unix time `secs`.
pub(crate) fn unix_datetime_iso(secs: i64) -> String {
    datetime_iso((secs - SDP_EPOCH_UNIX) as f64).replace(".000000", "")
}

/// Text attributes of one dataset, in the ATL06 data dictionary's vocabulary.
struct Meta {
    units: &'static str,
    long_name: &'static str,
    description: &'static str,
    /// `coordinates` attribute, when the dataset is geolocated.
    coordinates: Option<&'static str>,
}

const COORDS: Option<&str> = Some("delta_time latitude longitude");
const SUB_COORDS: Option<&str> = Some("../delta_time ../latitude ../longitude");

/// Element types we write, with the fill value ATL06 declares for each.
trait Element: H5WriteElement {
    const FILL: Self;
    /// Shuffle before deflate: helps multi-byte floats, pointless for single bytes.
    const SHUFFLE: bool;
    fn le_bytes(self) -> Vec<u8>;
}

impl Element for f64 {
    const FILL: Self = FILL_F64;
    const SHUFFLE: bool = true;
    fn le_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}
impl Element for f32 {
    const FILL: Self = FILL_F32;
    const SHUFFLE: bool = true;
    fn le_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}
impl Element for i32 {
    const FILL: Self = i32::MAX;
    const SHUFFLE: bool = false;
    fn le_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}
impl Element for i8 {
    const FILL: Self = i8::MAX;
    const SHUFFLE: bool = false;
    fn le_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

/// A chunked, deflated, resizable 1-D dataset with the dtype's fill value in both the
/// fill-value message and the `_FillValue` attribute, as libhdf5 writes ATL06.
fn dataset<T: Element>(path: &str, values: &[T], meta: &Meta) -> Result<DatasetBuilder, hdf5_writer::Error> {
    let mut ds = DatasetBuilder::typed_data(path, vec![values.len() as u64], values)?
        .chunked(vec![CHUNK_LEN])
        .max_shape(vec![UNLIMITED])
        .fill_value(T::FILL.le_bytes());
    if T::SHUFFLE {
        ds = ds.filter(FilterDescription {
            id: FILTER_SHUFFLE,
            name: None,
            client_data: vec![],
        });
    }
    ds = ds
        .filter(FilterDescription {
            id: FILTER_DEFLATE,
            name: None,
            client_data: vec![6],
        })
        .attribute(AttributeBuilder::fixed_string("units", meta.units))
        .attribute(AttributeBuilder::fixed_string("long_name", meta.long_name))
        .attribute(AttributeBuilder::fixed_string("description", meta.description))
        .attribute(AttributeBuilder::fixed_string("contentType", "modelResult"))
        .attribute(AttributeBuilder::scalar("_FillValue", T::FILL)?);
    if let Some(c) = meta.coordinates {
        ds = ds.attribute(AttributeBuilder::fixed_string("coordinates", c));
    }
    Ok(ds)
}

/// Encodes a simulated granule as HDF5 bytes.
pub(crate) fn encode(g: &Granule, seed: u64) -> Result<Vec<u8>, hdf5_writer::Error> {
    let mut b = Hdf5Builder::new();
    for beam in &g.beams {
        let lis = format!("{}/land_ice_segments", beam.name);
        let p = |rel: &str| format!("{lis}/{rel}");
        b = b
            .dataset(dataset(&p("latitude"), &beam.latitude, &Meta {
                units: "degrees_north",
                long_name: "Latitude",
                description: "Latitude of segment center, WGS84, North=+",
                coordinates: Some("delta_time longitude"),
            })?)
            .dataset(dataset(&p("longitude"), &beam.longitude, &Meta {
                units: "degrees_east",
                long_name: "Longitude",
                description: "Longitude of segment center, WGS84, East=+",
                coordinates: Some("delta_time latitude"),
            })?)
            .dataset(dataset(&p("delta_time"), &beam.delta_time, &Meta {
                units: "seconds since 2018-01-01",
                long_name: "Elapsed GPS seconds",
                description: "Number of GPS seconds since the ATLAS SDP epoch (2018-01-01T00:00:00Z)",
                coordinates: Some("latitude longitude"),
            })?)
            .dataset(dataset(&p("h_li"), &beam.h_li, &Meta {
                units: "meters",
                long_name: "Land Ice height",
                description: "Standard land-ice segment height above the WGS84 ellipsoid (synthetic)",
                coordinates: COORDS,
            })?)
            .dataset(dataset(&p("h_li_sigma"), &beam.h_li_sigma, &Meta {
                units: "meters",
                long_name: "Expected RMS segment misfit",
                description: "Propagated error due to sampling error and FPB correction",
                coordinates: COORDS,
            })?)
            .dataset(dataset(&p("atl06_quality_summary"), &beam.quality, &Meta {
                units: "1",
                long_name: "ATL06_Quality_Summary",
                description: "0 = no data-quality tests failed, 1 = one or more failed",
                coordinates: COORDS,
            })?)
            .dataset(dataset(&p("segment_id"), &beam.segment_id, &Meta {
                units: "1",
                long_name: "Reference Point, m",
                description: "Segment number of the segment centre, counting 20 m segments from the ascending node",
                coordinates: COORDS,
            })?)
            .dataset(dataset(&p("bias_correction/fpb_mean_corr"), &beam.fpb_mean_corr, &Meta {
                units: "meters",
                long_name: "first photon bias mean correction",
                description: "Mean first-photon-bias correction (synthetic)",
                coordinates: SUB_COORDS,
            })?)
            .dataset(dataset(&p("dem/dem_h"), &beam.dem_h, &Meta {
                units: "meters",
                long_name: "DEM Height",
                description: "Surface height of the reference DEM (synthetic: the surface plus DEM error)",
                coordinates: SUB_COORDS,
            })?)
            .dataset(dataset(&p("fit_statistics/n_fit_photons"), &beam.n_fit_photons, &Meta {
                units: "1",
                long_name: "Number of photons in final signal selection",
                description: "Number of PE selected by the final surface window",
                coordinates: SUB_COORDS,
            })?)
            .dataset(dataset(&p("fit_statistics/h_robust_sprd"), &beam.h_robust_sprd, &Meta {
                units: "meters",
                long_name: "Robust Spread",
                description: "RDE of misfit between PE heights and the along-track segment fit",
                coordinates: SUB_COORDS,
            })?)
            .dataset(dataset(&p("geophysical/tide_ocean"), &beam.tide_ocean, &Meta {
                units: "meters",
                long_name: "Ocean Tide",
                description: "Ocean tides including diurnal and semi-diurnal (synthetic)",
                coordinates: SUB_COORDS,
            })?)
            .dataset(dataset(&p("ground_track/x_atc"), &beam.x_atc, &Meta {
                units: "meters",
                long_name: "X ATC",
                description: "Along-track distance from the ascending node",
                coordinates: SUB_COORDS,
            })?)
            .dataset(dataset(&p("ground_track/y_atc"), &beam.y_atc, &Meta {
                units: "meters",
                long_name: "Y ATC",
                description: "Across-track distance from the reference ground track",
                coordinates: SUB_COORDS,
            })?);
        // Sibling groups: one record per 10 (histogram) and per 50 (quality) segments,
        // as small as the real ones are relative to land_ice_segments.
        let hist: Vec<f64> = beam.delta_time.iter().step_by(10).copied().collect();
        let quality_ids: Vec<i32> = beam.segment_id.iter().step_by(50).copied().collect();
        b = b
            .dataset(dataset(&format!("{}/residual_histogram/delta_time", beam.name), &hist, &Meta {
                units: "seconds since 2018-01-01",
                long_name: "Elapsed GPS seconds",
                description: "Time of the first segment of each 10-segment histogram",
                coordinates: None,
            })?)
            .dataset(dataset(&format!("{}/segment_quality/segment_id", beam.name), &quality_ids, &Meta {
                units: "1",
                long_name: "Reference Point, m",
                description: "Segment number of every 50th segment",
                coordinates: None,
            })?)
            .group_attribute(beam.name, AttributeBuilder::fixed_string("groundtrack_id", beam.name))
            .group_attribute(
                beam.name,
                AttributeBuilder::fixed_string("atlas_beam_type", if beam.strong { "strong" } else { "weak" }),
            )
            .group_attribute(
                beam.name,
                AttributeBuilder::fixed_string("Description", "Each group contains the segments for one Ground Track."),
            )
            .group_attribute(
                lis.as_str(),
                AttributeBuilder::fixed_string(
                    "Description",
                    "The land_ice_segments group contains the primary set of derived products.",
                ),
            )
            .group_attribute(lis.as_str(), AttributeBuilder::fixed_string("data_rate", "Data within this group are sparse."));
    }

    let t_end = g
        .beams
        .iter()
        .filter_map(|b| b.delta_time.last())
        .fold(g.t0, |a, &t| a.max(t));
    let lats = g.beams.iter().flat_map(|b| b.latitude.iter().copied());
    let (lat_min, lat_max) = lats.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));

    b = b
        .dataset(
            DatasetBuilder::typed_data("ancillary_data/atlas_sdp_gps_epoch", vec![1], &[1_198_800_018.0_f64])?
                .attribute(AttributeBuilder::fixed_string("units", "seconds since 1980-01-06T00:00:00.000000Z"))
                .attribute(AttributeBuilder::fixed_string("long_name", "ATLAS Epoch Offset")),
        )
        .dataset(DatasetBuilder::fixed_string_data("ancillary_data/release", vec![1], &["007"])?)
        .dataset(DatasetBuilder::typed_data("ancillary_data/start_delta_time", vec![1], &[g.t0])?)
        .dataset(DatasetBuilder::typed_data("ancillary_data/end_delta_time", vec![1], &[t_end])?)
        .dataset(
            DatasetBuilder::typed_data("orbit_info/rgt", vec![1], &[g.rgt as i16])?
                .attribute(AttributeBuilder::fixed_string("long_name", "reference ground track")),
        )
        .dataset(
            DatasetBuilder::typed_data("orbit_info/cycle_number", vec![1], &[g.cycle as i8])?
                .attribute(AttributeBuilder::fixed_string("long_name", "cycle number")),
        )
        .dataset(DatasetBuilder::typed_data("orbit_info/sc_orient", vec![1], &[0_i8])?)
        .group_attribute("METADATA", AttributeBuilder::fixed_string("short_name", "ATL06"))
        .group_attribute("METADATA", AttributeBuilder::fixed_string("version", "007"))
        .group_attribute("METADATA", AttributeBuilder::fixed_string("granule_ur", g.file_name.trim_end_matches(".h5")))
        .group_attribute("METADATA", AttributeBuilder::fixed_string("provider", "synthetic"))
        .group_attribute("METADATA", AttributeBuilder::scalar("synthetic_seed", seed)?)
        .attribute(AttributeBuilder::fixed_string("short_name", "ATL06"))
        .attribute(AttributeBuilder::fixed_string("level", "L3A"))
        .attribute(AttributeBuilder::fixed_string(
            "title",
            "ATLAS/ICESat-2 L3A Land Ice Height (synthetic, written by magg synth)",
        ))
        .attribute(AttributeBuilder::fixed_string("time_coverage_start", datetime_iso(g.t0)))
        .attribute(AttributeBuilder::fixed_string("time_coverage_end", datetime_iso(t_end)))
        .attribute(AttributeBuilder::scalar("geospatial_lat_min", lat_min)?)
        .attribute(AttributeBuilder::scalar("geospatial_lat_max", lat_max)?)
        .attribute(AttributeBuilder::scalar("granule_region", g.region)?);

    b.into_plan()?.encode(WriteOptions::default())
}
