use super::geometry::distance_m;
use super::granule::{self, BEAMS};
use super::*;

fn small(dir: &Path, rows: usize, granules: usize) -> SynthOptions {
    SynthOptions {
        out_dir: dir.to_path_buf(),
        granules,
        seed: 7,
        rows_per_beam: rows,
        through: None,
        region: Region::WestAntarctica,
        parent_order: 6,
    }
}

fn beam<'a>(g: &'a granule::Granule, name: &str) -> &'a granule::Beam {
    g.beams.iter().find(|b| b.name == name).expect("beam present")
}

#[test]
fn beams_are_90_m_and_3_3_km_apart_and_segments_20_m() {
    let opts = small(Path::new("unused"), 3000, 1);
    for index in 0..3 {
        let g = granule::simulate(&opts, index).expect("simulate");
        assert_eq!(g.beams.len(), 6);
        let names: Vec<&str> = g.beams.iter().map(|b| b.name).collect();
        assert_eq!(names, BEAM_NAMES);
        for k in [0, 1234, 2999] {
            let d = |a: &str, b: &str| {
                let (a, b) = (beam(&g, a), beam(&g, b));
                distance_m(a.latitude[k], a.longitude[k], b.latitude[k], b.longitude[k])
            };
            for (l, r) in [("gt1l", "gt1r"), ("gt2l", "gt2r"), ("gt3l", "gt3r")] {
                let pair = d(l, r);
                assert!((pair - 90.0).abs() < 0.01, "{l}-{r} at row {k}: {pair} m, expected 90");
            }
            for (a, b) in [("gt1l", "gt2l"), ("gt2r", "gt3r")] {
                let apart = d(a, b);
                assert!((apart - 3300.0).abs() < 0.1, "{a}-{b} at row {k}: {apart} m, expected 3300");
            }
        }
        for b in &g.beams {
            for k in [0, 1500, 2998] {
                let step = distance_m(b.latitude[k], b.longitude[k], b.latitude[k + 1], b.longitude[k + 1]);
                assert!((step - 20.0).abs() < 0.001, "{} step at {k}: {step} m", b.name);
            }
            assert!(b.delta_time.windows(2).all(|w| w[1] > w[0]), "{} delta_time not increasing", b.name);
            assert!(b.segment_id.windows(2).all(|w| w[1] == w[0] + 1), "{} segment_id not consecutive", b.name);
            let dt = b.delta_time[1] - b.delta_time[0];
            assert!((dt - 20.0 / 7000.0).abs() < 1e-6, "segment time step {dt}");
        }
        // Along-track distance grows by 20 m per segment too.
        let x = &beam(&g, "gt2l").x_atc;
        assert!((x[100] - x[0] - 2000.0).abs() < 1e-6, "x_atc step {}", x[100] - x[0]);
    }
}

#[test]
fn tracks_stay_within_reach_of_the_orbit() {
    let opts = SynthOptions {
        region: Region::Antarctica,
        ..small(Path::new("unused"), 60_000, 1)
    };
    for index in 0..5 {
        let g = granule::simulate(&opts, index).expect("simulate");
        for b in &g.beams {
            let lat_min = b.latitude.iter().copied().fold(f64::INFINITY, f64::min);
            assert!(lat_min > -88.1, "{} reaches {lat_min}", b.name);
        }
    }
}

#[test]
fn quality_and_fill_fractions_and_surface() {
    let opts = small(Path::new("unused"), 20_000, 1);
    let g = granule::simulate(&opts, 0).expect("simulate");
    let (mut rows, mut bad, mut filled) = (0usize, 0usize, 0usize);
    let mut resid = Vec::new();
    for b in &g.beams {
        for k in 0..b.h_li.len() {
            rows += 1;
            if b.quality[k] == 1 {
                bad += 1;
                if b.h_li[k] == granule::FILL_F32 {
                    assert_eq!(b.h_li_sigma[k], granule::FILL_F32, "h_li filled but sigma not at row {k}");
                    filled += 1;
                }
            } else {
                assert_eq!(b.quality[k], 0);
                let s = b.h_li_sigma[k];
                assert!((0.02..=0.5).contains(&s), "sigma {s} out of 0.02-0.5 m");
                resid.push(f64::from(b.h_li[k]) - surface_height(b.latitude[k], b.longitude[k]));
            }
        }
    }
    let bad_frac = bad as f64 / rows as f64;
    assert!((0.04..0.06).contains(&bad_frac), "bad fraction {bad_frac}");
    let fill_frac = filled as f64 / bad as f64;
    assert!((0.28..0.39).contains(&fill_frac), "filled fraction of bad {fill_frac}");
    let n = resid.len() as f64;
    let mean = resid.iter().sum::<f64>() / n;
    let sd = (resid.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    // float32 rounding of ~2000 m heights adds ~0.00006 m; the noise is 0.1 m.
    assert!(mean.abs() < 0.005, "mean residual {mean}");
    assert!((sd - 0.1).abs() < 0.005, "residual sd {sd}");
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let c = tempfile::tempdir().expect("tempdir");
    let out_a = generate(&small(a.path(), 2500, 3)).expect("generate a");
    let out_b = generate(&small(b.path(), 2500, 3)).expect("generate b");
    let out_c = generate(&SynthOptions {
        seed: 8,
        ..small(c.path(), 2500, 3)
    })
    .expect("generate c");
    assert_eq!(out_a.granules.len(), 3);
    assert_eq!(out_a.rows_written, 3 * 6 * 2500);
    for (pa, pb) in out_a.granules.iter().zip(&out_b.granules) {
        assert_eq!(pa.file_name(), pb.file_name());
        let (ba, bb) = (std::fs::read(pa).expect("read"), std::fs::read(pb).expect("read"));
        assert!(ba == bb, "{} differs between runs with the same seed", pa.display());
    }
    let ba = std::fs::read(&out_a.granules[0]).expect("read");
    let bc = std::fs::read(&out_c.granules[0]).expect("read");
    assert!(ba != bc, "seed 7 and seed 8 gave identical granules");
    // Same seed, same catalog keys and granule names (paths differ by directory).
    let names = |o: &SynthOutput| -> Vec<(String, Vec<String>)> {
        o.catalog
            .catalog
            .iter()
            .map(|(k, v)| {
                let files = v
                    .iter()
                    .map(|p| Path::new(p).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default())
                    .collect();
                (k.clone(), files)
            })
            .collect()
    };
    assert_eq!(names(&out_a), names(&out_b));
}

#[test]
fn file_names_follow_the_atl06_pattern() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = generate(&small(dir.path(), 100, 4)).expect("generate");
    let mut seen = BTreeSet::new();
    for p in &out.granules {
        assert!(p.is_absolute(), "{} not absolute", p.display());
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        // ATL06_YYYYMMDDhhmmss_ttttccnn_007_01.h5
        let parts: Vec<&str> = name.trim_end_matches(".h5").split('_').collect();
        assert_eq!(parts.len(), 5, "{name}");
        assert_eq!(parts[0], "ATL06");
        assert_eq!(parts[1].len(), 14, "{name}");
        assert!(parts[1].starts_with("2019"), "{name}");
        assert_eq!(parts[2].len(), 8, "{name}");
        let rgt: u32 = parts[2][..4].parse().expect("rgt");
        let cycle: u32 = parts[2][4..6].parse().expect("cycle");
        let region: u32 = parts[2][6..].parse().expect("region");
        assert!((1..=1387).contains(&rgt), "{name}");
        assert_eq!(cycle, 2, "{name}: granules start 2019-04-01, in cycle 2 (from 2019-01-12)");
        assert!([10, 11, 12].contains(&region), "{name}");
        assert_eq!(&parts[3..], ["007", "01"]);
        assert!(seen.insert(name.clone()), "duplicate {name}");
    }
    assert_eq!(granule::timestamp_compact(0.0), "20180101000000");
    assert_eq!(granule::timestamp_compact(39_312_000.0 + 3661.0), "20190401010101");
    assert_eq!(granule::date_iso(86_400.0 * 59.0), "2018-03-01");
}

#[test]
fn through_point_cell_holds_every_granule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = SynthOptions {
        through: Some((-75.0, -100.0)),
        ..small(dir.path(), 2000, 6)
    };
    let out = generate(&opts).expect("generate");
    let cell = parent_cell(-75.0, -100.0, 6).expect("cell").to_string();
    let granules = out.catalog.catalog.get(&cell).expect("the point's cell is in the catalog");
    assert_eq!(granules.len(), 6, "cell {cell}: {granules:?}");
    // Every granule passes within ~3.4 km of the point.
    for i in 0..6 {
        let g = granule::simulate(&opts, i).expect("simulate");
        let nearest = g
            .beams
            .iter()
            .flat_map(|b| b.latitude.iter().zip(&b.longitude))
            .map(|(&la, &lo)| distance_m(la, lo, -75.0, -100.0))
            .fold(f64::INFINITY, f64::min);
        assert!(nearest < 3400.0, "granule {i} passes {nearest} m from the point");
    }
    // Catalog: ascending morton keys, metadata consistent, file readable.
    let keys: Vec<i64> = out.catalog.catalog.keys().map(|k| k.parse().expect("key")).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys not ascending: {keys:?}");
    assert_eq!(out.catalog.metadata.total_cells, keys.len());
    assert_eq!(out.catalog.metadata.total_granules, 6);
    assert_eq!(out.catalog.metadata.provider, "synthetic");
    let back = Catalog::read(&out.catalog_path).expect("catalog reads back");
    assert_eq!(back.catalog, out.catalog.catalog);
}

#[test]
fn catalog_lists_exactly_the_cells_of_good_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = small(dir.path(), 3000, 2);
    let out = generate(&opts).expect("generate");
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in 0..2 {
        let g = granule::simulate(&opts, i).expect("simulate");
        let path = out.granules[i].display().to_string();
        let mut cells = BTreeSet::new();
        for b in &g.beams {
            for k in 0..b.latitude.len() {
                if b.quality[k] == 0 {
                    cells.insert(parent_cell(b.latitude[k], b.longitude[k], 6).expect("cell"));
                }
            }
        }
        for c in cells {
            expected.entry(c.to_string()).or_default().push(path.clone());
        }
    }
    let got: BTreeMap<String, Vec<String>> = out.catalog.catalog.clone().into_iter().collect();
    assert_eq!(got, expected);
}

#[test]
fn hdf5_layout_reads_back() {
    use hdf5_reader::Hdf5File;
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = small(dir.path(), 12_345, 1);
    let out = generate(&opts).expect("generate");
    let g = granule::simulate(&opts, 0).expect("simulate");
    let file = Hdf5File::open(&out.granules[0]).expect("open");
    for (name, _) in BEAMS {
        let ds = file
            .dataset(&format!("/{name}/land_ice_segments/h_li"))
            .expect("h_li");
        assert_eq!(ds.shape(), &[12_345]);
        assert_eq!(ds.chunks().expect("chunked"), vec![CHUNK_LEN as u32]);
        assert_eq!(ds.max_dims().expect("max dims"), &[hdf5_writer::UNLIMITED]);
        let values = ds.read_array::<f32>().expect("read h_li");
        let want = &beam(&g, name).h_li;
        assert_eq!(values.as_slice_memory_order().expect("contiguous"), want.as_slice());
        let lat = file
            .dataset(&format!("/{name}/land_ice_segments/latitude"))
            .expect("latitude")
            .read_array::<f64>()
            .expect("read latitude");
        assert_eq!(lat.as_slice_memory_order().expect("contiguous"), beam(&g, name).latitude.as_slice());
        for sub in [
            "bias_correction/fpb_mean_corr",
            "dem/dem_h",
            "fit_statistics/n_fit_photons",
            "fit_statistics/h_robust_sprd",
            "geophysical/tide_ocean",
            "ground_track/x_atc",
            "ground_track/y_atc",
        ] {
            let ds = file
                .dataset(&format!("/{name}/land_ice_segments/{sub}"))
                .unwrap_or_else(|e| panic!("{name}/{sub}: {e}"));
            assert_eq!(ds.shape(), &[12_345], "{name}/{sub}");
        }
        for sib in ["residual_histogram/delta_time", "segment_quality/segment_id"] {
            file.dataset(&format!("/{name}/{sib}"))
                .unwrap_or_else(|e| panic!("{name}/{sib}: {e}"));
        }
    }
    let rgt = file.dataset("/orbit_info/rgt").expect("rgt").read_array::<i16>().expect("read rgt");
    assert_eq!(rgt.as_slice_memory_order().expect("contiguous"), &[g.rgt as i16]);
    file.group("/METADATA").expect("METADATA group");
    file.group("/ancillary_data").expect("ancillary_data group");
}
