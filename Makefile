# robocast — the two commands of the README are `make run` and `make test`.
#
# Both install what they need on Debian/Ubuntu with apt (through sudo when not root),
# then build with cargo. Rust >= 1.92 must be installed (rustup).

# Build: GStreamer and ALSA headers; libclang for nokhwa's V4L2 bindings.
BUILD_PKGS := pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev \
	libasound2-dev libclang-dev
# Run: the GStreamer plugins robocast uses (x264enc is in -ugly, openh264enc and the echo
# canceller in -bad, the display's idle text (textoverlay) in -x).
RUNTIME_PKGS := gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
	gstreamer1.0-alsa gstreamer1.0-tools gstreamer1.0-x
# Test: a real browser, the tools that keep test traffic in its own network namespace,
# systemd-analyze for the unit, shellcheck for the scripts, and Node.js and pip for the
# browser clients robocast did not write (tests/clients/setup.sh), and PulseAudio with
# ALSA's plugin: a sound card for the speaker test where there is none (tests/speaker_cpal.rs),
# and Xvfb: a desktop for the display test (tests/display_window.rs), and coturn: a real
# TURN server for the minted credentials (tests/turn_relay.rs).
TEST_PKGS := chromium iproute2 util-linux systemd shellcheck python3-pip \
	pulseaudio pulseaudio-utils libasound2-plugins xvfb coturn
# Bench: the GStreamer webrtcbin peer robocast is compared with (benches/peers/webrtcbin.py),
# and venv for RTCBot's (benches/links/rtcbot.sh; RTCBot itself comes from PyPI).
BENCH_PKGS := python3-gst-1.0 gir1.2-gst-plugins-bad-1.0 gstreamer1.0-nice python3-venv

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
# Arguments for `make run`, e.g. make run ARGS="--video v4l2:/dev/video0"
ARGS ?=

.PHONY: setup setup-test run test lint bench bench-check check-rust deb deb-test cross cross-arm64 cross-install-test

check-rust:
	@command -v cargo >/dev/null || { echo "robocast needs Rust >= 1.92: install it with rustup, then run make again"; exit 1; }

setup: check-rust
	$(SUDO) apt-get update -q
	$(APT_INSTALL) $(BUILD_PKGS) $(RUNTIME_PKGS)

setup-test: setup
	$(APT_INSTALL) $(TEST_PKGS)
	command -v npm >/dev/null || $(APT_INSTALL) nodejs npm
	tests/clients/setup.sh

## Sets up and runs robocast; with no camera it shows a test pattern and a tone.
run: setup
	cargo run --release -- $(ARGS)

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	shellcheck -x cross/*.sh tests/*.sh tests/clients/*.sh benches/links/*.sh .ci/run

## Sets up and runs the whole test suite (unit, integration with a webrtc-rs peer,
## end-to-end in headless Chromium), isolated on loopback.
test: setup-test lint
	cargo build --tests
	tests/isolated.sh cargo test --offline -- --test-threads=1

## The benchmarks of BENCHMARKS.md (release build; about 65 minutes): viewers, first
## frames, glass-to-glass, an external source, churn; then the hostile mix; then driving
## (data-channel message latency and the dead-man stop); then talk-back (a browser's
## sound and camera on the robot's speaker and display, 35 minutes of it); then thin
## links (Chromium behind shaped links, robocast and RTCBot, 10 minutes).
bench: setup-test
	$(APT_INSTALL) $(BENCH_PKGS)
	cargo build --release --benches
	tests/isolated.sh cargo bench --offline --bench viewers
	tests/isolated.sh cargo bench --offline --bench hostile
	tests/isolated.sh cargo bench --offline --bench control
	tests/isolated.sh cargo bench --offline --bench talkback
	sh benches/links/rtcbot.sh >/dev/null || echo "RTCBot's virtualenv could not be made: the thin-link benchmark runs without it"
	tests/isolated.sh cargo bench --offline --bench links

## A short run of the benchmarks that writes nothing (ROBOCAST_BENCH_QUICK=1): CI checks
## that they still run.
bench-check: setup-test
	$(APT_INSTALL) $(BENCH_PKGS)
	cargo build --release --benches
	ROBOCAST_BENCH_QUICK=1 tests/isolated.sh cargo bench --offline --bench viewers -- churn external
	ROBOCAST_BENCH_QUICK=1 tests/isolated.sh cargo bench --offline --bench hostile
	ROBOCAST_BENCH_QUICK=1 tests/isolated.sh cargo bench --offline --bench control
	ROBOCAST_BENCH_QUICK=1 tests/isolated.sh cargo bench --offline --bench talkback
	sh benches/links/rtcbot.sh >/dev/null || echo "RTCBot's virtualenv could not be made: the thin-link benchmark runs without it"
	ROBOCAST_BENCH_QUICK=1 tests/isolated.sh cargo bench --offline --bench links

## The .deb for this machine (cargo-deb), in target/debian/.
deb: setup
	command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
	cargo deb

## Builds the .deb, installs it here with apt, and checks it as the service user.
deb-test: deb
	tests/deb_install.sh

## Release binaries and .debs for Raspberry Pi boards, arm64 and armhf, built here
## without Docker and checked under qemu (cross/build.sh; target/cross/).
cross: check-rust
	cross/build.sh aarch64 armv7

## The arm64 part alone (what CI runs).
cross-arm64: check-rust
	cross/build.sh aarch64

## Installs the ARM .debs with apt in emulated arm64 and armhf Debian roots (debootstrap,
## qemu binfmt) and checks them as the service user; root only, ~6 min per architecture.
cross-install-test:
	cross/install-test.sh aarch64
	cross/install-test.sh armv7
