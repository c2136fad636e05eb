//! Lambda entry point of offhours-scheduler (work in progress).

fn main() {
    let _ = offhours_scheduler::FUNCTION_NAME;
}
