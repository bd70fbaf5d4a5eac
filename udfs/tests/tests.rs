//! Integration tests of magg-udfs (one binary; see Cargo.toml).

mod aggregate_golden;
mod golden;
mod healpix_golden;
mod sql_scalar;
