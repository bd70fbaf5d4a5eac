//! The Lambda event and response of one cell (REFERENCE.md section 6), as plain data.
//!
//! The handler in `deployment/aws` only moves bytes between the Lambda runtime and
//! [`handle`]; `magg invoke` builds the same [`CellEvent`] and reads the same
//! [`CellResponse`]. Keeping both here lets the tests check the contract without a
//! runtime, and keeps the handler free of logic.
//!
//! ```json
//! {"chunk_idx": 3, "parent_morton": -4211322, "parent_order": 6, "child_order": 12,
//!  "granule_urls": ["s3://.../ATL06_...h5"], "store_path": "s3://bucket/out.zarr",
//!  "s3_credentials": {"accessKeyId": "...", "secretAccessKey": "...", "sessionToken": "..."},
//!  "config": "atl06"}
//! ```
//!
//! The response is `{"statusCode": 200|400|500, "body": "<json>"}`; the body has the
//! reference's fields (`parent_morton, cells_with_data, total_obs, granule_count,
//! files_processed, duration_s, error`) and magg's (`chunk_idx, rows_read,
//! rows_in_cell, absent_beams, failure, peak_rss_mb`). 400: the event is malformed
//! (the message names the field) or its config is invalid; 500: the store template is
//! missing, or the cell failed (`failure.retryable` says whether to try again).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CellReport;
use super::worker::{WorkerError, WorkerInputs, run_cell};
use crate::config::PipelineConfig;
use crate::errors::{CellError, ErrorKind};
use crate::store::StoreOptions;

/// Temporary S3 credentials for reading granules (NSIDC's, minted by the orchestrator).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    #[serde(default)]
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Credentials {
    // Never print secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3Credentials(<redacted>)")
    }
}

/// One cell's event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellEvent {
    /// The cell's chunk in the store.
    pub chunk_idx: Option<u64>,
    /// The parent cell (decimal morton).
    pub parent_morton: i64,
    /// The store's parent order.
    pub parent_order: Option<u8>,
    /// The store's child order.
    pub child_order: Option<u8>,
    /// The cell's granules.
    pub granule_urls: Vec<String>,
    /// The store (`s3://bucket/prefix` or a path the function can reach).
    pub store_path: String,
    /// Credentials for the granules; the function's own role when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_credentials: Option<S3Credentials>,
    /// The pipeline: a built-in name, an `s3://` URL, or the YAML text. Default `atl06`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// The response body (the reference's fields first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellBody {
    /// The parent cell.
    pub parent_morton: i64,
    /// Child cells with observations.
    pub cells_with_data: u64,
    /// Observations aggregated.
    pub total_obs: u64,
    /// Granules listed for the cell.
    pub granule_count: usize,
    /// Granules opened.
    pub files_processed: u64,
    /// Seconds spent.
    pub duration_s: f64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The chunk written.
    #[serde(default)]
    pub chunk_idx: Option<u64>,
    /// Rows whose coordinates were examined.
    #[serde(default)]
    pub rows_read: u64,
    /// Rows inside the cell.
    #[serde(default)]
    pub rows_in_cell: u64,
    /// Beams without coordinates, as `granule:group`.
    #[serde(default)]
    pub absent_beams: Vec<String>,
    /// The typed failure (kind, retryable).
    #[serde(default)]
    pub failure: Option<CellError>,
    /// Peak resident memory of the invocation, MB.
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
}

/// What the handler returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CellResponse {
    /// 200, 400 or 500.
    pub status_code: u16,
    /// [`CellBody`] as JSON text.
    pub body: String,
}

impl CellResponse {
    fn new(status_code: u16, body: &CellBody) -> Self {
        Self { status_code, body: serde_json::to_string(body).unwrap_or_default() }
    }

    /// The body, parsed.
    pub fn body(&self) -> Result<CellBody, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// A malformed event: the message names the field.
fn bad_request(parent_morton: i64, message: String) -> CellResponse {
    let failure = CellError::new(ErrorKind::Config, &message);
    CellResponse::new(400, &CellBody { parent_morton, error: Some(failure.message.clone()), failure: Some(failure), ..Default::default() })
}

/// Parse an event: every missing or mistyped field is named.
pub fn parse_event(event: &Value) -> Result<CellEvent, String> {
    let obj = event.as_object().ok_or_else(|| format!("event: got {}, expected a JSON object", kind_of(event)))?;
    for field in ["parent_morton", "granule_urls", "store_path"] {
        if !obj.contains_key(field) || obj[field].is_null() {
            return Err(format!("event: missing field {field:?}"));
        }
    }
    serde_json::from_value::<CellEvent>(event.clone()).map_err(|e| format!("event: {e}"))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Store options from the function's environment, with `creds` for the granules.
fn read_store(creds: Option<&S3Credentials>) -> StoreOptions {
    let mut o = StoreOptions::default();
    if let Some(c) = creds {
        o.access_key_id = Some(c.access_key_id.clone());
        o.secret_access_key = Some(c.secret_access_key.clone());
        o.session_token = c.session_token.clone();
    }
    o
}

/// The pipeline named by an event's `config`.
async fn pipeline_of(config: Option<&str>) -> Result<PipelineConfig, String> {
    match config {
        Some(text) if text.contains('\n') => {
            PipelineConfig::from_yaml(text, "atl06", std::path::Path::new("<event config>")).map_err(|e| crate::errors::message(&e))
        }
        other => super::load_pipeline(other, &StoreOptions::default()).await.map_err(|e| crate::errors::message(&e)),
    }
}

/// Peak resident memory of this process since the last reset, MB (Linux).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb / 1024.0)
}

/// Reset the peak so the next [`peak_rss_mb`] covers one invocation (a warm Lambda
/// process serves many).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Handle one event: parse it, run the cell, answer as the reference does.
pub async fn handle(event: Value, workers: usize) -> CellResponse {
    reset_peak_rss();
    let morton_hint = event.get("parent_morton").and_then(Value::as_i64).unwrap_or_default();
    let ev = match parse_event(&event) {
        Ok(ev) => ev,
        Err(m) => return bad_request(morton_hint, m),
    };
    let pipeline = match pipeline_of(ev.config.as_deref()).await {
        Ok(p) => p,
        Err(m) => return bad_request(ev.parent_morton, format!("event: config: {m}")),
    };
    let inputs = WorkerInputs {
        pipeline,
        parent_morton: ev.parent_morton,
        parent_order: ev.parent_order,
        child_order: ev.child_order,
        chunk_idx: ev.chunk_idx,
        granule_urls: ev.granule_urls.clone(),
        store_url: ev.store_path.clone(),
        read_store: read_store(ev.s3_credentials.as_ref()),
        write_store: StoreOptions::default(),
        workers: workers.max(1),
    };
    match run_cell(&inputs).await {
        Ok(report) => {
            let status = if report.failure.is_some() { 500 } else { 200 };
            CellResponse::new(status, &body_of(&report))
        }
        Err(e @ WorkerError::Mismatch(_)) => bad_request(ev.parent_morton, e.to_string()),
        Err(e) => {
            let failure = e.to_cell_error();
            CellResponse::new(
                500,
                &CellBody {
                    parent_morton: ev.parent_morton,
                    granule_count: ev.granule_urls.len(),
                    chunk_idx: ev.chunk_idx,
                    error: Some(failure.message.clone()),
                    failure: Some(failure),
                    peak_rss_mb: peak_rss_mb(),
                    ..Default::default()
                },
            )
        }
    }
}

/// The response body of a cell report.
pub fn body_of(r: &CellReport) -> CellBody {
    CellBody {
        parent_morton: r.parent_morton,
        cells_with_data: r.cells_with_data,
        total_obs: r.total_obs,
        granule_count: r.granule_count,
        files_processed: r.files_processed,
        duration_s: r.duration_s,
        error: r.error.clone(),
        chunk_idx: Some(r.chunk_idx),
        rows_read: r.rows_read,
        rows_in_cell: r.rows_in_cell,
        absent_beams: r.absent_beams.iter().map(|a| format!("{}:{}", a.granule, a.group)).collect(),
        failure: r.failure.clone(),
        peak_rss_mb: peak_rss_mb(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_events_name_the_field() {
        let cases = [
            (json!([1, 2]), "event: got an array, expected a JSON object"),
            (json!({"granule_urls": [], "store_path": "s"}), "missing field \"parent_morton\""),
            (json!({"parent_morton": -4211322, "store_path": "s"}), "missing field \"granule_urls\""),
            (json!({"parent_morton": "x", "granule_urls": [], "store_path": "s"}), "invalid type: string \"x\", expected i64"),
            (json!({"parent_morton": 1, "granule_urls": "a.h5", "store_path": "s"}), "expected a sequence"),
        ];
        for (ev, want) in cases {
            let err = parse_event(&ev).unwrap_err();
            assert!(err.contains(want), "{err} should contain {want}");
        }
        let ok = parse_event(&json!({
            "chunk_idx": 0, "parent_morton": -4211322, "parent_order": 6, "child_order": 12,
            "granule_urls": ["s3://b/g.h5"], "store_path": "s3://b/o.zarr",
            "s3_credentials": {"accessKeyId": "AK", "secretAccessKey": "SK", "sessionToken": "T"}
        }))
        .unwrap();
        assert_eq!(ok.s3_credentials.as_ref().unwrap().session_token.as_deref(), Some("T"));
        assert!(!format!("{ok:?}").contains("SK"), "credentials must not print");
    }

    #[tokio::test]
    async fn a_malformed_event_is_a_400_and_a_missing_template_a_500() {
        let r = handle(json!({"parent_morton": -4211322}), 1).await;
        assert_eq!(r.status_code, 400);
        assert!(r.body().unwrap().error.unwrap().contains("granule_urls"));
        let dir = tempfile::tempdir().unwrap();
        let r = handle(
            json!({"parent_morton": -4211322, "granule_urls": [], "store_path": dir.path().join("none.zarr")}),
            1,
        )
        .await;
        assert_eq!(r.status_code, 500, "{r:?}");
        let body = r.body().unwrap();
        assert!(body.error.unwrap().contains("has no template"));
        assert_eq!(body.failure.unwrap().kind, ErrorKind::Output);
    }
}
