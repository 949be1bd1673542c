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
fn check_reports_the_chosen_source_encoder_and_latency_in_a_few_short_lines() {
    let (ok, text) = robocast(&["check", "--video", "test", "--audio", "test", "--size", "320x240"]);
    assert!(ok, "{text}");
    assert!(text.contains("video OK") && text.contains("source: test pattern"), "{text}");
    assert!(text.contains("encoder: x264enc (software)"), "{text}");
    assert!(text.contains("H.264 constrained-baseline 320x240 @ 30 fps"), "{text}");
    assert!(text.contains("audio OK") && text.contains("opusenc"), "{text}");
    // What each pipeline costs: measured, and what GStreamer's latency query declares.
    assert_eq!(text.matches("ms from capture to encoded frame (GStreamer declares").count(), 2, "{text}");
    assert!(text.lines().all(|line| line.len() < 160), "a long line buries the verdict: {text}");
    assert!(!text.contains("width=(int)320"), "caps only with --verbose: {text}");
    let (ok, text) =
        robocast(&["check", "--verbose", "--video", "test", "--audio", "none", "--size", "320x240"]);
    assert!(ok && text.contains("caps: video/x-h264") && text.contains("width=(int)320"), "{text}");
}

#[test]
fn check_fails_with_what_to_fix() {
    let (ok, text) = robocast(&["check", "--video", "v4l2:/dev/video-robocast-missing", "--audio", "none"]);
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL") && text.contains("no such device"), "{text}");
    assert!(text.contains("fix: plug the camera in"), "{text}");
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
fn devices_lists_cameras_audio_display_and_encoders_without_library_noise() {
    let (ok, text) = robocast(&["devices"]);
    assert!(ok, "{text}");
    for section in
        ["Cameras:", "Audio inputs", "Audio outputs", "Display (display = auto):", "Video encoders"]
    {
        assert!(text.contains(section), "{section} missing: {text}");
    }
    assert!(text.contains("x264enc") && text.contains("usable"), "{text}");
    // ALSA and OpenH264 talk on stderr while they are probed; only --verbose shows it.
    assert!(!text.contains("ALSA lib") && !text.contains("[OpenH264]"), "{text}");
    assert!(text.lines().count() < 20, "{text}");
}

#[test]
fn output_to_a_file_or_the_journal_has_no_colour_codes() {
    // stderr is a pipe here, as under systemd: the log must be plain text.
    let (ok, text) = robocast(&["check", "--video", "v4l2:/dev/video-robocast-missing", "--audio", "none"]);
    assert!(!ok && text.contains("FAIL"), "{text}");
    let out = Command::new(env!("CARGO_BIN_EXE_robocast"))
        .args(["check", "--video", "test", "--audio", "none", "--size", "160x120"])
        .env("ROBOCAST_LOG", "info")
        .output()
        .expect("robocast runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("INFO"), "the log was written: {log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a non-terminal log: {log:?}");
}
