//! The example configuration shipped in `systemd/robocast.toml` parses with the real
//! loader, sets every option, and matches the defaults in code.

use robocast::config::{Config, FileConfig};

const EXAMPLE: &str = include_str!("../systemd/robocast.toml");

#[test]
fn example_config_is_valid_complete_and_shows_the_defaults() {
    let file = FileConfig::parse(EXAMPLE).expect("the example parses");
    let mut config = Config::default();
    config.apply_file(&file).expect("the example applies");
    config.validate().expect("the example is valid");
    // `auto` is the command line's default; the library's own default is off. HTTPS is
    // on in the package (this file), off when run by hand without it.
    let command_line = Config {
        control_socket: Some(robocast::control::socket::default_path()),
        speaker: "auto".into(),
        display: "auto".into(),
        tls: robocast::http::tls::TlsSetting::Auto,
        ..Config::default()
    };
    assert_eq!(config, command_line, "the example shows the defaults in code");
    // Every option is set, but the secrets and the state directory, which have no value
    // to show (they are there, commented out, with what they do).
    let debug = format!("{file:?}");
    let unset: Vec<&str> =
        debug.trim_end_matches(" }").split(", ").filter(|field| field.ends_with(": None")).collect();
    assert_eq!(
        unset,
        ["viewer_token: None", "operator_token: None", "state_dir: None", "turn_secret: None"],
        "every other option is set in the example: {debug}"
    );
    for secret in ["# viewer_token = ", "# operator_token = ", "# state_dir = ", "# turn_secret = "] {
        assert!(EXAMPLE.contains(secret), "the example shows {secret}");
    }
}
