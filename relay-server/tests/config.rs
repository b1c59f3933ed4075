//! The `relay-server` binary's settings: a `--config` TOML file, `PARLOR_*` variables and flags
//! merge in that order of precedence, `--print-config` shows the result (and reads back as a
//! file unchanged), and a file with an unknown key is refused with its name.

use std::process::Command;

fn relay_server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relay-server"));
    // What the test sets, not what the machine running it happens to have.
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("PARLOR_") {
            cmd.env_remove(var);
        }
    }
    cmd
}

fn printed(cmd: &mut Command) -> toml::Table {
    let out = cmd.output().expect("run relay-server");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8").parse().expect("--print-config prints TOML")
}

#[test]
fn flags_win_over_variables_over_the_file_over_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "tcp_port = 6000\nudp-port = 6001\nmax_participants = 7\nhost = \"127.0.0.1\"\n").unwrap();
    let merged = printed(relay_server().env("PARLOR_UDP_PORT", "7001").env("PARLOR_MAX_PARTICIPANTS", "8").args([
        "--config",
        file.to_str().unwrap(),
        "--max-participants",
        "9",
        "--print-config",
    ]));
    assert_eq!(merged["tcp_port"].as_integer(), Some(6000), "from the file");
    assert_eq!(merged["host"].as_str(), Some("127.0.0.1"), "from the file");
    assert_eq!(merged["udp_port"].as_integer(), Some(7001), "the variable over the file");
    assert_eq!(merged["max_participants"].as_integer(), Some(9), "the flag over the variable and the file");
    assert_eq!(merged["liveness_timeout_secs"].as_integer(), Some(15), "the default");

    // What it printed, used as the file, gives the same settings.
    let printed_file = dir.path().join("printed.toml");
    std::fs::write(&printed_file, toml::to_string(&merged).unwrap()).unwrap();
    let again = printed(relay_server().args(["--config", printed_file.to_str().unwrap(), "--print-config"]));
    assert_eq!(again, merged);
}

#[test]
fn an_unknown_or_malformed_setting_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (text, words) in [
        ("max_particpants = 7\n", "unknown setting `max_particpants`"),
        ("tcp_port = [1, 2]\n", "`tcp_port`: expected a string, a number or a boolean"),
        ("tcp_port = \n", "not valid TOML"),
    ] {
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, text).unwrap();
        let out = relay_server().args(["--config", file.to_str().unwrap(), "--print-config"]).output().unwrap();
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(words), "{text}: {stderr}");
    }
}
