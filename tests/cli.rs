//! The `robocast` command itself: `--version`, `--help`, `check`, `devices`, and config
//! errors that name the field and the fix.

use std::process::Command;

fn robocast(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_robocast"))
        .args(args)
        .env_remove("ROBOCAST_CONFIG")
        .output()
        .expect("robocast runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn version_and_help() {
    let (ok, text) = robocast(&["--version"]);
    assert!(ok && text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    let (ok, text) = robocast(&["--help"]);
    for flag in [
        "--listen",
        "--video",
        "--audio",
        "--size",
        "--fps",
        "--bitrate",
        "--max-viewers",
        "--ice-server",
        "--config",
    ] {
        assert!(ok && text.contains(flag), "--help lacks {flag}: {text}");
    }
    for command in ["devices", "check"] {
        assert!(text.contains(command), "--help lacks {command}");
    }
}

#[test]
fn check_reports_the_chosen_source_and_encoder() {
    let (ok, text) = robocast(&["check", "--video", "test", "--audio", "test", "--size", "320x240"]);
    assert!(ok, "{text}");
    assert!(text.contains("video OK") && text.contains("source: test pattern"), "{text}");
    assert!(text.contains("encoder: x264enc"), "{text}");
    assert!(text.contains("width=(int)320"), "caps shown: {text}");
    assert!(text.contains("audio OK") && text.contains("opusenc"), "{text}");
}

#[test]
fn check_fails_with_what_to_fix() {
    let (ok, text) = robocast(&["check", "--video", "v4l2:/dev/video-robocast-missing", "--audio", "none"]);
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL") && text.contains("no such device"), "{text}");
}

#[test]
fn bad_config_names_the_field_and_the_fix() {
    let (ok, text) = robocast(&["check", "--size", "1280by720"]);
    assert!(!ok && text.contains("`size`") && text.contains("1280x720"), "{text}");
    let (ok, text) = robocast(&["check", "--encoder", "vp9enc"]);
    assert!(!ok && text.contains("`encoder`") && text.contains("x264enc"), "{text}");
    let (ok, text) = robocast(&["check", "--video", "webcam"]);
    assert!(!ok && text.contains("`video`") && text.contains("v4l2:/dev/video0"), "{text}");
    let dir = std::env::temp_dir().join(format!("robocast-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("robocast.toml");
    std::fs::write(&file, "fsp = 30\n").expect("config written");
    let (ok, text) = robocast(&["check", "--config", file.to_str().expect("utf-8 path")]);
    assert!(!ok && text.contains("fsp"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn devices_lists_cameras_audio_and_encoders() {
    let (ok, text) = robocast(&["devices"]);
    assert!(ok, "{text}");
    for section in ["Cameras:", "Audio inputs", "Audio outputs:", "Video encoders"] {
        assert!(text.contains(section), "{section} missing: {text}");
    }
    assert!(text.contains("x264enc") && text.contains("usable"), "{text}");
}
