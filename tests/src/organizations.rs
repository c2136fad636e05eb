//! The AWS Organizations set-up the suites share: an organization with its
//! root, organizational units under a parent, and member accounts created
//! in the root and moved where a test needs them.

use aws_config::SdkConfig;
use aws_sdk_organizations::types::OrganizationFeatureSet;
use aws_sdk_organizations::Client;

/// Creates an organization (all features) and returns its client and root id.
pub async fn organization(config: &SdkConfig) -> (Client, String) {
    let org = Client::new(config);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .expect("create the organization");
    let root = org
        .list_roots()
        .send()
        .await
        .expect("list the roots")
        .roots()[0]
        .id()
        .expect("the root has an id")
        .to_string();
    (org, root)
}

/// Creates the organizational unit `name` under `parent` and returns its id.
pub async fn organizational_unit(org: &Client, parent: &str, name: &str) -> String {
    org.create_organizational_unit()
        .parent_id(parent)
        .name(name)
        .send()
        .await
        .expect("create the organizational unit")
        .organizational_unit()
        .expect("the unit is returned")
        .id()
        .expect("the unit has an id")
        .to_string()
}

/// Creates the account `name` (`name@example.com`, in the root) and returns its id.
pub async fn account(org: &Client, name: &str) -> String {
    org.create_account()
        .email(format!("{name}@example.com"))
        .account_name(name)
        .send()
        .await
        .expect("create the account")
        .create_account_status()
        .expect("the account's status is returned")
        .account_id()
        .expect("the account has an id")
        .to_string()
}

/// Moves `account` from `from` to the unit `to`.
pub async fn move_account(org: &Client, account: &str, from: &str, to: &str) {
    org.move_account()
        .account_id(account)
        .source_parent_id(from)
        .destination_parent_id(to)
        .send()
        .await
        .expect("move the account");
}
