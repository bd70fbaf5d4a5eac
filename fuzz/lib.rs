//! magg's object-store and HDF5 modules, compiled on their own for fuzzing.
#[path = "../src/store/mod.rs"]
pub mod store;
#[path = "../src/h5/mod.rs"]
pub mod h5;
