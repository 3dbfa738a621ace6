//! Fuzz target `server_session`: see [`rsb_fuzz::server_session`] for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rsb_fuzz::server_session(data));
