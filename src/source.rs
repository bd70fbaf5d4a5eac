//! The point-cell contract and the neutral data-source description.
//!
//! The granule table ([`crate::table`]) and the config compiler ([`crate::config`]) must
//! agree on a few names and one number: the columns the table adds to every row
//! (`granule`, `beam`, `row`), the column holding each point's HEALPix cell
//! ([`POINT_CELL`], hashed at [`POINT_CELL_ORDER`]) from which the queries derive parent
//! and child cells, and the coordinate column names. They live here, once; both layers
//! import this module and neither imports the other.
//!
//! A [`SourceSpec`] is what the table needs to know about a product: which groups to
//! read, which dataset becomes which column, and the latitude convention of the point
//! cells. A pipeline config produces one ([`crate::config::PipelineConfig::source`]);
//! `magg sql --files` and tests can build one by hand. [`SourceSpec::check`] rejects every
//! column name the table would shadow or silently merge, so a collision is an error that
//! names the key, never an empty store.

use magg_udfs::healpix::LatitudeMode;

/// Columns every granule table has before the data columns.
pub const META_COLUMNS: [&str; 3] = ["granule", "beam", "row"];

/// The column after the data columns: each point's nested HEALPix cell at order
/// [`POINT_CELL_ORDER`] (`NULL` for invalid coordinates), in the table's latitude mode.
/// Queries derive child and parent cells from it with `healpix_parent`, as the reference
/// derives them from the order-18 morton index.
pub const POINT_CELL: &str = "cell18";

/// The order of [`POINT_CELL`]: the finest order a morton index holds.
pub const POINT_CELL_ORDER: u8 = 18;

/// The coordinate columns, first among the data columns, in this order.
pub const COORDINATES: [&str; 2] = ["latitude", "longitude"];

/// The output column of a cell query holding the child cell (`... AS cell`).
pub const CELL_COLUMN: &str = "cell";

/// Names a data column may not take: the table's own columns and the cell query's.
/// Compared without case, as SQL folds unquoted names and some file systems fold case.
pub const RESERVED: [&str; 5] = [META_COLUMNS[0], META_COLUMNS[1], META_COLUMNS[2], POINT_CELL, CELL_COLUMN];

/// Whether `name` is one the table or the cell query uses itself.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// A table column read from a dataset in every group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ColumnSource {
    /// Column name.
    pub name: String,
    /// Dataset path template with `{group}`.
    pub template: String,
}

impl ColumnSource {
    /// A column.
    pub fn new(name: impl Into<String>, template: impl Into<String>) -> Self {
        Self { name: name.into(), template: template.into() }
    }

    /// The dataset path in `group`.
    pub fn path(&self, group: &str) -> String {
        self.template.replace("{group}", group)
    }
}

/// A column that collides with another or with a reserved name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SourceError {
    /// Who named the column: a config key path (`data_source.variables.cell18`) or a flag.
    pub key: String,
    /// Got what, expected what.
    pub message: String,
}

/// What the granule table reads: groups, columns and the point-cell convention.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpec {
    /// Table name in SQL.
    pub name: String,
    /// Groups (beams) read in every granule.
    pub groups: Vec<String>,
    /// Data columns, `latitude` and `longitude` first, each with the key that named it.
    pub columns: Vec<ColumnSource>,
    /// Where each column came from, for errors (same order as `columns`).
    pub keys: Vec<String>,
    /// Latitude convention of the [`POINT_CELL`] column.
    pub cell_mode: LatitudeMode,
}

impl SourceSpec {
    /// A spec with the two coordinate columns.
    pub fn new(name: impl Into<String>, groups: Vec<String>, latitude: &str, longitude: &str, cell_mode: LatitudeMode) -> Self {
        Self {
            name: name.into(),
            groups,
            columns: vec![ColumnSource::new(COORDINATES[0], latitude), ColumnSource::new(COORDINATES[1], longitude)],
            keys: vec!["data_source.coordinates.latitude".into(), "data_source.coordinates.longitude".into()],
            cell_mode,
        }
    }

    /// Add a column named by `key`. A column that already exists with the same dataset is
    /// kept once; with another dataset it is an error (the table would read one of the two
    /// and silently answer questions about the other), as is a reserved name.
    pub fn add(&mut self, key: impl Into<String>, column: ColumnSource) -> Result<(), SourceError> {
        let key = key.into();
        check_name(&key, &column.name)?;
        if let Some(i) = self.columns.iter().position(|c| c.name.eq_ignore_ascii_case(&column.name)) {
            let existing = &self.columns[i];
            if existing.name == column.name && existing.template == column.template {
                return Ok(());
            }
            return Err(SourceError {
                key,
                message: format!(
                    "column {:?} ({}) collides with {:?} ({}) of {}; a column name can name one dataset only, rename one of them",
                    column.name, column.template, existing.name, existing.template, self.keys[i]
                ),
            });
        }
        self.columns.push(column);
        self.keys.push(key);
        Ok(())
    }

    /// Replace the dataset of an existing column, or add it (`--var name=/path`).
    pub fn set(&mut self, key: impl Into<String>, column: ColumnSource) -> Result<(), SourceError> {
        let key = key.into();
        check_name(&key, &column.name)?;
        if COORDINATES.iter().any(|c| c.eq_ignore_ascii_case(&column.name)) {
            return Err(SourceError {
                key,
                message: format!("{:?} is a coordinate of the source; it cannot be replaced", column.name),
            });
        }
        match self.columns.iter().position(|c| c.name == column.name) {
            Some(i) => {
                self.columns[i] = column;
                self.keys[i] = key;
                Ok(())
            }
            None => self.add(key, column),
        }
    }

    /// Check every column: names not reserved, no two alike ignoring case, paths absolute.
    pub fn check(&self) -> Result<(), SourceError> {
        for (i, (c, key)) in self.columns.iter().zip(&self.keys).enumerate() {
            check_name(key, &c.name)?;
            if !c.template.starts_with('/') {
                return Err(SourceError {
                    key: key.clone(),
                    message: format!("got {:?}, expected an absolute dataset path such as /{{group}}/land_ice_segments/h_li", c.template),
                });
            }
            if let Some(j) = self.columns[..i].iter().position(|o| o.name.eq_ignore_ascii_case(&c.name)) {
                return Err(SourceError {
                    key: key.clone(),
                    message: format!("column {:?} collides with {:?} of {}", c.name, self.columns[j].name, self.keys[j]),
                });
            }
        }
        Ok(())
    }
}

fn check_name(key: &str, name: &str) -> Result<(), SourceError> {
    if name.is_empty() {
        return Err(SourceError { key: key.to_owned(), message: "got an empty column name".into() });
    }
    if is_reserved(name) {
        return Err(SourceError {
            key: key.to_owned(),
            message: format!(
                "{name:?} is a reserved column name: the granule table adds {} itself and cell queries name their output {CELL_COLUMN}",
                [META_COLUMNS.as_slice(), &[POINT_CELL]].concat().join(", ")
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SourceSpec {
        SourceSpec::new("t", vec!["gt1l".into()], "/{group}/lat", "/{group}/lon", LatitudeMode::Sphere)
    }

    #[test]
    fn reserved_names_are_rejected_in_any_case() {
        for name in ["granule", "Beam", "ROW", "cell18", "Cell18", "cell"] {
            let err = spec().add(format!("data_source.variables.{name}"), ColumnSource::new(name, "/{group}/h")).unwrap_err();
            assert_eq!(err.key, format!("data_source.variables.{name}"));
            assert!(err.message.contains("reserved column name"), "{err}");
        }
    }

    #[test]
    fn same_name_other_dataset_is_a_collision_same_dataset_is_one_column() {
        let mut s = spec();
        s.add("data_source.variables.q", ColumnSource::new("q", "/{group}/h_li")).unwrap();
        s.add("data_source.quality_filter.dataset", ColumnSource::new("q", "/{group}/h_li")).unwrap();
        assert_eq!(s.columns.len(), 3);
        let err = s.add("data_source.quality_filter.dataset", ColumnSource::new("Q", "/{group}/quality")).unwrap_err();
        assert_eq!(err.key, "data_source.quality_filter.dataset");
        assert!(err.message.contains("data_source.variables.q"), "{err}");
        let err = s.add("data_source.variables.Latitude", ColumnSource::new("Latitude", "/{group}/x")).unwrap_err();
        assert!(err.message.contains("data_source.coordinates.latitude"), "{err}");
    }

    #[test]
    fn set_replaces_a_variable_but_not_a_coordinate() {
        let mut s = spec();
        s.add("data_source.variables.h", ColumnSource::new("h", "/{group}/h_li")).unwrap();
        s.set("--var h", ColumnSource::new("h", "/{group}/h_other")).unwrap();
        assert_eq!(s.columns[2].template, "/{group}/h_other");
        assert!(s.set("--var latitude", ColumnSource::new("latitude", "/{group}/x")).is_err());
        assert!(s.set("--var cell18", ColumnSource::new("cell18", "/{group}/x")).is_err());
        s.check().unwrap();
    }
}
