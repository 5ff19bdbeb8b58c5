#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| patchbay_fuzz_targets::connect_form::connect_form(data));
