//! Logs and metrics (SPEC section 8): JSON logs through `tracing` honouring
//! Lambda's log-format variables (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`),
//! with the event id on every line through the invocation span, and
//! CloudWatch embedded-metric-format lines in namespace `Steward`.

use std::io::Write;

use serde_json::json;
use tracing_subscriber::filter::{LevelFilter, Targets};

/// Installs the global log subscriber once; later calls do nothing.
pub fn init_logging() {
    init(&[]);
}

/// Like [`init_logging`], but events of the `capped` log targets (a target
/// matches when it starts with one of them, e.g. `aws_smithy` matches
/// `aws_smithy_runtime::client`) are kept at INFO and above, whatever
/// `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` say. For functions whose
/// dependencies log secrets at DEBUG or TRACE (statements, request bodies).
/// Records of the `log` crate are filtered by their own target too.
pub fn init_logging_capped(capped: &'static [&'static str]) {
    init(capped);
}

fn init(capped: &'static [&'static str]) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_ascii_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let filter = log_filter(&level);
    // No layer at all without caps: the other functions' logging is unchanged.
    let cap = (!capped.is_empty()).then(|| {
        tracing_subscriber::filter::filter_fn(move |meta| {
            *meta.level() <= tracing::Level::INFO
                || !capped.iter().any(|t| meta.target().starts_with(t))
        })
    });
    let text = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_ansi(false)
        .with_target(false)
        .with_writer(std::io::stdout);
    let result = if text {
        builder.finish().with(filter).with(cap).try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(filter)
            .with(cap)
            .try_init()
    };
    let _ = result;
}

/// The log filter of a level setting: a level (`info`, `DEBUG`), or
/// directives as in `RUST_LOG` (`info,aws_smithy_runtime=debug`: a default
/// level and levels per log target; without a default level the other
/// targets log at INFO). A setting that does not parse falls back to INFO.
fn log_filter(setting: &str) -> Targets {
    match setting.parse::<Targets>() {
        Ok(targets) if targets.default_level().is_some() => targets,
        Ok(targets) => targets.with_default(LevelFilter::INFO),
        Err(_) => Targets::new().with_default(LevelFilter::INFO),
    }
}

/// Counters of one invocation, written as one EMF line at its end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Metrics {
    pub resources_evaluated: u64,
    pub actions_taken: u64,
    pub actions_failed: u64,
    pub notifications_sent: u64,
}

impl Metrics {
    /// The embedded-metric-format document for these counters.
    pub fn to_emf(&self, function_name: &str, timestamp_ms: i64) -> serde_json::Value {
        json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": "Steward",
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        {"Name": "ResourcesEvaluated", "Unit": "Count"},
                        {"Name": "ActionsTaken", "Unit": "Count"},
                        {"Name": "ActionsFailed", "Unit": "Count"},
                        {"Name": "NotificationsSent", "Unit": "Count"}
                    ]
                }]
            },
            "Function": function_name,
            "ResourcesEvaluated": self.resources_evaluated,
            "ActionsTaken": self.actions_taken,
            "ActionsFailed": self.actions_failed,
            "NotificationsSent": self.notifications_sent,
        })
    }

    /// Writes the EMF line to stdout (CloudWatch Logs extracts the metrics).
    pub fn emit(&self, function_name: &str) {
        let line = self.to_emf(function_name, chrono::Utc::now().timestamp_millis());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }

    pub fn add(&mut self, other: &Metrics) {
        self.resources_evaluated += other.resources_evaluated;
        self.actions_taken += other.actions_taken;
        self.actions_failed += other.actions_failed;
        self.notifications_sent += other.notifications_sent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_and_per_target_directives_are_honoured() {
        use tracing::Level;
        let debug = log_filter("debug");
        assert!(debug.would_enable("offhours_scheduler::run", &Level::DEBUG));
        assert!(!debug.would_enable("offhours_scheduler::run", &Level::TRACE));
        let mixed = log_filter("warn,aws_smithy_runtime=debug");
        assert!(mixed.would_enable("aws_smithy_runtime::client::orchestrator", &Level::DEBUG));
        assert!(!mixed.would_enable("hyper::client", &Level::INFO));
        assert!(mixed.would_enable("hyper::client", &Level::WARN));
        let target_only = log_filter("aws_sdk_ec2=trace");
        assert!(target_only.would_enable("aws_sdk_ec2::operation", &Level::TRACE));
        assert!(target_only.would_enable("steward_shared::aws", &Level::INFO));
        assert!(!target_only.would_enable("steward_shared::aws", &Level::DEBUG));
        let unreadable = log_filter("info,=x=y");
        assert!(unreadable.would_enable("steward_shared::aws", &Level::INFO));
        assert!(!unreadable.would_enable("steward_shared::aws", &Level::DEBUG));
    }

    #[test]
    fn emf_document_names_every_metric() {
        let m = Metrics {
            resources_evaluated: 3,
            actions_taken: 2,
            actions_failed: 0,
            notifications_sent: 1,
        };
        let doc = m.to_emf("tag-enforcer", 1);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Steward");
        for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            assert!(doc[metric["Name"].as_str().unwrap()].is_u64());
        }
        assert_eq!(doc["Function"], "tag-enforcer");
    }
}
