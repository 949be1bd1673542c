//! The shipped unit passes `systemd-analyze verify` and keeps its hardening score.
//! Needs systemd-analyze (Debian package systemd; `make setup-test` installs it).

use std::process::Command;

/// `systemd-analyze security` exposure (0 best, 10 worst) the unit must stay within (1.9
/// with the state directory for the token and the certificate in use);
/// README records the current score.
const MAX_EXPOSURE: f64 = 1.9;

fn unit_with_built_binary(dir: &std::path::Path) -> std::path::PathBuf {
    let unit = include_str!("../systemd/robocast.service")
        .replace("/usr/bin/robocast", env!("CARGO_BIN_EXE_robocast"));
    let path = dir.join("robocast.service");
    std::fs::write(&path, unit).expect("unit written");
    path
}

#[test]
fn unit_verifies_and_is_hardened() {
    let dir = std::env::temp_dir().join(format!("robocast-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let unit = unit_with_built_binary(&dir);

    let verify =
        Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("systemd-analyze runs");
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success() && complaints.trim().is_empty(), "systemd-analyze verify: {complaints}");

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze security runs");
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|l| l.split_once("robocast.service: ").map(|(_, rest)| rest.to_owned()))
        .and_then(|rest| rest.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no exposure level in: {report}"));
    assert!(exposure <= MAX_EXPOSURE, "exposure {exposure} > {MAX_EXPOSURE}: {report}");
    let _ = std::fs::remove_dir_all(&dir);
}
