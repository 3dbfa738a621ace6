//! Fuzz target `client_session`: see [`rsb_fuzz::client_session`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rsb_fuzz::client_session(data));
