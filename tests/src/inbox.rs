//! The security team's inbox in tests: an SNS topic with an SQS queue
//! subscribed (as a chat integration would be), and helpers to read what
//! arrived: the subject, the message attributes and the chat JSON body.

use aws_config::SdkConfig;

/// One notification as a subscriber receives it.
#[derive(Debug, Clone)]
pub struct Received {
    pub subject: String,
    pub attributes: std::collections::BTreeMap<String, String>,
    /// The `sqs` body of the `MessageStructure=json` publish (the chat JSON).
    pub chat: serde_json::Value,
    pub raw: serde_json::Value,
}

/// What SPEC's notification contract says every message carries, for
/// [`Received::assert_envelope`].
pub struct Envelope<'a> {
    pub severity: &'a str,
    pub category: &'a str,
    /// `steward.<category>.<what>`.
    pub event_type: &'a str,
    pub account: &'a str,
}

impl Received {
    /// `metadata.eventType` of the chat JSON.
    pub fn event_type(&self) -> String {
        self.chat["metadata"]["eventType"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The chat title and description: what a chat reader sees.
    pub fn full_text(&self) -> String {
        format!(
            "{}\n{}",
            self.chat["content"]["title"].as_str().unwrap_or_default(),
            self.description()
        )
    }

    /// Asserts the envelope of SPEC's notification contract: the subject's
    /// form and length, the filterable message attributes, and the chat
    /// JSON's schema, event type and thread.
    pub fn assert_envelope(&self, expected: Envelope<'_>) {
        let prefix = format!("[steward] {} {}: ", expected.severity, expected.category);
        assert!(
            self.subject.starts_with(&prefix) && self.subject.len() <= 99,
            "subject `{}` is not `{prefix}…` within 99 characters",
            self.subject
        );
        for (attribute, value) in [
            ("severity", expected.severity),
            ("category", expected.category),
            ("account", expected.account),
        ] {
            assert_eq!(
                self.attributes.get(attribute).map(String::as_str),
                Some(value),
                "message attribute {attribute}: {:?}",
                self.attributes
            );
        }
        assert!(
            self.attributes.contains_key("region"),
            "no region attribute: {:?}",
            self.attributes
        );
        assert_eq!(self.chat["version"], "1.0", "{}", self.chat);
        assert_eq!(self.chat["source"], "custom", "{}", self.chat);
        assert_eq!(
            self.chat["content"]["textType"], "client-markdown",
            "{}",
            self.chat
        );
        assert_eq!(self.event_type(), expected.event_type, "{}", self.chat);
        assert!(
            self.chat["metadata"]["threadId"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "no threadId: {}",
            self.chat
        );
    }

    /// The chat JSON's markdown description (what Slack or Teams show).
    pub fn description(&self) -> String {
        self.chat["content"]["description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// A topic and the queue subscribed to it.
pub struct Inbox {
    pub topic_arn: String,
    pub queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Inbox {
    pub async fn create(config: &SdkConfig, name: &str) -> anyhow::Result<Inbox> {
        let sns = aws_sdk_sns::Client::new(config);
        let sqs = aws_sdk_sqs::Client::new(config);
        let topic_arn = sns
            .create_topic()
            .name(name)
            .send()
            .await?
            .topic_arn()
            .unwrap_or_default()
            .to_string();
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{name}-inbox"))
            .send()
            .await?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?;
        let queue_arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await?;
        Ok(Inbox {
            topic_arn,
            queue_url,
            sqs,
        })
    }

    /// Everything that arrived so far (drains the queue).
    pub async fn drain(&self) -> anyhow::Result<Vec<Received>> {
        let mut out = Vec::new();
        loop {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await?;
            let messages = batch.messages();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let raw: serde_json::Value = serde_json::from_str(m.body().unwrap_or("{}"))?;
                let chat = raw["Message"]
                    .as_str()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(serde_json::Value::Null);
                let attributes = raw["MessageAttributes"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v["Value"].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Received {
                    subject: raw["Subject"].as_str().unwrap_or_default().to_string(),
                    attributes,
                    chat,
                    raw,
                });
                if let Some(handle) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await?;
                }
            }
        }
        Ok(out)
    }
}
