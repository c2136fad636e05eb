//! Lambda entry point of guardduty-responder (work in progress).

fn main() {
    let _ = guardduty_responder::FUNCTION_NAME;
}
