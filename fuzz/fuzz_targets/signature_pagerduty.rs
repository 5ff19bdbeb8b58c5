#![no_main]

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| patchbay_fuzz_targets::signatures::signature_pagerduty(data)
);
