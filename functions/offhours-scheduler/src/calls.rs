//! Counts the AWS API requests the resource adapters send (every attempt,
//! retries included), so a run can report how many calls it made: in its
//! response and log line, and for the benchmark.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

static SENT: AtomicU64 = AtomicU64::new(0);
static BY_OPERATION: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// The SDK interceptor attached to every adapter client.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallCounter;

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "StewardCallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        SENT.fetch_add(1, Ordering::Relaxed);
        if let Some(meta) = cfg.load::<Metadata>() {
            let key = format!("{}.{}", meta.service(), meta.name());
            *BY_OPERATION
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_default() += 1;
        }
        Ok(())
    }
}

/// An SDK client of the service crate `$sdk` on `$config` (an `SdkConfig`)
/// with the [`CallCounter`] attached: the one way the adapters build clients.
macro_rules! counted_client {
    ($sdk:ident, $config:expr) => {
        $sdk::Client::from_conf(
            $sdk::config::Builder::from($config)
                .interceptor($crate::calls::CallCounter)
                .build(),
        )
    };
}
pub(crate) use counted_client;

/// Requests sent by the adapters since the process started.
pub fn sent() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// Requests sent per `Service.Operation` since the process started.
pub fn by_operation() -> BTreeMap<String, u64> {
    BY_OPERATION
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}
