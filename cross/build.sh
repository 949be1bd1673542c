#!/bin/bash
# Builds robocast for Raspberry Pi boards on an x86_64 Debian machine, without Docker:
# release binaries and .debs for aarch64 (arm64: Pi OS 64-bit, Pi 3/4/5, Zero 2 W) and
# armv7 (armhf: Pi OS 32-bit, Pi 2/3/4/5, Zero 2 W), each checked under qemu user-mode
# emulation with `--version` and `check --video test --audio test`.
#
#   cross/build.sh                  # both targets
#   cross/build.sh aarch64          # one (aarch64 | armv7)
#
# How, since rustup cannot fetch a target's std here and Docker is not needed:
#   - the host gets Debian's rustc-web, the GNU cross linkers and qemu (apt);
#   - the target's Rust std is Debian's libstd-rust-web-dev:<arch> at exactly the host
#     rustc-web version, unpacked into a private rustc sysroot;
#   - the target's C libraries (cross/packages.txt with their dependencies) come from a
#     private apt root (own state, own empty dpkg status, APT::Architecture=<arch>) and
#     are unpacked into target/cross/sysroot-<arch>. The host's dpkg database is never
#     touched: installing :arm64 -dev packages on the host would remove its amd64 copies.
# Everything lands in target/cross/; a second run reuses the sysroots and the build.
# The target release is the host's Debian release (bookworm builds run on Pi OS
# bookworm and later).
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=cross
# shellcheck source=cross/common.sh
. cross/common.sh

setup_host() {
    install_host_packages rustc-web qemu-user-static dpkg-dev debian-archive-keyring libclang-dev pkg-config \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
    command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
    command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
}

# The private apt root's sources: the host's Debian repositories, signed by Debian's keys.
host_sources() {
    debian_repos | awk '{ printf "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s %s\n", $1, $2, $3 }'
}

target_packages() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' cross/packages.txt; }

# A private apt root for one architecture: its own lists, cache and (empty) dpkg status.
make_apt_root() {
    local arch=$1
    local dir=$OUT/apt-$arch
    mkdir -p "$dir"/{lists/partial,archives/partial,cache,sources.d,prefs.d}
    : >"$dir/status"
    host_sources >"$dir/sources.list"
    cat >"$dir/apt.conf" <<EOF
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Install-Recommends "false";
APT::Get::Assume-Yes "true";
Dir::State::status "$dir/status";
Dir::State::Lists "$dir/lists/";
Dir::Cache "$dir/cache/";
Dir::Cache::archives "$dir/archives/";
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "$dir/sources.d/";
Dir::Etc::Preferences "$dir/preferences";
Dir::Etc::PreferencesParts "$dir/prefs.d/";
Debug::NoLocking "true";
APT::Sandbox::User "$(id -un)";
EOF
    echo "$dir"
}

private_apt() { local dir=$1; shift; APT_CONFIG=$dir/apt.conf "$@"; }

# An index fetch can fail on a mirror mid-sync: an index whose size or hash does not match
# the signed Release file is refused. After three tries, a failure of the security suite
# alone is survivable for the sysroot (its libraries are only linked against and run
# under qemu; the board gets its security updates from its own apt); any other is not.
apt_update() {
    local dir=$1 try log=$1/update.log
    for try in 1 2 3; do
        private_apt "$dir" apt-get update -q >"$log" 2>&1 && ! grep -q '^E:' "$log" && return 0
        say "apt index fetch failed (try $try of 3):"; grep '^E:' "$log" | head -3 >&2 || true
        [ "$try" = 3 ] || sleep $((try * 5))
    done
    if grep '^E: Failed to fetch' "$log" | grep -qv -- '-security/'; then
        die "could not fetch the $(basename "$dir") package indexes; see $log"
    fi
    say "warning: the security index did not verify; the sysroot uses the release and updates indexes"
}

# Unpacks cross/packages.txt and every dependency into target/cross/sysroot-<arch>.
make_sysroot() {
    local arch=$1 apt stamp
    local sysroot=$OUT/sysroot-$arch
    apt=$(make_apt_root "$arch")
    stamp="$(cat cross/packages.txt "$apt/sources.list" | sha256sum | cut -c1-16)"
    if [ -f "$sysroot/.robocast-stamp" ] && [ "$(cat "$sysroot/.robocast-stamp")" = "$stamp" ]; then
        say "sysroot-$arch is up to date"
        return
    fi
    say "fetching the $arch package indexes"
    apt_update "$apt"
    say "downloading the $arch packages of cross/packages.txt with their dependencies"
    # shellcheck disable=SC2046
    private_apt "$apt" apt-get install -q --download-only $(target_packages) >"$apt/install.log" 2>&1 ||
        { tail -20 "$apt/install.log" >&2; die "apt could not resolve the $arch packages"; }
    say "unpacking $(find "$apt/archives" -maxdepth 1 -name '*.deb' | wc -l) packages into target/cross/sysroot-$arch"
    rm -rf "$sysroot"
    mkdir -p "$sysroot/DEBIAN"
    for deb in "$apt"/archives/*.deb; do
        dpkg-deb -x "$deb" "$sysroot"
        # Their shlibs and symbols files, merged, let dpkg-shlibdeps (through cargo-deb)
        # compute the package's library dependencies from the sysroot.
        local ctrl; ctrl=$(mktemp -d)
        dpkg-deb -e "$deb" "$ctrl"
        [ -f "$ctrl/shlibs" ] && cat "$ctrl/shlibs" >>"$sysroot/DEBIAN/shlibs"
        [ -f "$ctrl/symbols" ] && cat "$ctrl/symbols" >>"$sysroot/DEBIAN/symbols"
        rm -rf "$ctrl"
    done
    # Absolute symlinks would point into the host: make them point inside the sysroot.
    find "$sysroot" -type l -lname '/*' | while read -r link; do
        ln -sfn "$sysroot$(readlink "$link")" "$link"
    done
    echo "$stamp" >"$sysroot/.robocast-stamp"
    say "sysroot-$arch: $(du -sh "$sysroot" | cut -f1)"
}

# rustc-web's std for the target, unpacked beside a link to the host's own std.
make_rust_sysroot() {
    local arch=$1 triple=$2 apt=$OUT/apt-$1 dir=$OUT/rust-sysroot version
    version=$(dpkg-query -W -f='${Version}' rustc-web)
    if [ -f "$dir/lib/rustlib/$triple/.version" ] && [ "$(cat "$dir/lib/rustlib/$triple/.version")" = "$version" ]; then
        return
    fi
    say "fetching libstd-rust-web-dev:$arch $version (the std for $triple)"
    local tmp; tmp=$(mktemp -d)
    if ! (cd "$tmp" && private_apt "$apt" apt-get download -q "libstd-rust-web-dev=$version" >/dev/null 2>&1); then
        [ "${ROBOCAST_CROSS_UNVERIFIED_STD:-}" = 1 ] ||
            die "libstd-rust-web-dev:$arch $version (to match the host's rustc-web) is in no index that verified.
  If apt warned above that the security index did not verify, the mirror is mid-sync: try
  again later. To use the std named by that unverified index anyway (the .deb is still
  checked against the SHA256 the index gives), run again with ROBOCAST_CROSS_UNVERIFIED_STD=1."
        fetch_unverified_std "$apt" "$version" "$tmp"
    fi
    dpkg-deb -x "$tmp"/*.deb "$tmp/x"
    [ -d "$tmp/x/usr/lib/rustlib/$triple" ] || die "libstd-rust-web-dev:$arch has no std for $triple"
    mkdir -p "$dir/lib/rustlib"
    rm -rf "${dir:?}/lib/rustlib/$triple"
    mv "$tmp/x/usr/lib/rustlib/$triple" "$dir/lib/rustlib/$triple"
    echo "$version" >"$dir/lib/rustlib/$triple/.version"
    ln -sfn /usr/lib/rustlib/x86_64-unknown-linux-gnu "$dir/lib/rustlib/x86_64-unknown-linux-gnu"
    rm -rf "$tmp"
}

# The std .deb named by the security suite's index as served, which apt refused because
# it does not match the signed Release file. Only with ROBOCAST_CROSS_UNVERIFIED_STD=1.
fetch_unverified_std() {
    local apt=$1 version=$2 tmp=$3 arch uri suite entry file sha
    arch=$(sed -n 's/^APT::Architecture "\(.*\)";/\1/p' "$apt/apt.conf")
    read -r uri suite <<<"$(awk '$4 ~ /-security$/ { print $3, $4; exit }' "$apt/sources.list")"
    [ -n "$suite" ] || die "no security suite among the host's apt sources"
    uri=${uri%/}
    say "warning: ROBOCAST_CROSS_UNVERIFIED_STD=1: taking libstd-rust-web-dev:$arch from an index whose signature did not verify"
    private_apt "$apt" /usr/lib/apt/apt-helper download-file "$uri/dists/$suite/main/binary-$arch/Packages.xz" "$tmp/Packages.xz" >/dev/null 2>&1 ||
        die "could not fetch the $suite index for $arch"
    entry=$(xz -dc "$tmp/Packages.xz" | awk -v v="$version" 'BEGIN { RS = "" }
        /(^|\n)Package: libstd-rust-web-dev\n/ && index($0, "\nVersion: " v "\n") && !found { print; found = 1 }')
    file=$(echo "$entry" | sed -n 's/^Filename: //p')
    sha=$(echo "$entry" | sed -n 's/^SHA256: //p')
    if [ -z "$file" ] || [ -z "$sha" ]; then die "the served index has no libstd-rust-web-dev:$arch $version"; fi
    private_apt "$apt" /usr/lib/apt/apt-helper download-file "$uri/$file" "$tmp/std.deb" "SHA256:$sha" >/dev/null ||
        die "could not fetch $file"
}

build() {
    local triple=$1 arch=$2 gnu=$3 sysroot=$OUT/sysroot-$2 up
    up=$(echo "$triple" | tr 'a-z-' 'A-Z_')
    local low=${triple//-/_}
    say "building robocast for $triple (release)"
    # A global RUSTFLAGS would silently replace the per-target flags below.
    env -u RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
        RUSTC=/usr/bin/rustc \
        CARGO_TARGET_DIR="$OUT" \
        "CARGO_TARGET_${up}_LINKER=$gnu-gcc" \
        "CARGO_TARGET_${up}_RUSTFLAGS=--sysroot=$OUT/rust-sysroot -C link-arg=--sysroot=$sysroot" \
        "CC_${low}=$gnu-gcc --sysroot=$sysroot" \
        "AR_${low}=$gnu-ar" \
        PKG_CONFIG_ALLOW_CROSS=1 \
        "PKG_CONFIG_SYSROOT_DIR_${low}=$sysroot" \
        "PKG_CONFIG_LIBDIR_${low}=$sysroot/usr/lib/$gnu/pkgconfig:$sysroot/usr/share/pkgconfig" \
        "BINDGEN_EXTRA_CLANG_ARGS_${low}=--sysroot=$sysroot -I$sysroot/usr/include/$gnu" \
        cargo build --release --locked --target "$triple" --bin robocast

    say "packaging robocast for $arch"
    # cargo-deb runs dpkg-shlibdeps, which finds the target's libraries through
    # LD_LIBRARY_PATH and their dependencies in the sysroot's merged shlibs/symbols.
    env CARGO_TARGET_DIR="$OUT" LD_LIBRARY_PATH="$sysroot/usr/lib/$gnu:$sysroot/lib/$gnu" \
        cargo deb --no-build --target "$triple"
}

# Runs the binary under qemu user-mode emulation against the sysroot's libraries and
# GStreamer plugins.
check() {
    local triple=$1 arch=$2 gnu=$3 qemu=qemu-$4-static sysroot=$OUT/sysroot-$2
    local bin=$OUT/$triple/release/robocast
    local run=(env GST_REGISTRY_FORK=no GST_REGISTRY="$OUT/gst-registry-$arch.bin"
        GST_PLUGIN_SYSTEM_PATH="$sysroot/usr/lib/$gnu/gstreamer-1.0" GST_PLUGIN_PATH=
        "$qemu" -L "$sysroot" "$bin")
    say "checking the $arch binary under $qemu"
    "${run[@]}" --version
    "${run[@]}" check --video test --audio test
    # The package's dependencies, resolved against the target's own archive as apt on a
    # fresh board would (simulated in the private apt root).
    local deb; deb=$(built_deb "$triple" "$arch")
    [ -f "$deb" ] || die "cargo-deb wrote no $deb"
    private_apt "$OUT/apt-$arch" apt-get install -s "$deb" >"$OUT/apt-$arch/simulate.log" 2>&1 ||
        { tail -20 "$OUT/apt-$arch/simulate.log" >&2; die "the $arch .deb's dependencies do not resolve"; }
    grep -q "^Inst robocast " "$OUT/apt-$arch/simulate.log" || die "apt would not install the $arch .deb"
    say "$(basename "$deb"): dependencies resolve ($(grep -c '^Inst' "$OUT/apt-$arch/simulate.log") packages on a fresh $arch system)"
}

main() {
    local targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=(aarch64 armv7)
    for t in "${targets[@]}"; do target_info "$t" >/dev/null; done
    setup_host
    local summary=()
    for t in "${targets[@]}"; do
        read -r triple arch gnu qemu <<<"$(target_info "$t")"
        make_sysroot "$arch"
        make_rust_sysroot "$arch" "$triple"
        build "$triple" "$arch" "$gnu"
        check "$triple" "$arch" "$gnu" "$qemu"
        summary+=("$arch: ${OUT#"$ROOT"/}/$triple/release/robocast"
            "$arch: $(built_deb "$triple" "$arch" | sed "s#^$ROOT/##")")
    done
    say "done"
    printf '  %s\n' "${summary[@]}"
}

main "$@"
