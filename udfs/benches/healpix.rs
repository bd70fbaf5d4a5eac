//! Points per second of `healpix_cell` and `morton`, single thread, 10 million points:
//! the raw kernels (`healpix::cells_into`, `morton::from_lat_lon_into`) and the SQL
//! functions over a MemTable (one partition, `target_partitions = 1`).
//!
//! Run with `cargo bench --workspace --bench healpix` (release build). Target: at least 20 million
//! points per second per core for `healpix_cell`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use magg_udfs::healpix::{self, LatitudeMode};
use magg_udfs::morton;

const N: usize = 10_000_000;
const RUNS: usize = 3;
const BATCH: usize = 8192;

/// xorshift64*, enough for benchmark input.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1_u64 << 53) as f64
    }
}

/// Points uniform on the sphere, longitudes in [-180, 180).
fn points() -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut lat = Vec::with_capacity(N);
    let mut lon = Vec::with_capacity(N);
    for _ in 0..N {
        lat.push((2.0 * rng.next_f64() - 1.0).asin().to_degrees());
        lon.push(360.0 * rng.next_f64() - 180.0);
    }
    (lat, lon)
}

fn best(mut f: impl FnMut()) -> Duration {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn report(what: &str, d: Duration) {
    println!(
        "{what:<58} {:>7.1} M points/s  ({:.3} s for {} M)",
        N as f64 / d.as_secs_f64() / 1e6,
        d.as_secs_f64(),
        N / 1_000_000
    );
}

fn kernels(lat: &[f64], lon: &[f64]) {
    let mut cells: Vec<u64> = Vec::with_capacity(N);
    for (order, mode) in [
        (12, LatitudeMode::Sphere),
        (18, LatitudeMode::Sphere),
        (12, LatitudeMode::Authalic),
    ] {
        let d = best(|| {
            cells.clear();
            healpix::cells_into(lat, lon, order, mode, &mut cells).unwrap();
            black_box(&cells);
        });
        report(
            &format!("kernel healpix::cells_into order {order} {mode}"),
            d,
        );
    }
    let mut mortons: Vec<i64> = Vec::with_capacity(N);
    for order in [12, 18] {
        let d = best(|| {
            mortons.clear();
            morton::from_lat_lon_into(lat, lon, order, LatitudeMode::Sphere, &mut mortons).unwrap();
            black_box(&mortons);
        });
        report(
            &format!("kernel morton::from_lat_lon_into order {order} sphere"),
            d,
        );
    }
    // For comparison only: cdshealpix (not healpy-exact on boundaries).
    let layer = cdshealpix::nested::get(12);
    let d = best(|| {
        cells.clear();
        cells.extend(
            lat.iter()
                .zip(lon)
                .map(|(la, lo)| layer.hash(lo.to_radians(), la.to_radians())),
        );
        black_box(&cells);
    });
    report("(reference) cdshealpix nested hash order 12", d);
}

async fn sql(lat: Vec<f64>, lon: Vec<f64>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("lat", DataType::Float64, false),
        Field::new("lon", DataType::Float64, false),
    ]));
    let lat = Float64Array::from(lat);
    let lon = Float64Array::from(lon);
    let batches: Vec<RecordBatch> = (0..N)
        .step_by(BATCH)
        .map(|start| {
            let len = BATCH.min(N - start);
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(lat.slice(start, len)),
                    Arc::new(lon.slice(start, len)),
                ],
            )
            .unwrap()
        })
        .collect();
    let config = SessionConfig::new()
        .with_target_partitions(1)
        .with_batch_size(BATCH);
    let ctx = SessionContext::new_with_config(config);
    magg_udfs::register_all(&ctx);
    ctx.register_table(
        "pts",
        Arc::new(MemTable::try_new(schema, vec![batches]).unwrap()),
    )
    .unwrap();
    for sql in [
        "SELECT healpix_cell(lat, lon, 12) FROM pts",
        "SELECT morton(lat, lon, 12) FROM pts",
        "SELECT morton(lat, lon, 18) FROM pts",
        "SELECT healpix_cell(lat, lon, 12, 'authalic') FROM pts",
    ] {
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let out = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            times.push(t.elapsed());
            assert_eq!(out.iter().map(RecordBatch::num_rows).sum::<usize>(), N);
        }
        report(&format!("SQL {sql}"), times.into_iter().min().unwrap());
    }
}

fn main() {
    let t = Instant::now();
    let (lat, lon) = points();
    println!(
        "{} M random points on the sphere generated in {:.2} s; single thread, best of {RUNS}",
        N / 1_000_000,
        t.elapsed().as_secs_f64()
    );
    kernels(&lat, &lon);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(sql(lat, lon));
}
