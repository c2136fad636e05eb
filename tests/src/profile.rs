//! Per-invocation figures for the benchmark (`steward-profile`): when the
//! driving process has `STEWARD_PROFILE_LOG` set, every [`Function`]
//! invocation appends one JSON line to that file: the function, the AWS
//! calls the emulator served while the invocation ran (the driver waits on
//! the invocation, so they are the function's), by operation, and the
//! process's peak resident memory (`VmHWM`) after it. Off (no cost, no
//! file) otherwise.
//!
//! [`Function`]: crate::runtime_api::Function

use std::io::Write;

use serde_json::{json, Value};

/// The emulator's call count before an invocation.
pub struct Probe {
    log: String,
    endpoint: String,
    before: Value,
    started: std::time::Instant,
}

async fn count(endpoint: &str) -> Option<Value> {
    let text = crate::moto::http("GET", &format!("{endpoint}/_steward/calls/count"), None)
        .await
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// Peak resident memory of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

impl Probe {
    /// Starts a probe when `STEWARD_PROFILE_LOG` is set and the function
    /// talks to an emulator (`AWS_ENDPOINT_URL`).
    pub async fn before(endpoint: Option<&str>) -> Option<Probe> {
        let log = std::env::var("STEWARD_PROFILE_LOG").ok()?;
        let endpoint = endpoint?.trim_end_matches('/').to_string();
        let before = count(&endpoint).await?;
        Some(Probe {
            log,
            endpoint,
            before,
            started: std::time::Instant::now(),
        })
    }

    /// Appends the invocation's line to the log.
    pub async fn after(self, function: &str, pid: Option<u32>, ok: bool) {
        let wall_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let Some(after) = count(&self.endpoint).await else {
            return;
        };
        let mut by_operation = serde_json::Map::new();
        if let Some(ops) = after["by_operation"].as_object() {
            for (op, n) in ops {
                let was = self.before["by_operation"][op].as_u64().unwrap_or(0);
                let now = n.as_u64().unwrap_or(0);
                if now > was {
                    by_operation.insert(op.clone(), json!(now - was));
                }
            }
        }
        let calls = after["total"]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(self.before["total"].as_u64().unwrap_or(0));
        let line = json!({
            "function": function,
            "ok": ok,
            "calls": calls,
            "by_operation": by_operation,
            "peak_rss_kib": pid.and_then(peak_rss_kib),
            "wall_ms": wall_ms,
        });
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
        {
            let _ = writeln!(file, "{line}");
        }
    }
}
