#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| patchbay_fuzz_targets::cursor::operation_cursor(data));
