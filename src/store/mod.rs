//! Object store resolution and instrumentation.
//!
//! Every granule the engine reads is named by a URL: an absolute or relative local path,
//! `file://`, `s3://bucket/key` or `https://host/path`. [`resolve`] turns one into an
//! `Arc<dyn ObjectStore>` plus the object's [`Path`] inside it, so the HDF5 layer only ever
//! sees byte ranges of an object and never a filesystem or HTTP client.
//!
//! [`CountingStore`] wraps any store and counts requests, bytes and *waves* (groups of
//! requests in flight together), optionally adding a fixed latency per request. The I/O
//! tests and the benchmark use it to hold the reader to its round-trip budget; it is a
//! store adapter rather than a special case in the reader, so the reader cannot tell it is
//! being measured.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    ClientOptions, CopyOptions, GetOptions, GetRange, GetResult, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    RenameOptions,
};

/// Errors turning a URL into a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL could not be parsed.
    #[error("invalid url {url}: {detail}")]
    InvalidUrl { url: String, detail: String },
    /// The scheme is not one magg reads from.
    #[error("unsupported url scheme in {url}: got {scheme}, expected a local path, file, s3 or https")]
    UnsupportedScheme { url: String, scheme: String },
    /// Plain `http://` was given without [`StoreOptions::allow_http`].
    #[error("refusing plain http for {url}: set allow_http (or AWS_ALLOW_HTTP=true) to permit it")]
    HttpNotAllowed { url: String },
    /// The S3 endpoint is plain `http://` and [`StoreOptions::allow_http`] is off.
    #[error("{url}: the S3 endpoint {endpoint} is plain http; an http endpoint needs AWS_ALLOW_HTTP=true")]
    HttpEndpoint { url: String, endpoint: String },
    /// The object_store builder refused the configuration.
    #[error("cannot build object store for {url}: {source}")]
    Build {
        url: String,
        #[source]
        source: object_store::Error,
    },
}

/// Overrides for building stores. [`Default`] reads the usual AWS environment variables
/// (`AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`), so a Lambda with
/// temporary credentials works without flags; [`StoreOptions::none`] ignores the
/// environment (tests).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000` for a local server.
    pub endpoint: Option<String>,
    /// S3 region.
    pub region: Option<String>,
    /// Static credentials; when absent the builder's own chain (env, instance metadata) is used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow plain `http://` URLs and endpoints.
    pub allow_http: bool,
    /// Send unsigned requests (public buckets).
    pub skip_signature: bool,
    /// Do not read the environment (only the fields above apply). Set by [`StoreOptions::none`].
    pub ignore_env: bool,
    /// Time limits and retries of remote requests ([`Timeouts::default`] when `None`).
    pub timeouts: Option<Timeouts>,
}

/// How long a remote request may take, and how long it is retried.
///
/// object_store's own defaults retry a failing request for up to three minutes, so an
/// endpoint that hangs cost a run about 181 s per cell. magg's defaults give up on a dead
/// endpoint within about half a minute per request; the job then stops a run whose
/// cells keep failing the same way (see `crate::run`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time to establish a connection.
    pub connect: Duration,
    /// Time for one whole request (headers and body).
    pub request: Duration,
    /// Retries of a request that failed in a retryable way (5xx, 429, connection reset).
    pub max_retries: usize,
    /// Give up retrying after this long.
    pub retry_for: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
            max_retries: 3,
            retry_for: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    fn client_options(&self, allow_http: bool) -> ClientOptions {
        ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(self.connect)
            .with_timeout(self.request)
    }

    fn retry(&self) -> object_store::RetryConfig {
        object_store::RetryConfig {
            max_retries: self.max_retries,
            retry_timeout: self.retry_for,
            ..Default::default()
        }
    }
}

impl fmt::Debug for StoreOptions {
    // Credentials must never reach logs or error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "<set>"))
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "<set>"))
            .field("session_token", &self.session_token.as_ref().map(|_| "<set>"))
            .field("allow_http", &self.allow_http)
            .field("skip_signature", &self.skip_signature)
            .field("ignore_env", &self.ignore_env)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

impl StoreOptions {
    /// Options read from the environment (what [`Default`] gives when `ignore_env` is false,
    /// made explicit): endpoint, region, credentials and `AWS_ALLOW_HTTP`.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            endpoint: var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            allow_http: var("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            skip_signature: false,
            ignore_env: false,
            timeouts: None,
        }
    }

    /// Options that ignore the environment entirely.
    pub fn none() -> Self {
        Self { ignore_env: true, ..Self::default() }
    }

    fn effective(&self) -> StoreOptions {
        if self.ignore_env {
            return self.clone();
        }
        let env = Self::from_env();
        StoreOptions {
            endpoint: self.endpoint.clone().or(env.endpoint),
            region: self.region.clone().or(env.region),
            access_key_id: self.access_key_id.clone().or(env.access_key_id),
            secret_access_key: self.secret_access_key.clone().or(env.secret_access_key),
            session_token: self.session_token.clone().or(env.session_token),
            allow_http: self.allow_http || env.allow_http,
            skip_signature: self.skip_signature,
            ignore_env: false,
            timeouts: self.timeouts,
        }
    }
}

/// Resolve a granule URL into a store and the object's path inside it.
///
/// Accepts absolute or relative local paths, `file://`, `s3://bucket/key`,
/// `https://host/path` and, only with `allow_http`, `http://host/path`. No request is made.
pub fn resolve(url: &str, opts: &StoreOptions) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
    let invalid = |detail: String| StoreError::InvalidUrl { url: url.to_string(), detail };
    let Some((scheme, _)) = url.split_once("://") else {
        return local(url, std::path::Path::new(url));
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let build_err = |source| StoreError::Build { url: url.to_string(), source };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            let p = parsed
                .to_file_path()
                .map_err(|()| invalid("not a local file path".to_string()))?;
            local(url, &p)
        }
        "s3" | "s3a" => {
            let bucket = parsed
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| invalid("missing bucket".to_string()))?;
            let key = parsed.path().trim_start_matches('/');
            if key.is_empty() {
                return Err(invalid("missing object key".to_string()));
            }
            let o = opts.effective();
            let timeouts = o.timeouts.unwrap_or_default();
            let mut b = if o.ignore_env { AmazonS3Builder::new() } else { AmazonS3Builder::from_env() };
            b = b
                .with_bucket_name(bucket)
                .with_client_options(timeouts.client_options(o.allow_http))
                .with_retry(timeouts.retry());
            if let Some(e) = &o.endpoint {
                // Without this check the request fails later as reqwest's bare "builder error".
                if e.to_ascii_lowercase().starts_with("http://") && !o.allow_http {
                    return Err(StoreError::HttpEndpoint { url: url.to_string(), endpoint: e.clone() });
                }
                b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
            }
            if let Some(r) = &o.region {
                b = b.with_region(r);
            }
            if let Some(k) = &o.access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(s) = &o.secret_access_key {
                b = b.with_secret_access_key(s);
            }
            if let Some(t) = &o.session_token {
                b = b.with_token(t);
            }
            if o.skip_signature {
                b = b.with_skip_signature(true);
            }
            let store = b.build().map_err(build_err)?;
            let path = Path::from_url_path(key).map_err(|e| invalid(e.to_string()))?;
            Ok((Arc::new(store), path))
        }
        s @ ("https" | "http") => {
            let o = opts.effective();
            if s == "http" && !o.allow_http {
                return Err(StoreError::HttpNotAllowed { url: url.to_string() });
            }
            let host = parsed.host_str().ok_or_else(|| invalid("missing host".to_string()))?;
            let base = match parsed.port() {
                Some(p) => format!("{s}://{host}:{p}"),
                None => format!("{s}://{host}"),
            };
            let timeouts = o.timeouts.unwrap_or_default();
            let store = HttpBuilder::new()
                .with_url(base)
                .with_client_options(timeouts.client_options(o.allow_http))
                .with_retry(timeouts.retry())
                .build()
                .map_err(build_err)?;
            let path = Path::from_url_path(parsed.path()).map_err(|e| invalid(e.to_string()))?;
            Ok((Arc::new(store), path))
        }
        other => Err(StoreError::UnsupportedScheme { url: url.to_string(), scheme: other.to_string() }),
    }
}

/// The file [`resolve`] maps `url` to, when it is a local path or `file://` URL.
pub fn local_path(url: &str) -> Option<std::path::PathBuf> {
    match url.split_once("://") {
        None => std::path::absolute(url).ok(),
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("file") => url::Url::parse(url).ok()?.to_file_path().ok(),
        Some(_) => None,
    }
}

/// The canonical spelling of a granule URL, so that two spellings of one granule are
/// recognised as one: local paths are made absolute with `.` and `..` removed lexically
/// (`./a.h5`, `a.h5`, `dir/../a.h5` and `file:///cwd/a.h5` are the same file); remote
/// URLs go through the URL parser, which lower-cases scheme and host, drops a default
/// port and resolves dot segments. Nothing is read from disk or network.
pub fn normalize_url(url: &str) -> String {
    if let Some(p) = local_path(url) {
        let mut out = std::path::PathBuf::new();
        for c in p.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    if !out.pop() {
                        out.push(c);
                    }
                }
                c => out.push(c),
            }
        }
        return out.to_string_lossy().into_owned();
    }
    match url::Url::parse(url) {
        Ok(u) => u.to_string(),
        Err(_) => url.to_owned(),
    }
}

/// `text` with the secrets a URL can carry replaced by `***`: the user and password of
/// `scheme://user:pass@host`, and the values of query parameters that sign or authorise
/// a request (`X-Amz-Signature`, `X-Amz-Credential`, `X-Amz-Security-Token`, `token`,
/// `access_token`, `Signature`, `sig`, ...). Every message and report that may name a
/// granule URL passes through this.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    // userinfo: "://" ... "@" before any "/", whitespace or quote.
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c == '/' || c.is_whitespace() || matches!(c, '"' | '\'' | '?' | '#')).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    redact_query(&out)
}

/// Query parameter names (lower case) whose values are secrets, or that contain one of
/// these words.
const SECRET_PARAMS: [&str; 8] = ["signature", "credential", "token", "sig", "password", "secret", "key", "auth"];

fn redact_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let c = bytes[i];
        if (c == b'?' || c == b'&') && i + 1 < text.len() {
            // name=value after a separator
            let start = i + 1;
            let name_end = text[start..].find(|ch: char| ch == '=' || ch == '&' || ch.is_whitespace()).map_or(text.len(), |k| start + k);
            if name_end < text.len() && bytes[name_end] == b'=' {
                let name = text[start..name_end].to_ascii_lowercase();
                if SECRET_PARAMS.iter().any(|w| name.contains(w)) {
                    let value_end = text[name_end + 1..]
                        .find(|ch: char| ch == '&' || ch == '#' || ch.is_whitespace() || matches!(ch, '"' | '\'' | ')'))
                        .map_or(text.len(), |k| name_end + 1 + k);
                    out.push_str(&text[i..=name_end]);
                    out.push_str("***");
                    i = value_end;
                    continue;
                }
            }
        }
        let ch = text[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Fetch `ranges` of `location` (already merged by the caller), in the same order.
///
/// A local file is read in one blocking task through [`ObjectStore::get_ranges`], which
/// opens it once, even for a single range: a `get_range` costs two blocking-pool
/// hand-offs and an `open` + `stat`, which on a 30-granule cell was 1,256 opens for 1,156 reads.
/// Remote stores get one request per range, at most `concurrency` in flight (their
/// `get_ranges` would re-coalesce with its own, much larger gap).
pub(crate) async fn get_ranges(
    store: &Arc<dyn ObjectStore>,
    location: &Path,
    ranges: &[std::ops::Range<u64>],
    local: bool,
    concurrency: usize,
) -> object_store::Result<Vec<bytes::Bytes>> {
    use futures::{StreamExt, TryStreamExt};
    use object_store::ObjectStoreExt;
    match ranges {
        [] => return Ok(Vec::new()),
        _ if local => return store.get_ranges(location, ranges).await,
        [one] => return Ok(vec![store.get_range(location, one.clone()).await?]),
        _ => {}
    }
    let mut bodies: Vec<(usize, bytes::Bytes)> = futures::stream::iter(ranges.iter().cloned().enumerate().map(|(k, r)| async move {
        store.get_range(location, r).await.map(|b| (k, b))
    }))
    .buffer_unordered(concurrency.max(1))
    .try_collect()
    .await?;
    bodies.sort_unstable_by_key(|(k, _)| *k);
    Ok(bodies.into_iter().map(|(_, b)| b).collect())
}

/// A local file: the store is rooted at `/` and the path is absolute, so a missing file is
/// reported when it is opened (as `NotFound`), not here.
fn local(url: &str, p: &std::path::Path) -> Result<(Arc<dyn ObjectStore>, Path), StoreError> {
    let invalid = |detail: String| StoreError::InvalidUrl { url: url.to_string(), detail };
    let abs = std::path::absolute(p).map_err(|e| invalid(e.to_string()))?;
    let path = Path::from_absolute_path(&abs).map_err(|e| invalid(e.to_string()))?;
    Ok((Arc::new(LocalFileSystem::new()), path))
}

/// Request counters of a [`CountingStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// GET requests issued (ranged or whole).
    pub requests: u64,
    /// Bytes those requests returned.
    pub bytes: u64,
    /// Groups of overlapping requests: a request that starts while no other request is in
    /// flight opens a new wave. On a high-latency store, waves x latency is the floor of
    /// the wall time, whatever the number of requests.
    pub waves: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    waves: AtomicU64,
    in_flight: AtomicUsize,
}

/// An [`ObjectStore`] wrapper that counts GET requests, bytes and waves, and can inject a
/// fixed latency per request (to stand in for S3's first-byte latency in tests and
/// benchmarks). Writes, lists and deletes pass through uncounted.
#[derive(Debug, Clone)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    latency: Option<Duration>,
    counters: Arc<Counters>,
}

impl CountingStore {
    /// Wrap `inner`; with `latency`, every GET sleeps that long before it is served.
    pub fn new(inner: Arc<dyn ObjectStore>, latency: Option<Duration>) -> Self {
        Self { inner, latency, counters: Arc::new(Counters::default()) }
    }

    /// Counters since creation or the last [`CountingStore::reset`].
    pub fn stats(&self) -> IoStats {
        IoStats {
            requests: self.counters.requests.load(Ordering::SeqCst),
            bytes: self.counters.bytes.load(Ordering::SeqCst),
            waves: self.counters.waves.load(Ordering::SeqCst),
        }
    }

    /// Zero the counters (requests in flight keep running and are not recounted).
    pub fn reset(&self) {
        self.counters.requests.store(0, Ordering::SeqCst);
        self.counters.bytes.store(0, Ordering::SeqCst);
        self.counters.waves.store(0, Ordering::SeqCst);
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore({})", self.inner)
    }
}

/// Marks one request in flight; dropping it (also on error or cancellation) ends it.
struct InFlight<'a>(&'a Counters);

impl<'a> InFlight<'a> {
    fn start(c: &'a Counters) -> Self {
        c.requests.fetch_add(1, Ordering::SeqCst);
        if c.in_flight.fetch_add(1, Ordering::SeqCst) == 0 {
            c.waves.fetch_add(1, Ordering::SeqCst);
        }
        Self(c)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let _guard = InFlight::start(&self.counters);
        if let Some(l) = self.latency {
            tokio::time::sleep(l).await;
        }
        let head = options.head;
        let r = self.inner.get_opts(location, options).await?;
        if !head {
            self.counters.bytes.fetch_add(r.range.end.saturating_sub(r.range.start), Ordering::SeqCst);
        }
        Ok(r)
    }

    // get_ranges is deliberately not forwarded: the trait's default splits it into
    // get_opts calls, so every HTTP request the inner store would make is counted.

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// A ranged GET of `range` that also returns the object's total size (from the response's
/// content range), so opening a file costs one request instead of a HEAD plus a GET.
pub(crate) async fn get_range_with_size(
    store: &dyn ObjectStore,
    location: &Path,
    range: Range<u64>,
) -> object_store::Result<(bytes::Bytes, u64)> {
    let opts = GetOptions { range: Some(GetRange::Bounded(range)), ..GetOptions::default() };
    let r = store.get_opts(location, opts).await?;
    let size = r.meta.size;
    let bytes = r.bytes().await?;
    Ok((bytes, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[test]
    fn spellings_of_one_granule_normalise_alike() {
        let cwd = std::env::current_dir().unwrap();
        let abs = cwd.join("g/a.h5").to_string_lossy().into_owned();
        for spelling in ["g/a.h5", "./g/a.h5", "g/./a.h5", "g/x/../a.h5", "g//a.h5"] {
            assert_eq!(normalize_url(spelling), abs, "{spelling}");
        }
        assert_eq!(normalize_url(&format!("file://{abs}")), abs);
        assert_eq!(normalize_url("S3://bucket/a/./b/../c.h5"), "s3://bucket/a/c.h5");
        assert_eq!(normalize_url("https://Host.example:443/x.h5"), "https://host.example/x.h5");
        assert_ne!(normalize_url("s3://bucket/a.h5"), normalize_url("s3://bucket/b.h5"));
    }

    #[test]
    fn secrets_in_urls_are_redacted() {
        let cases = [
            ("granule https://alice:hunter2@host/g.h5: not found", "granule https://***@host/g.h5: not found"),
            (
                "https://b.s3.amazonaws.com/g.h5?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc123&x-amz-security-token=zzz",
                "https://b.s3.amazonaws.com/g.h5?X-Amz-Algorithm=AWS4&X-Amz-Credential=***&X-Amz-Signature=***&x-amz-security-token=***",
            ),
            ("\"https://h/g.h5?token=t0k&page=2\" failed", "\"https://h/g.h5?token=***&page=2\" failed"),
            ("s3://bucket/key.h5 is fine", "s3://bucket/key.h5 is fine"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want);
            for secret in ["hunter2", "abc123", "zzz", "t0k", "AKIA"] {
                assert!(!redact(text).contains(secret));
            }
        }
    }

    #[test]
    fn a_plain_http_endpoint_without_allow_http_names_the_setting() {
        let opts = StoreOptions { endpoint: Some("http://127.0.0.1:9".into()), region: Some("us-east-1".into()), ..StoreOptions::none() };
        let err = resolve("s3://b/k.h5", &opts).err().unwrap().to_string();
        assert!(err.contains("needs AWS_ALLOW_HTTP=true"), "{err}");
        let ok = StoreOptions { allow_http: true, ..opts };
        assert!(resolve("s3://b/k.h5", &ok).is_ok());
    }

    #[test]
    fn resolves_local_s3_and_https() {
        let (_, p) = resolve("/tmp/a/b.h5", &StoreOptions::none()).unwrap();
        assert_eq!(p.as_ref(), "tmp/a/b.h5");
        let (_, p) = resolve("file:///tmp/x.h5", &StoreOptions::none()).unwrap();
        assert_eq!(p.as_ref(), "tmp/x.h5");
        let opts = StoreOptions { region: Some("us-west-2".into()), ..StoreOptions::none() };
        let (s, p) = resolve("s3://bucket/ATLAS/ATL06/a.h5", &opts).unwrap();
        assert_eq!(p.as_ref(), "ATLAS/ATL06/a.h5");
        assert!(s.to_string().contains("bucket"), "{s}");
        let (_, p) = resolve("https://example.com/data/g.h5", &StoreOptions::none()).unwrap();
        assert_eq!(p.as_ref(), "data/g.h5");
        // The local file behind a URL, exactly when resolve picks the local store.
        assert_eq!(local_path("/tmp/a/b.h5"), Some("/tmp/a/b.h5".into()));
        assert_eq!(local_path("file:///tmp/x.h5"), Some("/tmp/x.h5".into()));
        assert_eq!(local_path("rel/c.h5"), Some(std::env::current_dir().unwrap().join("rel/c.h5")));
        assert_eq!(local_path("s3://bucket/a.h5"), None);
        assert_eq!(local_path("https://example.com/data/g.h5"), None);
    }

    #[test]
    fn rejects_http_without_opt_in_and_unknown_schemes() {
        let e = resolve("http://example.com/g.h5", &StoreOptions::none()).unwrap_err();
        assert!(matches!(e, StoreError::HttpNotAllowed { .. }), "{e}");
        let opts = StoreOptions { allow_http: true, ..StoreOptions::none() };
        assert!(resolve("http://example.com/g.h5", &opts).is_ok());
        let e = resolve("gs://b/k", &StoreOptions::none()).unwrap_err();
        assert!(e.to_string().contains("got gs"), "{e}");
        let e = resolve("s3://bucket", &StoreOptions::none()).unwrap_err();
        assert!(e.to_string().contains("missing object key"), "{e}");
    }

    #[tokio::test]
    async fn counts_requests_bytes_and_waves() {
        let mem = Arc::new(InMemory::new());
        let p = Path::from("x");
        mem.put(&p, vec![7u8; 1000].into()).await.unwrap();
        let c = CountingStore::new(mem, Some(Duration::from_millis(20)));
        // three concurrent requests: one wave
        let (a, b, d) = tokio::join!(c.get_range(&p, 0..10), c.get_range(&p, 10..30), c.get_range(&p, 100..200));
        assert_eq!(a.unwrap().len() + b.unwrap().len() + d.unwrap().len(), 130);
        assert_eq!(c.stats(), IoStats { requests: 3, bytes: 130, waves: 1 });
        // then a sequential one: a second wave
        c.get_range(&p, 0..1).await.unwrap();
        assert_eq!(c.stats(), IoStats { requests: 4, bytes: 131, waves: 2 });
        c.reset();
        assert_eq!(c.stats(), IoStats::default());
        let (bytes, size) = get_range_with_size(&c, &p, 0..4096).await.unwrap();
        assert_eq!((bytes.len(), size), (1000, 1000));
    }
}
