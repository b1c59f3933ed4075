//! libFuzzer entry point; the checks live in [`parlor_fuzz::frame_codec`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parlor_fuzz::frame_codec(data));
