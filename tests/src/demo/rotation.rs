//! Demo section (work in progress).

use super::DemoStack;

pub async fn run(_stack: &DemoStack) -> anyhow::Result<()> {
    Ok(())
}
