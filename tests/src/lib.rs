//! The test and demo harness: a moto server (the local AWS) started on a free
//! 127.0.0.1 port and stopped with the harness, a Lambda Runtime API emulator
//! that runs the built function binaries exactly as Lambda does, and the
//! security team's inbox (an SQS queue subscribed to the SNS topic).

pub mod demo;
pub mod faults;
pub mod fixtures;
pub mod functions;
pub mod inbox;
pub mod least_privilege;
pub mod moto;
pub mod organizations;
pub mod postgres;
pub mod profile;
pub mod runtime_api;
pub mod scale;
pub mod stack;
pub mod templates;

use std::path::PathBuf;

/// The workspace root (where `Cargo.toml`, `events/` and `tools/` are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A sample event from `events/`, parsed.
pub fn event(name: &str) -> serde_json::Value {
    let path = workspace_root().join("events").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// The built binary of a function: `$STEWARD_BIN_DIR/<name>` when set (for
/// example release builds), else the workspace's debug build.
pub fn function_binary(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("STEWARD_BIN_DIR") {
        // A plain build directory holds `<name>`; cargo lambda's holds `<name>/bootstrap`.
        for candidate in [
            PathBuf::from(&dir).join(name),
            PathBuf::from(&dir).join(name).join("bootstrap"),
        ] {
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` (make test does) first",
        path.display()
    );
    path
}

/// A fresh id for names that must not collide between tests.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}
