//! Pipeline configs: the YAML that says what to read and how to aggregate it.
//!
//! The format is the reference's (REFERENCE.md section 4; `configs/atl06.yaml` is the
//! default). Product knowledge lives here, not in code: a new product (ATL08, GEDI) is a
//! new YAML file. Parsing is strict: unknown keys, a `source` that is not a data-source
//! variable, both or neither of `function`/`expression`, unknown functions and unknown
//! names in expressions are errors that name the file, the key path and what is allowed.
//!
//! A config compiles ([`PipelineConfig::compile`]) to one `SELECT cell, ... GROUP BY cell`
//! query per parent cell; see [`compile`].

pub mod compile;
pub mod expr;

use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use indexmap::IndexMap;
use serde::Deserialize;

pub use compile::{CompiledPipeline, CompiledVariable};

/// The built-in default config, the reference's `atl06.yaml`.
pub const ATL06_YAML: &str = include_str!("../../configs/atl06.yaml");

/// Errors loading, validating or compiling a config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {file}: {source}")]
    Io {
        /// The config file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The YAML does not have the config's shape (serde names the key path and line).
    #[error("config {file}: {source}")]
    Yaml {
        /// The config file.
        file: PathBuf,
        /// The cause, with the key path and position.
        source: serde_yaml::Error,
    },
    /// A key has a value that is not allowed.
    #[error("config {file}: {key}: {message}")]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// Dotted key path, e.g. `aggregation.variables.h_mean.function`.
        key: String,
        /// Got what, expected what.
        message: String,
    },
}

/// A parsed and validated pipeline config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// What to read from each granule.
    pub data_source: DataSource,
    /// How rows become cell values.
    pub aggregation: Aggregation,
    /// The output grid and store.
    pub output: Output,
    /// Optional default catalog path.
    #[serde(default)]
    pub catalog: Option<String>,
    /// Temporal/spatial bounds (reference key; not applied by magg yet, so rejected).
    #[serde(default)]
    pub bounds: Option<serde_yaml::Value>,
    /// The table name in SQL: the config file's stem (`atl06`). Not a YAML key.
    #[serde(skip)]
    pub name: String,
    /// Where the config came from, for error messages. Not a YAML key.
    #[serde(skip)]
    pub file: PathBuf,
}

/// `data_source`: granule groups and the datasets to read in each.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// The reference's reader name (`h5coro`); accepted for compatibility, magg has one reader.
    #[serde(default)]
    pub reader: Option<String>,
    /// Groups (beams) to read, substituted for `{group}` in paths.
    pub groups: Vec<String>,
    /// `latitude` and `longitude` dataset path templates.
    #[serde(deserialize_with = "crate::unique_map::deserialize")]
    pub coordinates: IndexMap<String, String>,
    /// Column name -> dataset path template.
    #[serde(deserialize_with = "crate::unique_map::deserialize")]
    pub variables: IndexMap<String, String>,
    /// Keep only rows where a dataset equals a value.
    #[serde(default)]
    pub quality_filter: Option<QualityFilter>,
}

/// `data_source.quality_filter`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityFilter {
    /// Dataset path template, e.g. `/{group}/land_ice_segments/atl06_quality_summary`.
    pub dataset: String,
    /// The value of good rows.
    pub value: i64,
}

impl QualityFilter {
    /// The table column holding the flag: the dataset's last path component.
    pub fn column(&self) -> &str {
        self.dataset.rsplit('/').next().unwrap_or(&self.dataset)
    }
}

/// `aggregation`: output coordinates and variables.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregation {
    /// `cell_ids` and `morton` coordinate arrays.
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub coordinates: IndexMap<String, CoordinateSpec>,
    /// Output variables in order.
    #[serde(deserialize_with = "crate::unique_map::deserialize")]
    pub variables: IndexMap<String, VariableSpec>,
}

/// `aggregation.coordinates.<name>`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinateSpec {
    /// numpy dtype name.
    pub dtype: String,
    /// Fill value.
    #[serde(default)]
    pub fill_value: Option<serde_yaml::Value>,
}

/// `aggregation.variables.<name>`: a numpy function over a source column, or an expression.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableSpec {
    /// numpy function name (`len`, `min`, `average`, `quantile`, ...).
    #[serde(default)]
    pub function: Option<String>,
    /// The data-source variable the function reads.
    #[serde(default)]
    pub source: Option<String>,
    /// Keyword parameters (`weights`, `q`, `ddof`).
    #[serde(default, deserialize_with = "crate::unique_map::deserialize")]
    pub params: IndexMap<String, serde_yaml::Value>,
    /// numpy-style aggregate expression over data-source variables.
    #[serde(default)]
    pub expression: Option<String>,
    /// numpy dtype of the output array (default `float32`).
    #[serde(default)]
    pub dtype: Option<String>,
    /// Fill value for cells without data (default NaN; 0 for integer dtypes).
    #[serde(default)]
    pub fill_value: Option<serde_yaml::Value>,
}

/// `output`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// The output grid.
    pub grid: Grid,
    /// Default store URL (`--store` overrides).
    #[serde(default)]
    pub store: Option<String>,
    /// magg: `compact` (reference; chunk i = i-th catalog cell) or `full_sphere`.
    #[serde(default)]
    pub layout: Option<String>,
    /// magg: `none` (reference) or `zstd`, optionally `zstd:<level>`.
    #[serde(default)]
    pub codec: Option<String>,
    /// magg: `sphere` (reference: geodetic latitude on the sphere) or `authalic`.
    #[serde(default)]
    pub latitude: Option<String>,
}

/// `output.grid`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Only `healpix`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Only `nested`.
    #[serde(default)]
    pub indexing_scheme: Option<String>,
    /// Output cell order.
    pub child_order: u8,
}

/// Map a numpy dtype name to Arrow.
pub fn dtype(name: &str) -> Option<DataType> {
    Some(match name {
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" => DataType::Int32,
        "int64" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" => DataType::Float32,
        "float64" => DataType::Float64,
        _ => return None,
    })
}

pub(crate) const DTYPES: &str = "int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64";

impl PipelineConfig {
    /// Load and validate a config file; the table name is the file stem.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("granules")
            .to_owned();
        Self::from_yaml(&text, &name, path)
    }

    /// The built-in `atl06` config.
    pub fn atl06() -> Self {
        // The built-in file is validated by a test; a failure here is a build defect.
        Self::from_yaml(ATL06_YAML, "atl06", Path::new("<built-in atl06.yaml>"))
            .unwrap_or_else(|e| unreachable!("built-in config is invalid: {e}"))
    }

    /// Parse and validate YAML text. `name` becomes the SQL table name; `file` names the
    /// source in errors.
    pub fn from_yaml(text: &str, name: &str, file: &Path) -> Result<Self, ConfigError> {
        let mut config: PipelineConfig = serde_yaml::from_str(text).map_err(|source| {
            let msg = source.to_string();
            match crate::unique_map::yaml_duplicate_line(text, &msg) {
                Some((key, first, again)) => ConfigError::Invalid {
                    file: file.to_owned(),
                    key: match msg.split(": duplicate").next().filter(|p| *p != msg && !p.is_empty()) {
                        Some(path) => format!("{path}.{key}"),
                        None => key.clone(),
                    },
                    message: format!("duplicate key {key:?} at line {again} (first at line {first}); each key may appear once"),
                },
                None => ConfigError::Yaml { file: file.to_owned(), source },
            }
        })?;
        config.name = sanitize_table_name(name);
        config.file = file.to_owned();
        config.validate()?;
        Ok(config)
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// What the granule table reads for this config: coordinates first, then the
    /// variables, then the quality column (once, when a variable already reads that
    /// dataset under that name). A name the table reserves, or one name for two datasets,
    /// is an error naming the key.
    pub fn source(&self) -> Result<crate::source::SourceSpec, ConfigError> {
        use crate::source::{ColumnSource, SourceSpec};
        let ds = &self.data_source;
        let coord = |k: &str| ds.coordinates.get(k).cloned().unwrap_or_default();
        let mut spec = SourceSpec::new(
            self.name.clone(),
            ds.groups.clone(),
            &coord("latitude"),
            &coord("longitude"),
            self.latitude_mode()?,
        );
        let err = |e: crate::source::SourceError| self.invalid(e.key, e.message);
        for (name, template) in &ds.variables {
            spec.add(format!("data_source.variables.{name}"), ColumnSource::new(name.clone(), template.clone()))
                .map_err(err)?;
        }
        if let Some(q) = &ds.quality_filter {
            spec.add("data_source.quality_filter.dataset", ColumnSource::new(q.column(), q.dataset.clone()))
                .map_err(err)?;
        }
        spec.check().map_err(err)?;
        Ok(spec)
    }

    /// Column names the table exposes from this config (coordinates, variables, quality).
    pub fn data_columns(&self) -> Result<Vec<String>, ConfigError> {
        Ok(self.source()?.columns.into_iter().map(|c| c.name).collect())
    }

    /// Names usable in expressions: the data-source variables.
    pub fn variable_names(&self) -> Vec<String> {
        self.data_source.variables.keys().cloned().collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.bounds.is_some() {
            return Err(self.invalid(
                "bounds",
                "temporal/spatial bounds are not applied by magg yet; remove the key and \
                 restrict the catalog instead (a bound that is silently ignored would change results)",
            ));
        }
        let ds = &self.data_source;
        if ds.groups.is_empty() {
            return Err(self.invalid("data_source.groups", "got an empty list, expected at least one group such as gt1l"));
        }
        for key in ["latitude", "longitude"] {
            if !ds.coordinates.contains_key(key) {
                return Err(self.invalid(
                    format!("data_source.coordinates.{key}"),
                    "missing; expected a dataset path template such as /{group}/land_ice_segments/".to_owned() + key,
                ));
            }
        }
        for key in ds.coordinates.keys() {
            if key != "latitude" && key != "longitude" {
                return Err(self.invalid(
                    format!("data_source.coordinates.{key}"),
                    "unknown coordinate; expected latitude and longitude",
                ));
            }
        }
        if ds.variables.is_empty() {
            return Err(self.invalid("data_source.variables", "got no variables, expected at least one"));
        }
        // Names the table reserves, collisions between variables, coordinates and the
        // quality column, relative paths: one check, shared with `magg sql --var`.
        self.source()?;
        if let Some(q) = &ds.quality_filter
            && !q.dataset.starts_with('/')
        {
            return Err(self.invalid(
                "data_source.quality_filter.dataset",
                format!("got {:?}, expected an absolute dataset path such as /{{group}}/land_ice_segments/atl06_quality_summary", q.dataset),
            ));
        }
        let grid = &self.output.grid;
        if grid.kind != "healpix" {
            return Err(self.invalid("output.grid.type", format!("got {:?}, expected healpix", grid.kind)));
        }
        if let Some(s) = &grid.indexing_scheme
            && s != "nested"
        {
            return Err(self.invalid("output.grid.indexing_scheme", format!("got {s:?}, expected nested")));
        }
        if grid.child_order == 0 || grid.child_order > 18 {
            return Err(self.invalid(
                "output.grid.child_order",
                format!("got {}, expected 1..=18 (the morton coordinate holds at most 18 digits)", grid.child_order),
            ));
        }
        if let Some(l) = &self.output.layout
            && l != "compact"
            && l != "full_sphere"
        {
            return Err(self.invalid("output.layout", format!("got {l:?}, expected compact or full_sphere")));
        }
        self.codec()?;
        self.latitude_mode()?;
        for (name, spec) in &self.aggregation.coordinates {
            if name != "cell_ids" && name != "morton" {
                return Err(self.invalid(
                    format!("aggregation.coordinates.{name}"),
                    "unknown coordinate; expected cell_ids and morton",
                ));
            }
            if dtype(&spec.dtype).is_none() {
                return Err(self.invalid(
                    format!("aggregation.coordinates.{name}.dtype"),
                    format!("got {:?}, expected one of {DTYPES}", spec.dtype),
                ));
            }
        }
        if self.aggregation.variables.is_empty() {
            return Err(self.invalid("aggregation.variables", "got no variables, expected at least one"));
        }
        let mut seen: Vec<&str> = Vec::new();
        for name in self.aggregation.variables.keys() {
            let key = format!("aggregation.variables.{name}");
            if let Some(why) = bad_array_name(name) {
                return Err(self.invalid(key, format!("got output name {name:?}: {why}")));
            }
            if let Some(other) = seen.iter().find(|o| o.eq_ignore_ascii_case(name)) {
                return Err(self.invalid(
                    key,
                    format!("output name {name:?} differs from {other:?} only in case; the two arrays would share a directory on case-insensitive file systems"),
                ));
            }
            seen.push(name);
        }
        // Compiling checks functions, sources, params and expressions with key paths.
        self.compile().map(|_| ())
    }

    /// The output codec: `None` or `Some(level)` for zstd.
    pub fn codec(&self) -> Result<Option<i32>, ConfigError> {
        match self.output.codec.as_deref() {
            None | Some("none") => Ok(None),
            Some("zstd") => Ok(Some(3)),
            Some(other) => match other.strip_prefix("zstd:").map(str::parse::<i32>) {
                Some(Ok(level)) if (1..=22).contains(&level) => Ok(Some(level)),
                _ => Err(self.invalid(
                    "output.codec",
                    format!("got {other:?}, expected none, zstd or zstd:<level 1-22>"),
                )),
            },
        }
    }

    /// The latitude convention for cell assignment.
    pub fn latitude_mode(&self) -> Result<magg_udfs::healpix::LatitudeMode, ConfigError> {
        match self.output.latitude.as_deref() {
            None | Some("sphere") => Ok(magg_udfs::healpix::LatitudeMode::Sphere),
            Some("authalic") => Ok(magg_udfs::healpix::LatitudeMode::Authalic),
            Some(other) => Err(self.invalid(
                "output.latitude",
                format!("got {other:?}, expected sphere (the reference) or authalic"),
            )),
        }
    }

    /// Whether the store uses the full-sphere layout.
    pub fn full_sphere(&self) -> bool {
        self.output.layout.as_deref() == Some("full_sphere")
    }
}

/// Why `name` cannot be an output array name (a path component of the store), if it cannot.
fn bad_array_name(name: &str) -> Option<String> {
    const TAKEN: [&str; 4] = [crate::sink::CELL_IDS, crate::sink::MORTON, crate::source::CELL_COLUMN, "zarr.json"];
    if name.is_empty() {
        return Some("expected a non-empty name".into());
    }
    if let Some(t) = TAKEN.iter().find(|t| t.eq_ignore_ascii_case(name)) {
        return Some(format!("{t} is written by magg itself (the store's coordinates, the query's cell column or zarr metadata)"));
    }
    if name.starts_with('.') || name.starts_with("__") {
        return Some("names starting with '.' or '__' are reserved by zarr and hidden by file systems".into());
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))) {
        return Some(format!(
            "{c:?} is not allowed; expected letters, digits, '_' and '-' (the name is a directory of the store and a SQL column)"
        ));
    }
    None
}

/// SQL table names: the file stem with anything but letters, digits and `_` replaced.
fn sanitize_table_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("t_{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineConfig, ConfigError> {
        PipelineConfig::from_yaml(text, "test", Path::new("test.yaml"))
    }

    #[test]
    fn builtin_atl06_parses() {
        let c = PipelineConfig::atl06();
        assert_eq!(c.name, "atl06");
        assert_eq!(c.data_source.groups, ["gt1l", "gt1r", "gt2l", "gt2r", "gt3l", "gt3r"]);
        assert_eq!(c.output.grid.child_order, 12);
        assert_eq!(
            c.aggregation.variables.keys().collect::<Vec<_>>(),
            ["count", "h_min", "h_max", "h_mean", "h_sigma", "h_variance", "h_q25", "h_q50", "h_q75"]
        );
        assert_eq!(c.data_columns().unwrap(), ["latitude", "longitude", "h_li", "s_li", "atl06_quality_summary"]);
    }

    fn replace(from: &str, to: &str) -> String {
        assert!(ATL06_YAML.contains(from), "fixture text {from:?} missing");
        ATL06_YAML.replacen(from, to, 1)
    }

    /// The message of the error `text` gives, which must contain every one of `parts`.
    fn error_mentioning(text: &str, parts: &[&str]) -> String {
        let msg = parse(text).unwrap_err().to_string();
        for part in parts {
            assert!(msg.contains(part), "{msg:?} should mention {part:?}");
        }
        msg
    }

    #[test]
    fn unknown_section_names_the_key() {
        let msg = error_mentioning(&format!("{ATL06_YAML}\nextras:\n  a: 1\n"), &["unknown field `extras`"]);
        assert!(msg.starts_with("config test.yaml:"), "{msg}");
    }

    #[test]
    fn source_must_be_a_variable() {
        let msg = error_mentioning(&replace("      function: min\n      source: h_li\n", "      function: min\n      source: h_lii\n"), &[]);
        assert_eq!(
            msg,
            "config test.yaml: aggregation.variables.h_min.source: got \"h_lii\", expected one of the data_source.variables: h_li, s_li"
        );
    }

    /// Each mistake (text replaced in the built-in config) and what its error must name.
    #[test]
    fn errors_name_the_key_path_and_what_is_allowed() {
        let cases: [(&str, &str, &[&str]); 8] = [
            // An unknown key inside a variable.
            ("      function: min\n", "      functoin: min\n", &["aggregation.variables.h_min", "functoin"]),
            // Both or neither of function and expression.
            ("      function: min\n", "      function: min\n      expression: np.sum(h_li)\n", &["aggregation.variables.h_min: has both function and expression"]),
            ("      function: min\n      source: h_li\n", "      source: h_li\n", &["aggregation.variables.h_min: has neither function nor expression"]),
            // An unknown function lists the allowed ones.
            ("function: min", "function: frobnicate", &["aggregation.variables.h_min.function: got \"frobnicate\"", "quantile"]),
            // An unknown column in an expression.
            ("np.sum(1.0 / s_li**2)", "np.sum(1.0 / sigma**2)", &["aggregation.variables.h_sigma.expression", "\"sigma\""]),
            // Bad grid and dtype.
            ("child_order: 12", "child_order: 19", &["output.grid.child_order: got 19"]),
            ("dtype: float32", "dtype: float128", &["aggregation.variables.h_min.dtype: got \"float128\""]),
            ("type: healpix", "type: s2", &["output.grid.type: got \"s2\", expected healpix"]),
        ];
        for (from, to, parts) in cases {
            error_mentioning(&replace(from, to), parts);
        }
    }

    #[test]
    fn bounds_are_rejected_not_ignored() {
        let bounds = format!("{ATL06_YAML}bounds:\n  temporal: {{start_date: 2020-01-01, end_date: 2020-02-01}}\n");
        error_mentioning(&bounds, &["bounds: temporal/spatial bounds are not applied"]);
    }

    #[test]
    fn magg_output_options() {
        let c = parse(&replace("    child_order: 12\n", "    child_order: 12\n  codec: zstd:5\n  layout: full_sphere\n  latitude: authalic\n")).unwrap();
        assert_eq!(c.codec().unwrap(), Some(5));
        assert!(c.full_sphere());
        assert_eq!(c.latitude_mode().unwrap(), magg_udfs::healpix::LatitudeMode::Authalic);
        error_mentioning(&replace("    child_order: 12\n", "    child_order: 12\n  codec: gzip\n"), &["output.codec: got \"gzip\""]);
    }

    #[test]
    fn table_names_are_sql_identifiers() {
        assert_eq!(sanitize_table_name("atl06"), "atl06");
        assert_eq!(sanitize_table_name("ATL06-v7 test"), "atl06_v7_test");
        assert_eq!(sanitize_table_name("06x"), "t_06x");
    }
}
