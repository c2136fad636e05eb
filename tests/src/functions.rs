//! Every function crate, as the harness sees it: its name and the IAM actions
//! its code declares (`<crate>::permissions()`), for the permissions test.

use std::collections::BTreeMap;

/// Each function's name and the actions its adapters declare.
pub fn declared_permissions() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        (tag_enforcer::FUNCTION_NAME, tag_enforcer::permissions()),
        (
            offhours_scheduler::FUNCTION_NAME,
            offhours_scheduler::permissions(),
        ),
        (secret_rotator::FUNCTION_NAME, secret_rotator::permissions()),
        (
            guardduty_responder::FUNCTION_NAME,
            guardduty_responder::permissions(),
        ),
        (
            compliance_notifier::FUNCTION_NAME,
            compliance_notifier::permissions(),
        ),
        (budget_alerter::FUNCTION_NAME, budget_alerter::permissions()),
        (
            snapshot_copier::FUNCTION_NAME,
            snapshot_copier::permissions(),
        ),
    ])
}
