# Shared by cross/build.sh and cross/install-test.sh, which source it after setting NAME
# (the prefix of their messages) and changing to the project root.
# shellcheck shell=bash

ROOT=$PWD
OUT=$ROOT/target/cross
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

say() { printf '\033[1m%s:\033[0m %s\n' "$NAME" "$*"; }
die() { printf '%s: error: %s\n' "$NAME" "$*" >&2; exit 1; }

# target name -> rust triple, Debian architecture, GNU triple, qemu name
target_info() {
    case "$1" in
        aarch64) echo "aarch64-unknown-linux-gnu arm64 aarch64-linux-gnu aarch64" ;;
        armv7) echo "armv7-unknown-linux-gnueabihf armhf arm-linux-gnueabihf arm" ;;
        *) die "unknown target '$1': use aarch64 or armv7" ;;
    esac
}

# Installs those of the given host packages that are missing.
install_host_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    say "installing host packages: ${missing[*]}"
    $SUDO apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The Debian repositories the host already uses, one "URI RELEASE COMPONENT" per line
# (main, updates, security), from apt's own index list: the target's packages come from
# the same mirror, with the same keys.
debian_repos() {
    local lines
    # shellcheck disable=SC2016 # apt's own $(FIELD) placeholders
    lines=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
        'Origin: Debian' 'Created-By: Packages' | sort -u)
    [ -n "$lines" ] || die "this host has no Debian apt sources; build on Debian, or use Cross.toml with Docker"
    echo "$lines"
}

# The .deb cargo-deb writes for this version, triple and Debian architecture.
built_deb() {
    local version
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
    echo "$OUT/$1/debian/robocast_${version}-1_$2.deb"
}
