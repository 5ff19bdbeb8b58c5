#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| patchbay_fuzz_targets::webhooks::webhook_slack(data));
