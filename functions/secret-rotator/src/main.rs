//! Lambda entry point of secret-rotator (work in progress).

fn main() {
    let _ = secret_rotator::FUNCTION_NAME;
}
