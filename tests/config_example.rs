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
    // `auto` is the command line's default; the library's own default is off.
    let command_line = Config {
        control_socket: Some(robocast::control::socket::default_path()),
        speaker: "auto".into(),
        display: "auto".into(),
        ..Config::default()
    };
    assert_eq!(config, command_line, "the example shows the defaults in code");
    let debug = format!("{file:?}");
    assert!(!debug.contains("None"), "every option is set in the example: {debug}");
}
