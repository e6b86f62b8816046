#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| checker::fuzz::rw_register(data));
