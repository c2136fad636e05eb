//! Batch calls (EC2 StopInstances/StartInstances take many ids) and what to
//! do when one fails. A batch rejected for one of its ids (an unknown id, an
//! instance in the wrong state) is split in halves until the bad id is
//! isolated, so the rest proceed. A batch that failed because AWS was busy
//! (throttling, a 5xx, no answer) is NOT split (splitting would send about
//! 2n-1 calls into an API that is already throttling): the whole batch is
//! retried after a pause, a few times, then reported failed so the next run
//! takes it up. The decision ([`next_step`]) is pure.

use std::future::Future;
use std::time::Duration;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::model::ItemResult;

/// Ids per call (EC2 takes many; a rejected batch is split, so a large
/// batch costs little when something fails).
pub const BATCH: usize = 500;
/// Whole-batch retries after the SDK's own retries gave up on a busy API.
pub const BUSY_RETRIES: u32 = 3;
/// The first pause before a whole-batch retry; it doubles each round.
pub const BUSY_PAUSE: Duration = Duration::from_millis(500);

/// Why a batch call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The API throttled the caller (`steward_shared::sdk::is_throttling`).
    Throttled,
    /// A 5xx, a timeout or no answer: nothing to do with the ids.
    Unavailable,
    /// The service refused the request, likely for one of its ids
    /// (`InvalidInstanceID.NotFound`, `IncorrectInstanceState`, ...).
    Rejected,
}

/// A failed batch call: the message for the report and its cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    pub message: String,
    pub cause: Cause,
}

impl BatchFailure {
    /// Classifies an SDK error of `operation`.
    pub fn from_sdk<E>(operation: &str, error: &SdkError<E, HttpResponse>) -> BatchFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let cause = if steward_shared::sdk::is_throttling(error) {
            Cause::Throttled
        } else if steward_shared::sdk::is_transient(error)
            || error
                .raw_response()
                .is_some_and(|r| r.status().is_server_error())
        {
            Cause::Unavailable
        } else {
            Cause::Rejected
        };
        BatchFailure {
            message: steward_shared::sdk::describe_brief(operation, error),
            cause,
        }
    }
}

/// What to do after a batch of `len` ids failed for `cause` on whole-batch round `round` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Split in halves to isolate the rejected id.
    Split,
    /// Send the same batch again after the pause.
    RetryWhole { after: Duration },
    /// Report every id of the batch failed with the error.
    GiveUp,
}

/// The pure decision: split only on a rejection; retry the whole batch when AWS was busy.
pub fn next_step(cause: Cause, len: usize, round: u32) -> NextStep {
    match cause {
        Cause::Rejected if len > 1 => NextStep::Split,
        Cause::Rejected => NextStep::GiveUp,
        Cause::Throttled | Cause::Unavailable if round < BUSY_RETRIES => NextStep::RetryWhole {
            after: BUSY_PAUSE * 2u32.pow(round),
        },
        Cause::Throttled | Cause::Unavailable => NextStep::GiveUp,
    }
}

/// Runs `call` on `ids` in batches of [`BATCH`], following [`next_step`]
/// on each failure; one result per id.
pub async fn isolate<F, Fut>(ids: Vec<String>, call: F) -> Vec<ItemResult>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<(), BatchFailure>>,
{
    isolate_pausing(ids, call, tokio::time::sleep).await
}

/// [`isolate`] with the pause between whole-batch retries given (tests pass one that does not wait).
pub async fn isolate_pausing<F, Fut, P, PFut>(
    ids: Vec<String>,
    call: F,
    pause: P,
) -> Vec<ItemResult>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<(), BatchFailure>>,
    P: Fn(Duration) -> PFut,
    PFut: Future<Output = ()>,
{
    let mut results = Vec::new();
    let mut pending: Vec<(Vec<String>, u32)> = ids.chunks(BATCH).map(|c| (c.to_vec(), 0)).collect();
    pending.reverse();
    while let Some((batch, round)) = pending.pop() {
        let Err(failure) = call(batch.clone()).await else {
            results.extend(batch.iter().map(|id| ItemResult::ok(id)));
            continue;
        };
        match next_step(failure.cause, batch.len(), round) {
            NextStep::Split => {
                tracing::warn!(batch = batch.len(), error = %failure.message, "batch rejected; splitting it to isolate the failing id");
                let half = batch.len() / 2;
                pending.push((batch[half..].to_vec(), round));
                pending.push((batch[..half].to_vec(), round));
            }
            NextStep::RetryWhole { after } => {
                tracing::warn!(batch = batch.len(), error = %failure.message, pause_ms = after.as_millis() as u64, "AWS is busy; retrying the whole batch after a pause");
                pause(after).await;
                pending.push((batch, round + 1));
            }
            NextStep::GiveUp => results.extend(
                batch
                    .iter()
                    .map(|id| ItemResult::failed(id, failure.message.clone())),
            ),
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i-{i:04}")).collect()
    }

    fn failure(cause: Cause) -> BatchFailure {
        BatchFailure {
            message: format!("{cause:?}"),
            cause,
        }
    }

    async fn no_pause(_: Duration) {}

    #[test]
    fn only_a_rejection_splits_a_batch() {
        assert_eq!(next_step(Cause::Rejected, 500, 0), NextStep::Split);
        assert_eq!(next_step(Cause::Rejected, 1, 0), NextStep::GiveUp);
        for cause in [Cause::Throttled, Cause::Unavailable] {
            assert_eq!(
                next_step(cause, 500, 0),
                NextStep::RetryWhole { after: BUSY_PAUSE }
            );
            assert_eq!(
                next_step(cause, 500, 2),
                NextStep::RetryWhole {
                    after: BUSY_PAUSE * 4
                }
            );
            assert_eq!(next_step(cause, 500, BUSY_RETRIES), NextStep::GiveUp);
            assert_eq!(next_step(cause, 1, BUSY_RETRIES), NextStep::GiveUp);
        }
    }

    #[tokio::test]
    async fn a_rejected_id_is_isolated_and_the_rest_proceed() {
        let calls = AtomicUsize::new(0);
        let results = isolate_pausing(
            ids(1200),
            |batch| {
                calls.fetch_add(1, Ordering::Relaxed);
                async move {
                    if batch.iter().any(|id| id == "i-0777") {
                        Err(failure(Cause::Rejected))
                    } else {
                        Ok(())
                    }
                }
            },
            no_pause,
        )
        .await;
        assert_eq!(results.len(), 1200);
        let failed: Vec<&ItemResult> = results.iter().filter(|r| r.result.is_err()).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].id, "i-0777");
        // Three batches of at most 500, then about log2(500) splits for the failing one.
        let n = calls.load(Ordering::Relaxed);
        assert!(n <= 3 + 2 * 9, "{n} calls");
    }

    #[tokio::test]
    async fn a_throttled_batch_is_retried_whole_not_split() {
        // Every batch is throttled on its first call: 3 batches, 3 retries, no split.
        let calls = AtomicUsize::new(0);
        let seen = std::sync::Mutex::new(std::collections::HashSet::new());
        let pauses = std::sync::Mutex::new(Vec::new());
        let results = isolate_pausing(
            ids(1200),
            |batch| {
                calls.fetch_add(1, Ordering::Relaxed);
                let first = seen.lock().unwrap().insert(batch[0].clone());
                async move {
                    if first {
                        Err(failure(Cause::Throttled))
                    } else {
                        Ok(())
                    }
                }
            },
            |d| {
                pauses.lock().unwrap().push(d);
                no_pause(d)
            },
        )
        .await;
        assert_eq!(results.len(), 1200);
        assert!(results.iter().all(|r| r.result.is_ok()));
        assert_eq!(calls.load(Ordering::Relaxed), 6, "not 2n-1 calls");
        assert_eq!(*pauses.lock().unwrap(), vec![BUSY_PAUSE; 3]);
    }

    #[tokio::test]
    async fn a_batch_that_stays_throttled_is_reported_failed_whole() {
        let calls = AtomicUsize::new(0);
        let results = isolate_pausing(
            ids(40),
            |_| {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err(failure(Cause::Throttled)) }
            },
            no_pause,
        )
        .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1 + BUSY_RETRIES as usize);
        assert_eq!(results.len(), 40);
        assert!(results.iter().all(|r| r.result.is_err()));
    }
}
