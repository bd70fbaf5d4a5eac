//! Errors as users read them, and as orchestrators act on them.
//!
//! [`message`] turns an error and its causes into one line: each cause once (magg's
//! messages already quote their cause, and DataFusion wraps it again), secrets redacted.
//! [`CellError`] is the per-cell failure of a run: a kind, whether trying again may help
//! (throttling, time-outs, 5xx: yes; a corrupt granule, a bad config: no), and the
//! message. The Lambda handler answers with it and `magg invoke` decides retries on it.

use std::error::Error;

use serde::{Deserialize, Serialize};

/// The error and every cause not already quoted by the one before, joined with `: `,
/// with secrets in URLs replaced ([`crate::store::redact`]).
pub fn message(err: &(dyn Error + 'static)) -> String {
    let mut out = clean(&err.to_string());
    let mut source = err.source();
    while let Some(e) = source {
        let text = clean(&e.to_string());
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    crate::store::redact(&out)
}

/// Strip the wrappers DataFusion puts around an error from a table or a UDF.
fn clean(text: &str) -> String {
    let mut t = text.trim();
    loop {
        let before = t;
        for prefix in ["External error: ", "Arrow error: ", "Execution error: ", "Object Store error: "] {
            if let Some(rest) = t.strip_prefix(prefix) {
                t = rest;
            }
        }
        if t == before {
            return t.to_owned();
        }
    }
}

/// What kind of failure a cell had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A granule is missing, empty, corrupt or not what the config describes.
    Input,
    /// The pipeline config or the cell argument is invalid.
    Config,
    /// The endpoint could not be reached (DNS, refused, reset).
    Unreachable,
    /// Credentials were missing, wrong or expired (401, 403).
    Unauthorized,
    /// The service asked to slow down or failed on its side (429, 5xx).
    Throttled,
    /// A request took longer than its time limit.
    Timeout,
    /// The output store is missing its template or rejected a write.
    Output,
    /// A bug: a panic, an impossible state.
    Internal,
}

impl ErrorKind {
    /// Whether the same cell may succeed if run again unchanged.
    pub fn retryable(self) -> bool {
        matches!(self, Self::Unreachable | Self::Throttled | Self::Timeout)
    }

    /// Whether this failure is about the environment rather than the cell, so that
    /// several cells in a row failing this way mean every cell will (the run stops).
    pub fn systemic(self) -> bool {
        matches!(self, Self::Unreachable | Self::Unauthorized | Self::Timeout)
    }
}

/// A cell that failed: what kind of failure, whether to retry, and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CellError {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// Whether running the cell again may succeed.
    pub retryable: bool,
    /// The message, causes included once, secrets redacted.
    pub message: String,
}

impl CellError {
    /// A failure of `kind` with `message` (redacted here).
    pub fn new(kind: ErrorKind, message: impl AsRef<str>) -> Self {
        Self { kind, retryable: kind.retryable(), message: crate::store::redact(message.as_ref()) }
    }

    /// Classify an error by its causes.
    pub fn from_error(err: &(dyn Error + 'static)) -> Self {
        Self::new(classify(err), message(err))
    }

    /// The same failure with `context` (the cell, the chunk) in front of the message.
    pub fn context(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

/// The kind of an error, from the typed errors in its chain first and the wording of
/// HTTP failures (which reach us as text inside object_store's generic error) second.
pub fn classify(err: &(dyn Error + 'static)) -> ErrorKind {
    let mut text = String::new();
    let mut e: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(cur) = e {
        if let Some(k) = typed_kind(cur) {
            return k;
        }
        text.push_str(&cur.to_string().to_ascii_lowercase());
        text.push('\n');
        e = cur.source();
    }
    kind_from_text(&text).unwrap_or(ErrorKind::Internal)
}

fn typed_kind(e: &(dyn Error + 'static)) -> Option<ErrorKind> {
    use crate::h5::H5Error;
    if let Some(os) = e.downcast_ref::<object_store::Error>() {
        return match os {
            object_store::Error::NotFound { .. } => Some(ErrorKind::Input),
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                Some(ErrorKind::Unauthorized)
            }
            // Generic errors carry the HTTP failure as text: decided by the caller.
            _ => kind_from_text(&message(os).to_ascii_lowercase()),
        };
    }
    if let Some(t) = e.downcast_ref::<crate::table::TableError>() {
        use crate::table::TableError as T;
        return match t {
            T::Granule { source, .. } => typed_kind(source.as_ref()),
            T::Column(_) => Some(ErrorKind::Config),
            T::Arrow { .. } | T::Internal(_) => Some(ErrorKind::Internal),
            _ => Some(ErrorKind::Input),
        };
    }
    // A boxed reader error (how the table holds it) is its own node in a chain.
    if let Some(h) = e.downcast_ref::<Box<H5Error>>() {
        return typed_kind(h.as_ref());
    }
    if let Some(h) = e.downcast_ref::<H5Error>() {
        return match h {
            H5Error::Io { source, .. } => typed_kind(source).or(Some(ErrorKind::Input)),
            H5Error::Store(_) => Some(ErrorKind::Config),
            _ => Some(ErrorKind::Input),
        };
    }
    if e.downcast_ref::<crate::config::ConfigError>().is_some() || e.downcast_ref::<crate::source::SourceError>().is_some() {
        return Some(ErrorKind::Config);
    }
    if let Some(s) = e.downcast_ref::<crate::sink::SinkError>() {
        return match s {
            crate::sink::SinkError::Store { source, .. } => typed_kind(source).or(Some(ErrorKind::Output)),
            _ => Some(ErrorKind::Output),
        };
    }
    None
}

fn kind_from_text(text: &str) -> Option<ErrorKind> {
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if has(&["timed out", "timeout", "deadline has elapsed"]) {
        Some(ErrorKind::Timeout)
    } else if has(&["429", "too many requests", "slowdown", "slow down", "throttl", "status: 500", "status: 502", "status: 503", "status: 504", "service unavailable", "bad gateway", "internal server error"]) {
        Some(ErrorKind::Throttled)
    } else if has(&["401", "403", "forbidden", "unauthorized", "accessdenied", "access denied", "invalidaccesskeyid", "signaturedoesnotmatch", "expiredtoken", "credentials"]) {
        Some(ErrorKind::Unauthorized)
    } else if has(&["connection refused", "error trying to connect", "dns error", "connection reset", "tcp connect", "failed to lookup address", "network unreachable", "connection closed"]) {
        Some(ErrorKind::Unreachable)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("granule g.h5: {source}")]
    struct Outer {
        source: Inner,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("dataset /gt1l/x not found")]
    struct Inner;

    #[test]
    fn causes_appear_once() {
        let e = Outer { source: Inner };
        assert_eq!(message(&e), "granule g.h5: dataset /gt1l/x not found");
        let df = datafusion::error::DataFusionError::External(Box::new(Outer { source: Inner }));
        assert_eq!(message(&df), "granule g.h5: dataset /gt1l/x not found");
    }

    #[test]
    fn kinds_from_typed_errors_and_http_text() {
        let nf = crate::h5::H5Error::NotFound { url: "a.h5".into(), path: "/".into() };
        assert_eq!(classify(&nf), ErrorKind::Input);
        let denied = object_store::Error::PermissionDenied { path: "k".into(), source: "403 Forbidden".into() };
        assert_eq!(classify(&denied), ErrorKind::Unauthorized);
        let generic = |t: &str| object_store::Error::Generic { store: "S3", source: t.to_owned().into() };
        assert_eq!(classify(&generic("error sending request: operation timed out")), ErrorKind::Timeout);
        assert_eq!(classify(&generic("Server returned non-2xx status code: 503 Service Unavailable")), ErrorKind::Throttled);
        assert_eq!(classify(&generic("error trying to connect: tcp connect error: Connection refused")), ErrorKind::Unreachable);
        assert!(ErrorKind::Timeout.retryable() && ErrorKind::Throttled.retryable());
        assert!(!ErrorKind::Input.retryable() && !ErrorKind::Config.retryable());
        let e = CellError::from_error(&generic("https://u:p@h/x?X-Amz-Signature=s3cr3t: 503 Service Unavailable"));
        assert!(e.retryable && !e.message.contains("s3cr3t") && !e.message.contains("u:p@"), "{e:?}");
    }
}
