//! libFuzzer entry point; the checks live in [`parlor_fuzz::file_frame`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parlor_fuzz::file_frame(data));
