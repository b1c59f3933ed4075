//! libFuzzer entry point; the checks live in [`parlor_fuzz::control_json`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parlor_fuzz::control_json(data));
