//! libFuzzer entry point; the checks live in [`parlor_fuzz::screen_slice`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parlor_fuzz::screen_slice(data));
