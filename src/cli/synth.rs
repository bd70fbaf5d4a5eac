//! `magg synth`: write synthetic ATL06-like granules and their catalog.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use magg::synth::{GranuleWritten, Region, SynthOptions};

/// Write synthetic ICESat-2 ATL06-like granules (HDF5) and `catalog.json`.
///
/// Each granule has six beams of 20 m segments along a 92-degree-inclination ground track
/// (beam pairs 3.3 km apart, beams of a pair 90 m apart), heights on a smooth ice surface
/// plus 0.1 m noise, about 5% of rows flagged bad. The same seed gives byte-identical
/// granules. The catalog maps every parent cell holding good rows to its granules.
///
/// Example, the benchmark set (100 granules crossing one order-6 cell):
///
///   magg synth --out data/synth --granules 100 --seed 1 --through -75,-100
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[command(after_help = "Examples:\n  \
    magg synth --out data/synth --granules 100 --seed 1 --through -75,-100\n      \
    the benchmark set: 100 granules of 6 x 60000 segments crossing the order-6 cell of (-75, -100)\n  \
    magg synth --out /tmp/small --granules 4 --rows-per-beam 3000 --region -80,-75,-120,-90\n      \
    a small set for tests over a latitude/longitude box")]
pub(crate) struct SynthArgs {
    /// Output directory (created if missing); granules and catalog.json are written here.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of granules to write.
    #[arg(long, value_name = "N", default_value_t = 10)]
    granules: usize,
    /// Random seed; the same seed and options give byte-identical granules.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Where tracks go: `west-antarctica` (lat -85..-72, lon -150..-60), `antarctica`
    /// (lat -88..-62), or a box `lat_min,lat_max,lon_min,lon_max` in degrees
    /// (lon_min > lon_max crosses the antimeridian). Each granule crosses a random point
    /// of the region. Ignored with --through.
    #[arg(long, value_name = "REGION", default_value = "west-antarctica", allow_hyphen_values = true)]
    region: Region,
    /// Make every granule's track pass within 3 km of this point (degrees, e.g.
    /// `-75,-100`), ascending or descending at random, so all granules cross the point's
    /// parent cell. |LAT| must be below 88 (the orbit's reach).
    #[arg(long, value_name = "LAT,LON", value_parser = parse_lat_lon, allow_hyphen_values = true)]
    through: Option<(f64, f64)>,
    /// Segments per beam (20 m each; 60000 is a 1200 km track).
    #[arg(long, value_name = "N", default_value_t = 60_000)]
    rows_per_beam: usize,
    /// HEALPix order of the catalog's parent cells.
    #[arg(long, value_name = "P", default_value_t = 6)]
    parent_order: u8,
}

fn parse_lat_lon(s: &str) -> Result<(f64, f64), String> {
    let (lat, lon) = s
        .split_once(',')
        .ok_or_else(|| format!("got {s:?}, expected LAT,LON in degrees, e.g. -75,-100"))?;
    let lat: f64 = lat.trim().parse().map_err(|_| format!("latitude {lat:?} is not a number"))?;
    let lon: f64 = lon.trim().parse().map_err(|_| format!("longitude {lon:?} is not a number"))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(format!("got {lat},{lon}, expected lat in [-90, 90] and lon in [-180, 180]"));
    }
    Ok((lat, lon))
}

pub(crate) async fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let opts = SynthOptions {
        out_dir: args.out,
        granules: args.granules,
        seed: args.seed,
        rows_per_beam: args.rows_per_beam,
        through: args.through,
        region: args.region,
        parent_order: args.parent_order,
    };
    let bar = ProgressBar::new(opts.granules as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} granules {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let out_dir = opts.out_dir.clone();
    let worker_bar = bar.clone();
    // Simulation and deflate are CPU-bound; keep them off the async runtime.
    let out = tokio::task::spawn_blocking(move || {
        magg::synth::generate_with_progress(&opts, &|g: &GranuleWritten| {
            worker_bar.set_message(format!("{} MB", g.bytes / 1_000_000));
            worker_bar.inc(1);
        })
    })
    .await
    .context("the generator thread panicked")?
    .with_context(|| format!("writing synthetic granules to {}", out_dir.display()))?;
    bar.finish_and_clear();
    let bytes: u64 = out
        .granules
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "wrote {} granules ({} segments, {:.1} MB) and {} ({} cells at order {}) in {:.1} s",
        out.granules.len(),
        out.rows_written,
        bytes as f64 / 1e6,
        out.catalog_path.display(),
        out.catalog.metadata.total_cells,
        out.catalog.metadata.parent_order,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
