//! The one `SessionContext` constructor: every front end (CLI, Lambda, tests) builds its
//! context here so they all see the same functions and settings.

use std::sync::Arc;

use datafusion::prelude::{SessionConfig, SessionContext};

use crate::table::GranuleTable;

/// Settings of a session.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    /// Partitions per query (parallel scan units); the number of cores by default.
    pub target_partitions: usize,
    /// Rows per batch in DataFusion operators.
    pub batch_size: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            target_partitions: std::thread::available_parallelism().map_or(1, |n| n.get()),
            batch_size: 8192,
        }
    }
}

/// A context with every magg function registered (HEALPix, morton, numpy aggregates).
pub fn context(options: SessionOptions) -> SessionContext {
    let config = SessionConfig::new()
        .with_target_partitions(options.target_partitions.max(1))
        .with_batch_size(options.batch_size.max(1))
        .with_information_schema(true);
    let ctx = SessionContext::new_with_config(config);
    magg_udfs::register_all(&ctx);
    ctx
}

/// Register a granule table under its configured name.
pub fn register_table(ctx: &SessionContext, table: Arc<GranuleTable>) -> datafusion::error::Result<()> {
    let name = table.options().name.clone();
    ctx.register_table(name.as_str(), table)?;
    Ok(())
}
