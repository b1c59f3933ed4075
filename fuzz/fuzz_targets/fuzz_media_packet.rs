//! libFuzzer entry point; the checks live in [`parlor_fuzz::media_packet`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| parlor_fuzz::media_packet(data));
