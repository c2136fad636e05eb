//! Notifications for the security team (SPEC section 4): the subject line, the
//! readable text for email, the chat JSON (Amazon Q Developer custom
//! notification schema) for machines, the message attributes for filter
//! policies, and the 256 KB bound (large lists are summarized, never split).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::json;

use crate::safety::RunMode;

/// Notification severity; also the `severity` message attribute. In the
/// policy it is written in capitals (`"MEDIUM"`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        match s.trim().to_ascii_uppercase().as_str() {
            "INFO" => Some(Severity::Info),
            "LOW" => Some(Severity::Low),
            "MEDIUM" => Some(Severity::Medium),
            "HIGH" => Some(Severity::High),
            "CRITICAL" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a notification is about; also the `category` message attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Tagging,
    Offhours,
    Rotation,
    Snapshot,
    Guardduty,
    Budget,
    Compliance,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Tagging => "tagging",
            Category::Offhours => "offhours",
            Category::Rotation => "rotation",
            Category::Snapshot => "snapshot",
            Category::Guardduty => "guardduty",
            Category::Budget => "budget",
            Category::Compliance => "compliance",
        }
    }
}

/// Account or region value of a digest that covers several.
pub const MULTIPLE: &str = "multiple";

/// One message for the security team, before rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub severity: Severity,
    pub category: Category,
    /// The last part of `metadata.eventType` (`steward.<category>.<what>`).
    pub what: String,
    /// One line, first in every rendering.
    pub summary: String,
    /// Lines shown after the summary.
    pub details: Vec<String>,
    /// Per-resource lines; beyond the policy's `max_items` they are counted, not listed.
    pub items: Vec<String>,
    /// What the reader should do.
    pub next_steps: Vec<String>,
    pub account: String,
    pub region: String,
    pub environment: Option<String>,
    /// ARNs of the resources concerned.
    pub related_resources: Vec<String>,
    /// Groups the messages about one resource (its ARN), or one run (the run id).
    pub thread_id: String,
    /// steward's facts, rendered as `additionalContext` (string values).
    pub facts: BTreeMap<String, String>,
    /// De-duplication key: the same key is published once (per event, usually the event id).
    pub dedupe_key: String,
}

impl Notification {
    /// A notification with the required parts; fill the rest with the builder methods.
    pub fn new(
        severity: Severity,
        category: Category,
        what: &str,
        summary: impl Into<String>,
    ) -> Notification {
        Notification {
            severity,
            category,
            what: what.to_string(),
            summary: summary.into(),
            details: Vec::new(),
            items: Vec::new(),
            next_steps: Vec::new(),
            account: String::new(),
            region: String::new(),
            environment: None,
            related_resources: Vec::new(),
            thread_id: String::new(),
            facts: BTreeMap::new(),
            dedupe_key: String::new(),
        }
    }

    pub fn event_type(&self) -> String {
        format!("steward.{}.{}", self.category.as_str(), self.what)
    }

    pub fn fact(mut self, key: &str, value: impl Into<String>) -> Self {
        self.facts.insert(key.to_string(), value.into());
        self
    }
}

/// What a rendering needs to know besides the notification.
#[derive(Debug, Clone)]
pub struct RenderContext {
    pub mode: RunMode,
    pub policy_version: String,
    pub function_name: String,
    pub max_items: usize,
}

/// A notification ready for SNS `Publish`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    /// The `MessageStructure=json` document: one body per protocol.
    pub message: String,
    pub attributes: BTreeMap<String, String>,
    /// The chat JSON (also inside `message`), kept for logs and tests.
    pub chat: serde_json::Value,
    pub text: String,
}

/// SNS accepts 256 KiB for the whole publish; keep a margin for subject and attributes.
pub const MAX_MESSAGE_BYTES: usize = 240 * 1024;
const MAX_SUBJECT_CHARS: usize = 99;
const MAX_LINE_CHARS: usize = 2000;

/// Renders a notification, summarizing lists until the publish fits SNS's limit.
pub fn render(n: &Notification, ctx: &RenderContext) -> Rendered {
    let mut shown = ctx.max_items.min(n.items.len());
    let mut line_limit = MAX_LINE_CHARS;
    loop {
        let rendered = render_with(n, ctx, shown, line_limit);
        if rendered.message.len() + rendered.subject.len() <= MAX_MESSAGE_BYTES
            || (shown == 0 && line_limit <= 200)
        {
            return rendered;
        }
        if shown > 0 {
            shown /= 2;
        } else {
            line_limit /= 2;
        }
    }
}

fn clip(s: &str, limit: usize) -> String {
    if s.chars().count() <= limit {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(limit.saturating_sub(3)).collect();
        out.push_str("...");
        out
    }
}

/// The subject: `[steward] SEVERITY category: summary`, printable ASCII, at most 99 characters.
pub fn subject(n: &Notification, mode: RunMode) -> String {
    let marker = mode.marker().map(|m| format!("({m}) ")).unwrap_or_default();
    let raw = format!(
        "[steward] {} {}: {marker}{}",
        n.severity,
        n.category.as_str(),
        n.summary
    );
    let ascii: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    clip(&ascii, MAX_SUBJECT_CHARS)
}

fn render_with(n: &Notification, ctx: &RenderContext, shown: usize, line_limit: usize) -> Rendered {
    let hidden = n.items.len() - shown;
    let items: Vec<String> = n.items[..shown]
        .iter()
        .map(|i| clip(i, line_limit))
        .collect();
    let details: Vec<String> = n.details.iter().map(|d| clip(d, line_limit)).collect();
    let more = (hidden > 0).then(|| {
        format!(
            "... and {hidden} more (of {} in all; the function's logs for event {} list every one)",
            n.items.len(),
            n.dedupe_key
        )
    });
    let mode_line = ctx.mode.marker().map(|m| {
        format!("{m}: steward changed nothing; this message says what it would have done.")
    });

    let mut text = String::new();
    if let Some(line) = &mode_line {
        text.push_str(line);
        text.push_str("\n\n");
    }
    text.push_str(&n.summary);
    text.push('\n');
    if !details.is_empty() {
        text.push('\n');
        for d in &details {
            text.push_str(d);
            text.push('\n');
        }
    }
    if !n.items.is_empty() {
        text.push_str(&format!("\nResources ({}):\n", n.items.len()));
        for i in &items {
            text.push_str(&format!("  - {i}\n"));
        }
        if let Some(m) = &more {
            text.push_str(&format!("  {m}\n"));
        }
    }
    if !n.next_steps.is_empty() {
        text.push_str("\nWhat to do:\n");
        for s in &n.next_steps {
            text.push_str(&format!("  - {}\n", clip(s, line_limit)));
        }
    }
    text.push_str("\n--\n");
    text.push_str(&format!(
        "severity: {} | category: {} | account: {} | region: {} | environment: {}\n",
        n.severity,
        n.category.as_str(),
        n.account,
        n.region,
        n.environment.as_deref().unwrap_or("unknown")
    ));
    text.push_str(&format!(
        "event: {} | function: {} | policy version: {} | mode: {}\n",
        n.dedupe_key, ctx.function_name, ctx.policy_version, ctx.mode
    ));

    let mut description = String::new();
    if let Some(line) = &mode_line {
        description.push_str(&format!("*{line}*\n"));
    }
    for d in &details {
        description.push_str(d);
        description.push('\n');
    }
    if !items.is_empty() {
        for i in &items {
            description.push_str(&format!("• {i}\n"));
        }
        if let Some(m) = &more {
            description.push_str(m);
            description.push('\n');
        }
    }
    let mut context: BTreeMap<String, String> = n
        .facts
        .iter()
        .map(|(k, v)| (k.clone(), clip(v, line_limit)))
        .collect();
    context.insert("account".into(), n.account.clone());
    context.insert("region".into(), n.region.clone());
    if let Some(env) = &n.environment {
        context.insert("environment".into(), env.clone());
    }
    context.insert("severity".into(), n.severity.to_string());
    context.insert("mode".into(), ctx.mode.to_string());
    context.insert("policyVersion".into(), ctx.policy_version.clone());
    context.insert("function".into(), ctx.function_name.clone());
    context.insert("eventId".into(), n.dedupe_key.clone());
    context.insert("resourceCount".into(), n.items.len().to_string());
    let title_marker = ctx
        .mode
        .marker()
        .map(|m| format!("({m}) "))
        .unwrap_or_default();
    let mut keywords = vec![
        n.severity.to_string(),
        n.category.as_str().to_string(),
        n.account.clone(),
    ];
    if let Some(env) = &n.environment {
        keywords.push(env.clone());
    }
    if let Some(m) = ctx.mode.marker() {
        keywords.push(m.to_string());
    }
    // Related ARNs follow the item list's summarizing so a huge run stays under the limit.
    let related_cap = if shown < n.items.len() {
        shown.max(1)
    } else {
        ctx.max_items.max(1)
    };
    let related: Vec<&String> = n.related_resources.iter().take(related_cap).collect();
    let chat = json!({
        "version": "1.0",
        "source": "custom",
        "id": n.dedupe_key,
        "content": {
            "textType": "client-markdown",
            "title": clip(&format!("{}{} {}: {}", title_marker, n.severity, n.category.as_str(), n.summary), 250),
            "description": description.trim_end(),
            "nextSteps": n.next_steps.iter().map(|s| clip(s, line_limit)).collect::<Vec<_>>(),
            "keywords": keywords,
        },
        "metadata": {
            "summary": clip(&n.summary, 250),
            "eventType": n.event_type(),
            "relatedResources": related,
            "threadId": n.thread_id,
            "additionalContext": context,
        }
    });
    let chat_text = chat.to_string();
    let message = json!({
        "default": text,
        "email": text,
        "sqs": chat_text,
        "lambda": chat_text,
        "https": chat_text,
    })
    .to_string();
    let mut attributes = BTreeMap::new();
    attributes.insert("severity".to_string(), n.severity.to_string());
    attributes.insert("category".to_string(), n.category.as_str().to_string());
    attributes.insert("account".to_string(), n.account.clone());
    attributes.insert("region".to_string(), n.region.clone());
    if let Some(env) = &n.environment {
        attributes.insert("environment".to_string(), env.clone());
    }
    Rendered {
        subject: subject(n, ctx.mode),
        message,
        attributes,
        chat,
        text,
    }
}

/// Sends rendered notifications somewhere.
#[async_trait::async_trait]
pub trait Publish: Send + Sync {
    /// Publishes one message; returns the message id when the sink gives one.
    async fn publish(&self, rendered: &Rendered) -> anyhow::Result<Option<String>>;
}

/// Publishes to the SNS topic of `STEWARD_TOPIC_ARN`.
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: String) -> SnsPublisher {
        SnsPublisher { client, topic_arn }
    }
}

#[async_trait::async_trait]
impl Publish for SnsPublisher {
    async fn publish(&self, rendered: &Rendered) -> anyhow::Result<Option<String>> {
        use aws_sdk_sns::types::MessageAttributeValue;
        let mut request = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&rendered.subject)
            .message_structure("json")
            .message(&rendered.message);
        for (name, value) in &rendered.attributes {
            if value.is_empty() {
                continue;
            }
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()?;
            request = request.message_attributes(name, attribute);
        }
        let output = request.send().await.map_err(|e| {
            anyhow::anyhow!(
                "publishing to {} failed: {}",
                self.topic_arn,
                aws_sdk_sns::error::DisplayErrorContext(&e)
            )
        })?;
        Ok(output.message_id().map(str::to_string))
    }
}

/// Used when `STEWARD_TOPIC_ARN` is unset: notifications go to the logs only.
pub struct LogOnlyPublisher;

#[async_trait::async_trait]
impl Publish for LogOnlyPublisher {
    async fn publish(&self, rendered: &Rendered) -> anyhow::Result<Option<String>> {
        tracing::warn!(subject = %rendered.subject, "STEWARD_TOPIC_ARN is not set; notification logged only");
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(mode: RunMode) -> RenderContext {
        RenderContext {
            mode,
            policy_version: "abc123".into(),
            function_name: "tag-enforcer".into(),
            max_items: 25,
        }
    }

    fn sample() -> Notification {
        let mut n = Notification::new(
            Severity::Medium,
            Category::Tagging,
            "noncompliant",
            "2 new resources lack required tags",
        );
        n.account = "123456789012".into();
        n.region = "eu-west-1".into();
        n.environment = Some("dev".into());
        n.items = vec![
            "i-1 missing project".into(),
            "vol-2 missing cost_center".into(),
        ];
        n.next_steps = vec!["Add the tags".into()];
        n.thread_id = "arn:aws:ec2:eu-west-1:123456789012:instance/i-1".into();
        n.related_resources = vec![n.thread_id.clone()];
        n.dedupe_key = "event-1".into();
        n
    }

    #[test]
    fn subject_format_and_bound() {
        let mut n = sample();
        assert_eq!(
            subject(&n, RunMode::Live),
            "[steward] MEDIUM tagging: 2 new resources lack required tags"
        );
        n.summary = "é".repeat(300);
        let s = subject(&n, RunMode::DryRun);
        assert!(
            s.len() <= 99 && s.is_ascii() && s.contains("(DRY RUN)"),
            "{s}"
        );
    }

    #[test]
    fn message_has_every_protocol_and_chat_schema() {
        let r = render(&sample(), &ctx(RunMode::Live));
        let m: serde_json::Value = serde_json::from_str(&r.message).unwrap();
        for key in ["default", "email", "sqs", "lambda", "https"] {
            assert!(m[key].is_string(), "{key}");
        }
        let chat: serde_json::Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["textType"], "client-markdown");
        assert_eq!(
            chat["metadata"]["eventType"],
            "steward.tagging.noncompliant"
        );
        assert!(chat["metadata"]["additionalContext"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| v.is_string()));
        assert!(m["email"]
            .as_str()
            .unwrap()
            .starts_with("2 new resources lack required tags"));
        assert_eq!(r.attributes["severity"], "MEDIUM");
        assert_eq!(r.attributes["environment"], "dev");
    }

    #[test]
    fn dry_run_is_marked() {
        let r = render(&sample(), &ctx(RunMode::DryRun));
        assert!(r.text.starts_with("DRY RUN: steward changed nothing"));
        assert_eq!(r.chat["metadata"]["additionalContext"]["mode"], "dry-run");
    }

    #[test]
    fn large_lists_are_summarized_under_the_limit() {
        let mut n = sample();
        n.items = (0..100_000).map(|i| format!("arn:aws:ec2:eu-west-1:123456789012:instance/i-{i:017} missing project, env, cost_center")).collect();
        n.related_resources = n.items.clone();
        let mut c = ctx(RunMode::Live);
        c.max_items = 100_000;
        let r = render(&n, &c);
        assert!(r.message.len() <= MAX_MESSAGE_BYTES);
        assert!(r.text.contains("more (of 100000 in all"));
        assert!(r.text.contains("i-00000000000000000"));
    }
}
