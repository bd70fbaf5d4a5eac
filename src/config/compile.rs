//! Compile a [`PipelineConfig`] to SQL.
//!
//! Every aggregation variable becomes one aggregate expression; the template
//! `sql/cell_aggregate.sql` wraps them in a `GROUP BY cell` query. numpy semantics are
//! kept where DataFusion's built-ins differ, with magg's aggregates (`magg_udfs::aggregate`):
//! `average` with weights is `weighted_mean`, `quantile`/`percentile` are `quantile`
//! (numpy's linear interpolation), `var`/`std` are `np_var`/`np_std` (numpy's two-pass
//! accuracy, `ddof` passed through) and `median` is `np_median` (NaN in, NaN out). The
//! same aggregates serve `expression:` reductions (see `expr.rs`).

use std::fmt::Write as _;

use arrow::datatypes::DataType;

use super::expr::{aggregate_expression, row_expression};
use super::{dtype, ConfigError, PipelineConfig, DTYPES};

/// The cell-query template (see the file for its placeholders).
pub const CELL_AGGREGATE_SQL: &str = include_str!("../../sql/cell_aggregate.sql");

/// The order at which points are hashed before deriving child and parent cells, as the
/// reference does with morton indices (their maximum order).
pub const HASH_ORDER: u8 = crate::source::POINT_CELL_ORDER;

/// numpy function names magg understands, for error messages.
pub const FUNCTIONS: &str = "len, count, size, min, amin, nanmin, max, amax, nanmax, ptp, sum, nansum, \
     mean, nanmean, average, var, nanvar, std, nanstd, median, nanmedian, quantile, nanquantile, \
     percentile, nanpercentile";

/// One output variable as SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledVariable {
    /// Output array name.
    pub name: String,
    /// The aggregate expression.
    pub sql: String,
    /// Output dtype.
    pub data_type: DataType,
    /// Fill value for cells without data.
    pub fill_value: f64,
}

/// A config compiled to SQL pieces.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledPipeline {
    /// Table name.
    pub table: String,
    /// Output variables in config order.
    pub variables: Vec<CompiledVariable>,
    /// `"col" = value` of the quality filter, if any.
    pub quality_predicate: Option<String>,
    /// Trailing argument of `healpix_cell` selecting the latitude mode (empty for sphere).
    pub mode_arg: String,
    /// Output cell order.
    pub child_order: u8,
}

/// The parent cell a query is restricted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentCell {
    /// Parent order.
    pub order: u8,
    /// Nested id of the parent at `order`.
    pub nested: u64,
}

impl CompiledPipeline {
    /// `healpix_cell(latitude, longitude, 18[, 'authalic'])`: a point's order-18 cell, as
    /// any table with coordinates can compute it.
    pub fn hash_expr(&self) -> String {
        format!("healpix_cell(latitude, longitude, {HASH_ORDER}{})", self.mode_arg)
    }

    /// The SQL expression of a row's cell at `order`. It reads the granule table's
    /// per-point cell column ([`crate::source::POINT_CELL`], the same order-18 cell in the
    /// config's latitude mode), which the scan has computed already to find the rows in
    /// the parent cell; [`Self::hash_expr`] spells out what it holds.
    pub fn cell_expr(&self, order: u8) -> String {
        format!("healpix_parent({}, {HASH_ORDER}, {order})", crate::source::POINT_CELL)
    }

    /// The `GROUP BY cell` query, restricted to `parent` when given.
    pub fn cell_sql(&self, parent: Option<ParentCell>) -> String {
        let mut aggregates = String::new();
        for (i, v) in self.variables.iter().enumerate() {
            if i > 0 {
                aggregates.push_str(",\n    ");
            }
            let _ = write!(aggregates, "{} AS \"{}\"", v.sql, v.name);
        }
        let mut conditions = Vec::new();
        if let Some(q) = &self.quality_predicate {
            conditions.push(q.clone());
        }
        if let Some(p) = parent {
            conditions.push(format!("{} = {}", self.cell_expr(p.order), p.nested));
        }
        let where_clause = if conditions.is_empty() {
            "true".to_owned()
        } else {
            conditions.join("\n  AND ")
        };
        let body: String = CELL_AGGREGATE_SQL
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        body.replace("{cell}", &self.cell_expr(self.child_order))
            .replace("{aggregates}", &aggregates)
            .replace("{table}", &self.table)
            .replace("{where}", &where_clause)
            .trim()
            .to_owned()
    }
}

impl PipelineConfig {
    /// Compile every aggregation variable; errors name the key path at fault.
    pub fn compile(&self) -> Result<CompiledPipeline, ConfigError> {
        let columns = self.variable_names();
        let mut variables = Vec::new();
        // (variable index, source column, q) of every `quantile` function.
        let mut quantiles = Vec::new();
        for (name, spec) in &self.aggregation.variables {
            let key = format!("aggregation.variables.{name}");
            let dtype_name = spec.dtype.as_deref().unwrap_or("float32");
            let data_type = dtype(dtype_name).ok_or_else(|| {
                self.invalid(format!("{key}.dtype"), format!("got {dtype_name:?}, expected one of {DTYPES}"))
            })?;
            let fill_value = self.fill_value(&key, spec.fill_value.as_ref(), &data_type)?;
            let sql = match (&spec.function, &spec.expression) {
                (Some(_), Some(_)) => {
                    return Err(self.invalid(key, "has both function and expression; give exactly one"));
                }
                (None, None) => {
                    return Err(self.invalid(key, "has neither function nor expression; give exactly one"));
                }
                (None, Some(text)) => {
                    if spec.source.is_some() || !spec.params.is_empty() {
                        return Err(self.invalid(key, "an expression takes no source or params; name the columns in the expression"));
                    }
                    aggregate_expression(text, &columns)
                        .map_err(|e| self.invalid(format!("{key}.expression"), e.to_string()))?
                        .sql
                }
                (Some(function), None) => match self.function_sql(&key, function, spec, &columns)? {
                    Aggregate::Sql(sql) => sql,
                    Aggregate::Quantile { source, q } => {
                        let sql = format!("quantile({source}, {q:?})");
                        quantiles.push((variables.len(), source, q));
                        sql
                    }
                },
            };
            variables.push(CompiledVariable { name: name.clone(), sql, data_type, fill_value });
        }
        share_quantile_states(&mut variables, &quantiles);
        let quality_predicate = self
            .data_source
            .quality_filter
            .as_ref()
            .map(|q| format!("\"{}\" = {}", q.column(), q.value));
        let mode_arg = match self.latitude_mode()? {
            magg_udfs::healpix::LatitudeMode::Sphere => String::new(),
            magg_udfs::healpix::LatitudeMode::Authalic => ", 'authalic'".to_owned(),
        };
        Ok(CompiledPipeline {
            table: self.name.clone(),
            variables,
            quality_predicate,
            mode_arg,
            child_order: self.output.grid.child_order,
        })
    }

    fn fill_value(&self, key: &str, value: Option<&serde_yaml::Value>, data_type: &DataType) -> Result<f64, ConfigError> {
        let is_float = matches!(data_type, DataType::Float32 | DataType::Float64);
        let Some(value) = value else {
            return Ok(if is_float { f64::NAN } else { 0.0 });
        };
        let v = match value {
            serde_yaml::Value::Number(n) => n.as_f64(),
            serde_yaml::Value::String(s) if s.eq_ignore_ascii_case("nan") => Some(f64::NAN),
            _ => None,
        };
        match v {
            Some(v) if is_float || (v.is_finite() && v.fract() == 0.0) => Ok(v),
            _ => Err(self.invalid(
                format!("{key}.fill_value"),
                format!("got {value:?}, expected a number{}", if is_float { " or nan" } else { " that fits the integer dtype" }),
            )),
        }
    }

    fn function_sql(
        &self,
        key: &str,
        function: &str,
        spec: &super::VariableSpec,
        columns: &[String],
    ) -> Result<Aggregate, ConfigError> {
        let bare = function
            .strip_prefix("np.")
            .or_else(|| function.strip_prefix("numpy."))
            .unwrap_or(function);
        let source = match &spec.source {
            Some(s) if columns.contains(s) => Some(format!("\"{s}\"")),
            Some(s) => {
                return Err(self.invalid(
                    format!("{key}.source"),
                    format!("got {s:?}, expected one of the data_source.variables: {}", columns.join(", ")),
                ));
            }
            None => None,
        };
        let allowed_params: &[&str] = match bare {
            "average" => &["weights"],
            "quantile" | "nanquantile" | "percentile" | "nanpercentile" => &["q"],
            "var" | "nanvar" | "std" | "nanstd" => &["ddof"],
            _ => &[],
        };
        for p in spec.params.keys() {
            if !allowed_params.contains(&p.as_str()) {
                return Err(self.invalid(
                    format!("{key}.params.{p}"),
                    format!(
                        "{function} takes {}",
                        if allowed_params.is_empty() { "no params".to_owned() } else { format!("only {}", allowed_params.join(", ")) }
                    ),
                ));
            }
        }
        let needs_source = || {
            source.clone().ok_or_else(|| {
                self.invalid(format!("{key}.source"), format!("{function} needs a source column, one of {}", columns.join(", ")))
            })
        };
        let number = |name: &str| -> Result<Option<f64>, ConfigError> {
            match spec.params.get(name) {
                None => Ok(None),
                Some(serde_yaml::Value::Number(n)) => Ok(n.as_f64()),
                Some(serde_yaml::Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| {
                    self.invalid(format!("{key}.params.{name}"), format!("got {s:?}, expected a number"))
                }),
                Some(other) => Err(self.invalid(format!("{key}.params.{name}"), format!("got {other:?}, expected a number"))),
            }
        };
        let quantile = |scale: f64| -> Result<Aggregate, ConfigError> {
            let src = needs_source()?;
            let q = number("q")?.ok_or_else(|| {
                self.invalid(format!("{key}.params.q"), format!("{function} needs params.q"))
            })?;
            let frac = q / scale;
            if !(0.0..=1.0).contains(&frac) {
                return Err(self.invalid(
                    format!("{key}.params.q"),
                    format!("got {q}, expected 0..={}", if scale == 1.0 { "1" } else { "100" }),
                ));
            }
            Ok(Aggregate::Quantile { source: src, q: frac })
        };
        // `np_var(x)` / `np_std(x)`, or with numpy's `ddof` as their second argument.
        let moments = |udaf: &str| -> Result<String, ConfigError> {
            let src = needs_source()?;
            match number("ddof")? {
                None | Some(0.0) => Ok(format!("{udaf}({src})")),
                Some(1.0) => Ok(format!("{udaf}({src}, 1)")),
                Some(d) => Err(self.invalid(format!("{key}.params.ddof"), format!("got {d}, expected 0 or 1"))),
            }
        };
        if let "quantile" | "nanquantile" = bare {
            return quantile(1.0);
        }
        if let "percentile" | "nanpercentile" = bare {
            return quantile(100.0);
        }
        Ok(Aggregate::Sql(match bare {
            "len" | "count" | "size" => match &source {
                Some(s) => format!("CAST(count({s}) AS BIGINT)"),
                None => "CAST(count(*) AS BIGINT)".to_owned(),
            },
            "min" | "amin" | "nanmin" => format!("min({})", needs_source()?),
            "max" | "amax" | "nanmax" => format!("max({})", needs_source()?),
            "ptp" => {
                let s = needs_source()?;
                format!("(max({s}) - min({s}))")
            }
            "sum" | "nansum" => format!("sum({})", needs_source()?),
            "mean" | "nanmean" => format!("avg({})", needs_source()?),
            "average" => {
                let src = needs_source()?;
                match spec.params.get("weights") {
                    None => format!("avg({src})"),
                    Some(serde_yaml::Value::String(w)) => {
                        let w = row_expression(w, columns)
                            .map_err(|e| self.invalid(format!("{key}.params.weights"), e.to_string()))?;
                        format!("weighted_mean({src}, {})", w.sql)
                    }
                    Some(other) => {
                        return Err(self.invalid(
                            format!("{key}.params.weights"),
                            format!("got {other:?}, expected a column name or an expression such as \"1.0 / s_li**2\""),
                        ));
                    }
                }
            }
            "var" | "nanvar" => moments("np_var")?,
            "std" | "nanstd" => moments("np_std")?,
            "median" | "nanmedian" => format!("np_median({})", needs_source()?),
            _ => {
                return Err(self.invalid(
                    format!("{key}.function"),
                    format!("got {function:?}, expected one of {FUNCTIONS} (or use expression:)"),
                ));
            }
        }))
    }
}

/// One `function:` variable compiled.
enum Aggregate {
    /// A finished aggregate expression.
    Sql(String),
    /// `quantile(source, q)`, which may share its state with other quantiles of the
    /// same source (see [`share_quantile_states`]).
    Quantile { source: String, q: f64 },
}

/// Rewrites the quantiles of a source that has more than one into elements of one
/// `quantiles(source, q1, q2, ...)` call: `quantile` keeps every value of a group, and
/// DataFusion plans identical aggregate calls once, so the values are kept, sent between
/// partitions and merged once instead of once per quantile. Each element equals the
/// `quantile` it replaces bit for bit.
fn share_quantile_states(variables: &mut [CompiledVariable], quantiles: &[(usize, String, f64)]) {
    let mut sources: Vec<&str> = Vec::new();
    for (_, source, _) in quantiles {
        if !sources.contains(&source.as_str()) {
            sources.push(source);
        }
    }
    for source in sources {
        let mine: Vec<&(usize, String, f64)> = quantiles.iter().filter(|(_, s, _)| s == source).collect();
        if mine.len() < 2 {
            continue;
        }
        let mut qs: Vec<f64> = Vec::new();
        for (_, _, q) in &mine {
            if !qs.contains(q) {
                qs.push(*q);
            }
        }
        // One call per MAX_QUANTILES distinct q (one in practice).
        let calls: Vec<String> = qs
            .chunks(magg_udfs::aggregate::MAX_QUANTILES)
            .map(|part| {
                let list: Vec<String> = part.iter().map(|q| format!("{q:?}")).collect();
                format!("quantiles({source}, {})", list.join(", "))
            })
            .collect();
        for (i, _, q) in mine {
            let at = qs.iter().position(|x| x == q).expect("q is listed");
            let (call, element) = (&calls[at / magg_udfs::aggregate::MAX_QUANTILES], at % magg_udfs::aggregate::MAX_QUANTILES + 1);
            variables[*i].sql = format!("{call}[{element}]");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles config text and returns the SQL of a variable by name.
    fn compiled_sql(yaml: &str) -> impl Fn(&str) -> String {
        let c = PipelineConfig::from_yaml(yaml, "x", std::path::Path::new("x.yaml")).unwrap().compile().unwrap();
        move |name| c.variables.iter().find(|v| v.name == name).unwrap().sql.clone()
    }

    /// Golden: the default config's SQL. If this changes, docs/config.md must too.
    #[test]
    fn atl06_compiles_to_the_documented_sql() {
        let c = PipelineConfig::atl06().compile().unwrap();
        let sql = c.cell_sql(Some(ParentCell { order: 6, nested: 35_000 }));
        let expected = r#"SELECT
    healpix_parent(cell18, 18, 12) AS cell,
    CAST(count("h_li") AS BIGINT) AS "count",
    min("h_li") AS "h_min",
    max("h_li") AS "h_max",
    weighted_mean("h_li", (1.0 / (CAST("s_li" AS DOUBLE) * CAST("s_li" AS DOUBLE)))) AS "h_mean",
    (1.0 / sqrt(sum((1.0 / (CAST("s_li" AS DOUBLE) * CAST("s_li" AS DOUBLE)))))) AS "h_sigma",
    np_var("h_li") AS "h_variance",
    quantiles("h_li", 0.25, 0.5, 0.75)[1] AS "h_q25",
    quantiles("h_li", 0.25, 0.5, 0.75)[2] AS "h_q50",
    quantiles("h_li", 0.25, 0.5, 0.75)[3] AS "h_q75"
FROM atl06
WHERE "atl06_quality_summary" = 0
  AND healpix_parent(cell18, 18, 6) = 35000
GROUP BY 1
ORDER BY 1"#;
        assert_eq!(sql, expected);
        assert_eq!(c.variables[0].data_type, DataType::Int32);
        assert_eq!(c.variables[0].fill_value, 0.0);
        assert!(c.variables[1].fill_value.is_nan());
    }

    #[test]
    fn percentiles_and_ddof() {
        let yaml = super::super::ATL06_YAML.replacen(
            "    h_variance:\n      function: var\n      source: h_li\n",
            "    h_variance:\n      function: np.std\n      source: h_li\n      params:\n        ddof: 1\n    p90:\n      function: percentile\n      source: h_li\n      params: {q: 90}\n",
            1,
        );
        let get = compiled_sql(&yaml);
        assert_eq!(get("h_variance"), "np_std(\"h_li\", 1)");
        // p90 (placed before them) joins the default config's three quantiles of h_li in
        // one state, the q listed in config order.
        assert_eq!(get("p90"), "quantiles(\"h_li\", 0.9, 0.25, 0.5, 0.75)[1]");
        assert_eq!(get("h_q75"), "quantiles(\"h_li\", 0.9, 0.25, 0.5, 0.75)[4]");
    }

    /// Quantiles share a state per source: a lone quantile stays `quantile`, a repeated q
    /// is listed once, and other sources get their own list.
    #[test]
    fn quantiles_of_one_source_share_one_state() {
        let var = |name: &str, source: &str, q: f64| {
            format!("    {name}:\n      function: quantile\n      source: {source}\n      params: {{q: {q}}}\n")
        };
        let mut yaml = super::super::ATL06_YAML.to_owned();
        for name in ["h_q25", "h_q50", "h_q75"] {
            let start = yaml.find(&format!("    {name}:")).unwrap();
            let end = yaml[start..].find("dtype: float32\n").unwrap() + start + "dtype: float32\n".len();
            yaml.replace_range(start..end, "");
        }
        let extra = [var("a", "h_li", 0.9), var("b", "s_li", 0.5), var("c", "h_li", 0.1), var("d", "h_li", 0.9)].concat();
        let yaml = yaml.replacen("\noutput:", &format!("{extra}\noutput:"), 1);
        let get = compiled_sql(&yaml);
        assert_eq!(get("a"), "quantiles(\"h_li\", 0.9, 0.1)[1]");
        assert_eq!(get("b"), "quantile(\"s_li\", 0.5)");
        assert_eq!(get("c"), "quantiles(\"h_li\", 0.9, 0.1)[2]");
        assert_eq!(get("d"), "quantiles(\"h_li\", 0.9, 0.1)[1]");
    }

    /// numpy's var / std / median (functions and expression reductions) compile to magg's
    /// numpy-exact aggregates, with ddof passed through, and run.
    #[tokio::test(flavor = "current_thread")]
    async fn numpy_statistics_compile_to_the_udfs_aggregates_and_run() {
        use arrow::array::{AsArray, Float64Array, RecordBatch};
        use arrow::datatypes::{Field, Float64Type, Schema};
        use datafusion::datasource::MemTable;
        use std::sync::Arc;

        let more = concat!(
            "      params: {ddof: 0}\n",
            "    var1:\n      function: nanvar\n      source: h_li\n      params: {ddof: 1}\n",
            "    std0:\n      function: np.std\n      source: h_li\n",
            "    std1:\n      function: std\n      source: h_li\n      params: {ddof: \"1\"}\n",
            "    med:\n      function: nanmedian\n      source: h_li\n",
            "    expr:\n      expression: np.std(h_li) / np.sqrt(len(h_li)) + 0 * np.median(s_li) + 0 * np.var(h_li)\n",
        );
        let variance = "    h_variance:\n      function: var\n      source: h_li\n";
        let yaml = super::super::ATL06_YAML.replacen(variance, &format!("{variance}{more}"), 1);
        let sql = compiled_sql(&yaml);
        assert_eq!(sql("h_variance"), "np_var(\"h_li\")");
        assert_eq!(sql("var1"), "np_var(\"h_li\", 1)");
        assert_eq!(sql("std0"), "np_std(\"h_li\")");
        assert_eq!(sql("std1"), "np_std(\"h_li\", 1)");
        assert_eq!(sql("med"), "np_median(\"h_li\")");
        assert_eq!(
            sql("expr"),
            "(((np_std(\"h_li\") / sqrt(count(\"h_li\"))) + (0.0 * np_median(\"s_li\"))) + (0.0 * np_var(\"h_li\")))"
        );

        // numpy on h = [3000.01, 3000.02, 2999.98, 3000.5, 2999.9] (Python floats).
        let h = Float64Array::from(vec![3000.01, 3000.02, 2999.98, 3000.5, 2999.9]);
        let s_li = Float64Array::from(vec![0.1, 0.2, 0.1, 0.3, 0.25]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("h_li", DataType::Float64, true),
            Field::new("s_li", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(h), Arc::new(s_li)]).unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        magg_udfs::register_all(&ctx);
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())).unwrap();
        let names = ["h_variance", "var1", "std0", "std1", "med", "expr"];
        let select: Vec<String> = names.iter().map(|n| sql(n)).collect();
        let batches = ctx.sql(&format!("SELECT {} FROM t", select.join(", "))).await.unwrap().collect().await.unwrap();
        let want = [0.0454559999999868, 0.056819999999983495, 0.2132041275397519, 0.23836946113121013, 3000.01, 0.09534778445248404];
        for (j, (name, want)) in names.iter().zip(want).enumerate() {
            let got = batches[0].column(j).as_primitive::<Float64Type>().value(0);
            assert!(((got - want) / want).abs() < 1e-12, "{name}: {got} vs numpy {want}");
        }
    }

    #[test]
    fn bad_params_are_named() {
        let yaml = super::super::ATL06_YAML.replacen("        q: 0.25\n", "        q: 1.5\n", 1);
        let err = PipelineConfig::from_yaml(&yaml, "x", std::path::Path::new("x.yaml")).unwrap_err();
        assert_eq!(err.to_string(), "config x.yaml: aggregation.variables.h_q25.params.q: got 1.5, expected 0..=1");
        let yaml = super::super::ATL06_YAML.replacen("function: min\n      source: h_li\n", "function: min\n      source: h_li\n      params: {q: 1}\n", 1);
        let err = PipelineConfig::from_yaml(&yaml, "x", std::path::Path::new("x.yaml")).unwrap_err();
        assert_eq!(err.to_string(), "config x.yaml: aggregation.variables.h_min.params.q: min takes no params");
    }
}
