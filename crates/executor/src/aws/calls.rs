//! `-vv`: one debug line per AWS call made (service, operation, account,
//! region, HTTP status, attempts, duration), from an interceptor on every
//! client. It reads the call's metadata only: never a header, a body or a
//! credential.

use std::time::Instant;

use aws_config::Region;
use aws_sdk_cloudformation::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// The log target `-vv` enables (`ROLECALL_LOG=executor::calls=debug` alone
/// shows just these lines).
const TARGET: &str = "executor::calls";

/// Logs every call of the client it is set on; `account` says whose
/// credentials the client uses (`caller` for the run's own).
#[derive(Clone, Debug)]
pub(super) struct CallLog {
    account: std::sync::Arc<str>,
}

impl CallLog {
    pub(super) fn new(account: &str) -> CallLog {
        CallLog {
            account: account.into(),
        }
    }
}

#[derive(Clone, Debug)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "rolecall-call-log"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if enabled() {
            cfg.interceptor_state().store_put(Started(Instant::now()));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !enabled() {
            return Ok(());
        }
        let (service, operation) = cfg.load::<Metadata>().map_or(("?", "?"), |m| (m.service(), m.name()));
        let region = cfg.load::<Region>().map_or("-", |r| r.as_ref());
        let attempts = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let millis = cfg.load::<Started>().map_or(0, |s| s.0.elapsed().as_millis());
        let status = context
            .response()
            .map_or_else(|| "no answer".to_owned(), |r| r.status().as_u16().to_string());
        let result = match context.output_or_error() {
            Some(Ok(_)) => "ok",
            Some(Err(_)) => "error",
            None => "-",
        };
        tracing::debug!(
            target: TARGET,
            account = %self.account,
            region = %region,
            status = %status,
            attempts,
            ms = millis as u64,
            "{service}.{operation} {result}"
        );
        Ok(())
    }
}
