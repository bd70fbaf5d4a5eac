//! The magg Lambda function: one parent cell per invocation.
//!
//! Everything the function does is in the library (`magg::run::event::handle`, which
//! runs `magg::run::worker::run_cell`, the same code `magg run` uses for a cell); this
//! file only connects it to the Lambda runtime. The event and response are those of
//! REFERENCE.md section 6 (see `magg::run::event`). Credentials for the output store
//! come from the function's role; credentials for the granules from the event's
//! `s3_credentials` (NSIDC's temporary keys), or the role when absent.
//!
//! Cores: Lambda gives one vCPU per 1,769 MB; the handler uses every core it sees.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let response = magg::run::event::handle(event.payload, workers).await;
        Ok::<_, Error>(serde_json::to_value(response)?)
    }))
    .await
}
