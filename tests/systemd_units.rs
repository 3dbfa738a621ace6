//! The systemd units in `scripts/systemd/`: `systemd-analyze verify` prints
//! nothing for either (run on copies whose ExecStart names the binaries
//! just built, with the manual page where `man` finds it); the hardening
//! each promises is there (the server writes only its root, the client
//! reads everything); the example environment files set every variable the
//! units pass on, in the `NAME=value` lines systemd reads.
//! Without `systemd-analyze` the verify test says so and passes; CI
//! installs it (`.ci/run`, `scripts/verify-units.sh`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The binaries just built, where a unit's ExecStart will name them.
const SERVER: &str = env!("CARGO_BIN_EXE_rsb-server");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unit(name: &str) -> String {
    fs::read_to_string(repo().join("scripts/systemd").join(name)).unwrap()
}

/// The values of `key` in the unit's lines, in order.
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// `$NAME` and `${NAME}` in `line`.
fn variables(line: &str) -> Vec<String> {
    line.split('$')
        .skip(1)
        .map(|rest| {
            rest.trim_start_matches('{')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn the_units_verify_cleanly_against_the_built_binaries() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("no systemd-analyze here (Debian package systemd): not verified");
        return;
    }
    let s = tempfile::tempdir().unwrap();
    let units = s.path().join("units");
    let man = s.path().join("man/man1");
    fs::create_dir_all(&units).unwrap();
    fs::create_dir_all(&man).unwrap();
    fs::copy(repo().join("man/rsb.1"), man.join("rsb.1")).unwrap();
    let bin = Path::new(SERVER).parent().unwrap();
    for name in ["rsb-server.service", "rsb-client-watch@.service"] {
        let text = unit(name).replace("/usr/local/bin/", &format!("{}/", bin.display()));
        fs::write(units.join(name), text).unwrap();
    }
    // The template is verified as an instance, as systemd would run it.
    for name in ["rsb-server.service", "rsb-client-watch@.service"] {
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .arg(units.join(name))
            .env("MANPATH", s.path().join("man"))
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.status.success() && said.is_empty(),
            "{name} does not verify cleanly ({}):\n{said}",
            o.status
        );
    }
}

#[test]
fn verify_catches_a_broken_unit() {
    // The check above means something only if a bad unit makes noise.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let s = tempfile::tempdir().unwrap();
    let text = unit("rsb-server.service")
        .replace("/usr/local/bin/rsb-server", "/nonexistent/rsb-server")
        .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes");
    let path = s.path().join("rsb-server.service");
    fs::write(&path, text).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", s.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{said}");
    assert!(said.contains("/nonexistent/rsb-server"), "{said}");
    assert!(said.contains("NoNewPrivilege"), "{said}");
}

#[test]
fn the_server_writes_only_its_root_and_the_client_reads_everything() {
    let server = unit("rsb-server.service");
    for line in [
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "StateDirectory=rsb",
        "StateDirectoryMode=0700",
        "Environment=RSB_DIR=/var/lib/rsb",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "EnvironmentFile=/etc/rsb/rsb-server.env",
    ] {
        assert!(
            server.lines().any(|l| l == line),
            "server unit lacks {line}"
        );
    }
    assert_eq!(
        values(&server, "ExecStart"),
        ["/usr/local/bin/rsb-server -d ${RSB_DIR} $RSB_SERVER_ARGS"]
    );
    assert!(values(&server, "ReadWritePaths").is_empty());
    assert!(
        values(&server, "ExecReload").is_empty(),
        "it reloads nothing"
    );
    // Kept for a root server: device nodes (mknod) and set-user-ID files.
    for key in ["PrivateDevices", "RestrictSUIDSGID", "User", "ProtectClock"] {
        assert!(values(&server, key).is_empty(), "server unit sets {key}");
    }

    let client = unit("rsb-client-watch@.service");
    for line in [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "EnvironmentFile=/etc/rsb/client-%i.env",
    ] {
        assert!(
            client.lines().any(|l| l == line),
            "client unit lacks {line}"
        );
    }
    assert_eq!(
        values(&client, "ExecStart"),
        ["/usr/local/bin/rsb-client $RSB_CLIENT_ARGS $RSB_SERVER watch $RSB_WATCH_ARGS"]
    );
    for key in [
        "ProtectHome",
        "PrivateTmp",
        "ReadWritePaths",
        "StateDirectory",
        "User",
    ] {
        assert!(values(&client, key).is_empty(), "client unit sets {key}");
    }
}

#[test]
fn the_example_environments_set_what_the_units_pass_on() {
    for (unit_name, env_name) in [
        ("rsb-server.service", "rsb-server.env"),
        ("rsb-client-watch@.service", "rsb-client.env"),
    ] {
        let env = unit(env_name);
        let mut set = Vec::new();
        for line in env.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, _) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{env_name}: not NAME=value: {line}"));
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{env_name}: {line}"
            );
            set.push(name.to_string());
        }
        let text = unit(unit_name);
        let exec = values(&text, "ExecStart");
        for var in variables(exec[0]) {
            assert!(set.contains(&var), "{env_name} does not set {var}");
        }
        // Every commented example line is a real assignment too.
        for line in env.lines().filter_map(|l| l.strip_prefix('#')) {
            if let Some((name, _)) = line.split_once('=') {
                if name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                    assert!(
                        variables(exec[0]).contains(&name.to_string()) || name == "RSB_SECRET_FILE",
                        "{env_name}: {name} is passed on by nothing"
                    );
                }
            }
        }
    }
}
