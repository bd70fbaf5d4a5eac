//! What defines a store: the run definition recorded in its group attributes.
//!
//! Two runs may share a store only if every chunk means the same thing in both: the
//! same grid (parent and child order, layout, codec, latitude convention), the same data
//! source and variables (each variable's compiled SQL, type and fill value), the same
//! catalog cells in the same chunk order, and the same granules per cell. `--resume`
//! and `--overwrite` compare the stored definition with the run's field by field, so a
//! mismatch is reported as what differs, not as a hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{CompiledPipeline, ConfigError, PipelineConfig};
use crate::sink::StoreTemplate;

/// The group attribute holding the definition.
pub const ATTRIBUTE: &str = "magg_definition";

/// A store's run definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreDefinition {
    /// SHA-256 of the rest of this definition's pipeline part (source, variables, grid):
    /// equal hashes, equal pipelines, whatever the YAML's comments or key spelling.
    pub pipeline_sha256: String,
    /// HEALPix order of the parent cells (one chunk each).
    pub parent_order: u8,
    /// HEALPix order of the output cells.
    pub child_order: u8,
    /// `compact` or `full_sphere`.
    pub layout: String,
    /// `none` or `zstd:<level>`.
    pub codec: String,
    /// `sphere` or `authalic`.
    pub latitude: String,
    /// Groups read in every granule.
    pub groups: Vec<String>,
    /// Table columns and their dataset templates.
    pub columns: Vec<(String, String)>,
    /// The quality filter: column and kept value.
    pub quality: Option<(String, i64)>,
    /// Output variables in array order.
    pub variables: Vec<DefinedVariable>,
    /// Number of catalog cells.
    pub catalog_cells: usize,
    /// SHA-256 of the catalog cells in chunk order.
    pub cells_sha256: String,
    /// SHA-256 of the catalog's cells and granule lists ([`crate::catalog::Catalog::digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_sha256: Option<String>,
}

/// One output variable of a definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinedVariable {
    /// Array name.
    pub name: String,
    /// Arrow data type of the array.
    pub dtype: String,
    /// Fill value as text (`NaN`, `0`, ...), so NaN compares equal to NaN.
    pub fill_value: String,
    /// The aggregate expression.
    pub sql: String,
}

/// Lower-case hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl StoreDefinition {
    /// The definition of a run of `pipeline` over a catalog with `parents` (chunk order).
    pub fn new(
        pipeline: &PipelineConfig,
        compiled: &CompiledPipeline,
        parent_order: u8,
        parents: &[i64],
        catalog_sha256: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let source = pipeline.source()?;
        let mut d = Self {
            pipeline_sha256: String::new(),
            parent_order,
            child_order: pipeline.output.grid.child_order,
            layout: if pipeline.full_sphere() { "full_sphere" } else { "compact" }.into(),
            codec: match pipeline.codec()? {
                None => "none".into(),
                Some(level) => format!("zstd:{level}"),
            },
            latitude: format!("{:?}", pipeline.latitude_mode()?).to_ascii_lowercase(),
            groups: source.groups.clone(),
            columns: source.columns.iter().map(|c| (c.name.clone(), c.template.clone())).collect(),
            quality: pipeline.data_source.quality_filter.as_ref().map(|q| (q.column().to_owned(), q.value)),
            variables: compiled
                .variables
                .iter()
                .map(|v| DefinedVariable {
                    name: v.name.clone(),
                    dtype: v.data_type.to_string(),
                    fill_value: v.fill_value.to_string(),
                    sql: v.sql.clone(),
                })
                .collect(),
            catalog_cells: parents.len(),
            cells_sha256: sha256_hex(parents.iter().map(|p| format!("{p}\n")).collect::<String>().as_bytes()),
            catalog_sha256: catalog_sha256.map(str::to_owned),
        };
        let pipeline_part = serde_json::json!([d.child_order, d.layout, d.codec, d.latitude, d.groups, d.columns, d.quality, d.variables]);
        d.pipeline_sha256 = sha256_hex(pipeline_part.to_string().as_bytes());
        Ok(d)
    }

    /// The definition recorded in a template's attributes, if any.
    pub fn of_template(t: &StoreTemplate) -> Option<Self> {
        serde_json::from_value(t.attributes.get(ATTRIBUTE)?.clone()).ok()
    }

    /// As a JSON attribute value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// What differs between the store's definition (`self`) and a run's, one line each:
    /// `what: store X, this run Y`. Empty when the run may write into the store.
    pub fn differences(&self, run: &StoreDefinition) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |what: &str, store: String, now: String| {
            if store != now {
                out.push(format!("{what}: store {store}, this run {now}"));
            }
        };
        cmp("parent order", self.parent_order.to_string(), run.parent_order.to_string());
        cmp("output.grid.child_order", self.child_order.to_string(), run.child_order.to_string());
        cmp("output.layout", self.layout.clone(), run.layout.clone());
        cmp("output.codec", self.codec.clone(), run.codec.clone());
        cmp("output.latitude", self.latitude.clone(), run.latitude.clone());
        cmp("data_source.groups", self.groups.join(","), run.groups.join(","));
        let col = |c: &[(String, String)]| c.iter().map(|(n, t)| format!("{n}={t}")).collect::<Vec<_>>().join(", ");
        cmp("data_source columns", col(&self.columns), col(&run.columns));
        cmp("data_source.quality_filter", format!("{:?}", self.quality), format!("{:?}", run.quality));
        let names = |v: &[DefinedVariable]| v.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ");
        if names(&self.variables) != names(&run.variables) {
            cmp("aggregation.variables", format!("[{}]", names(&self.variables)), format!("[{}]", names(&run.variables)));
        } else {
            for (a, b) in self.variables.iter().zip(&run.variables) {
                let key = format!("aggregation.variables.{}", a.name);
                cmp(&format!("{key} (SQL)"), format!("`{}`", a.sql), format!("`{}`", b.sql));
                cmp(&format!("{key}.dtype"), a.dtype.clone(), b.dtype.clone());
                cmp(&format!("{key}.fill_value"), a.fill_value.clone(), b.fill_value.clone());
            }
        }
        if self.catalog_cells != run.catalog_cells || self.cells_sha256 != run.cells_sha256 {
            cmp(
                "catalog cells",
                format!("{} cells (sha256 {})", self.catalog_cells, &self.cells_sha256[..self.cells_sha256.len().min(12)]),
                format!("{} cells (sha256 {})", run.catalog_cells, &run.cells_sha256[..run.cells_sha256.len().min(12)]),
            );
        } else if let (Some(a), Some(b)) = (&self.catalog_sha256, &run.catalog_sha256)
            && a != b
        {
            cmp(
                "catalog granules",
                format!("sha256 {}", &a[..a.len().min(12)]),
                format!("sha256 {} (same cells, other granule lists)", &b[..b.len().min(12)]),
            );
        }
        out
    }
}
