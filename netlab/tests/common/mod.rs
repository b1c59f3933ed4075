//! Shared by the scenario tests: builds the relay and bot next to `parlor-lab`, runs one
//! short scenario and returns its report.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where cargo put `parlor-lab`, and so where the relay and bot must be.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_parlor-lab")).parent().expect("parlor-lab has a directory").to_path_buf()
}

/// Builds `relay-server` and `parlor-bot` with this test's profile into its target directory.
///
/// It asks for them the way `cargo test --workspace` (the README's test command) builds them,
/// with the whole workspace's features and dev-dependencies, so that after that command this is a
/// no-op: building only the two packages would resolve other features and recompile ~170 crates
/// in the middle of the test run. Cargo has released its lock while tests run.
pub fn ensure_bins() {
    let dir = bin_dir();
    let target = dir.parent().expect("target directory");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["test", "--quiet", "--workspace", "--no-run"]);
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(profile) => {
            cmd.args(["--profile", profile]);
        }
    }
    let status =
        cmd.env("CARGO_TARGET_DIR", target).current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("run cargo");
    assert!(status.success(), "building relay-server and parlor-bot (cargo test --workspace --no-run) failed");
    for bin in ["relay-server", "parlor-bot"] {
        assert!(dir.join(bin).is_file(), "cargo test --workspace --no-run built no {bin} in {}", dir.display());
    }
}

/// Runs `parlor-lab run SCENARIO --short` into `<target>/lab-tests/SCENARIO` (kept for
/// inspection) and returns report.json.
pub fn run_short(scenario: &str) -> serde_json::Value {
    ensure_bins();
    let out = bin_dir().parent().expect("target directory").join("lab-tests").join(scenario);
    let _ = std::fs::remove_dir_all(&out);
    let status = Command::new(env!("CARGO_BIN_EXE_parlor-lab"))
        .args(["run", scenario, "--short", "--out"])
        .arg(&out)
        .status()
        .expect("run parlor-lab");
    if !status.success() {
        let why = std::fs::read_to_string(out.join("error.txt")).unwrap_or_else(|_| "no error.txt".into());
        panic!("parlor-lab run {scenario} failed: {}; logs in {}", why.trim(), out.display());
    }
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&text).expect("report.json is JSON");
    let svg = std::fs::read_to_string(out.join("report.svg")).expect("report.svg");
    assert!(svg.starts_with("<svg") && svg.contains("jitter buffer ms"), "the plot has its panels");
    println!("{scenario} figures: {}", serde_json::to_string_pretty(&report["figures"]).unwrap_or_default());
    report
}

/// A figure as f64, failing the test with the report's path when it is missing.
pub fn num(v: &serde_json::Value, what: &str) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("figure {what} missing: {v}"))
}
