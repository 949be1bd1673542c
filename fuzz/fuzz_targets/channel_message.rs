#![no_main]

// Every target's body is in targets.rs; this binary runs one of them.
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::channel_message(data));
