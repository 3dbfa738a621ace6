//! Target `secrets`: the secrets-file parser on arbitrary bytes.

use rsb::auth::Secrets;

/// Parses `data` as a secrets file. Checks: no panic; a parsed table has
/// at most one name per line, and every name in it is known.
pub fn secrets(data: &[u8]) {
    if let Ok(s) = Secrets::parse(data, [0; 32]) {
        let lines = data.split(|&b| b == b'\n').count();
        assert!(s.len() <= lines, "{} names from {lines} lines", s.len());
        for line in data.split(|&b| b == b'\n') {
            if let Some(name) = line
                .iter()
                .position(|&b| b == b':')
                .and_then(|c| std::str::from_utf8(&line[..c]).ok())
            {
                if line.first() != Some(&b'#') {
                    assert!(s.key(name).1, "{name} parsed but not known");
                }
            }
        }
    }
    let _ = rsb::auth::client_secret(data);
}
