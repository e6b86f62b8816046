#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = target_node::fuzz::http(data);
});
