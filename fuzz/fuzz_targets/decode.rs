//! Fuzz target `decode`: see [`rsb_fuzz::decode`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rsb_fuzz::decode(data));
