//! The IAM actions steward calls, declared beside the code that calls them
//! (as Cloud Custodian's actions declare `permissions`). Each adapter file of
//! a function crate has a `PERMISSIONS` list and the crate's `permissions()`
//! gathers them; the grants here come with the invocation kit or with a
//! trigger kind and are declared once. A test reads the templates in
//! `infra/` and fails, naming the template and the action, when a role lacks
//! a declared action or grants one nothing declares.

/// What every function's kit calls: notifications (on a topic encrypted
/// with a customer managed key, so the publisher needs the key's data-key
/// and decrypt rights), the idempotency table, the policy parameter,
/// member-account roles, and the asynchronous dead-letter queue that Lambda
/// writes with the function's role.
pub const KIT: &[&str] = &[
    "sns:Publish",
    "kms:GenerateDataKey",
    "kms:Decrypt",
    "dynamodb:PutItem",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "ssm:GetParameter",
    "sts:AssumeRole",
    "sqs:SendMessage",
];

/// What an SQS event-source mapping needs of the function's role.
pub const SQS_TRIGGER: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
];

/// What Lambda needs to write the function's logs.
pub const LOGS: &[&str] = &[
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
];

/// True when an IAM action pattern (`ec2:Describe*`) covers `action` (`ec2:DescribeInstances`).
/// Service prefixes compare case-insensitively, as IAM does.
pub fn covers(pattern: &str, action: &str) -> bool {
    glob(
        pattern.to_ascii_lowercase().as_bytes(),
        action.to_ascii_lowercase().as_bytes(),
    )
}

/// `*` matches any run of characters, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| glob(rest, &text[skip..])),
        Some((b'?', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_actions() {
        assert!(covers("ec2:Describe*", "ec2:DescribeInstances"));
        assert!(covers("EC2:describeinstances", "ec2:DescribeInstances"));
        assert!(!covers("ec2:Describe*", "ec2:StopInstances"));
        assert!(covers("ec2:*Instances", "ec2:StopInstances"));
        assert!(!covers("ec2:StopInstances", "ec2:StartInstances"));
    }
}
