//! Fuzz target `secrets`: see [`rsb_fuzz::secrets`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rsb_fuzz::secrets(data));
