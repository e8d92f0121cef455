#!/usr/bin/env bash
# Builds the tearsheet-sync container image on a machine that reaches Debian's package mirrors but
# no image registry, and proves it: `tearsheet-sync --help` and `migrate` run inside it.
#
#   deploy/container/build-image.sh [--rebuild-bases] [--bases-only] [--proof-only] [--no-proof]
#                                   [--tag NAME]
#
# What it does:
#   1. installs buildah and debootstrap (apt) when missing;
#   2. makes two base images with `debootstrap --variant=minbase bookworm` and imports them into
#      buildah's store (kept there and reused; --rebuild-bases makes them again):
#        localhost/tsync-build-base:bookworm    Debian 12 with what the Swift toolchain needs to run
#                                               (the toolchain itself is this machine's /opt/swift,
#                                               mounted read-only during the build)
#        localhost/tsync-runtime-base:bookworm  Debian 12 minbase, trimmed like debian:bookworm-slim
#   3. `buildah bud --isolation chroot` of the repository's Dockerfile with those bases, the
#      toolchain and the local Swift package mirror (/opt/swift-packages, which git reads in place
#      of github.com) mounted, under the machine's Swift build lock (/tmp/tsync-swift-build.lock);
#      the build stage is kept as localhost/tearsheet-sync-build-stage:latest, the layer cache of
#      the next build (unchanged sources: seconds; changed: one release build, about 5 minutes);
#   4. runs the image's `--help` and `migrate` against the PostgreSQL at $TSYNC_DATABASE_URL, or
#      when that is unset at the URL `deploy/local/services.sh env` prints (that one started here
#      when none answers there, and stopped again only then), and prints the image size.
#
# Work files go to $TSYNC_IMAGE_DIR (default /var/tmp/tsync-image). Exits non-zero on any failure.
# Elsewhere, with a Docker engine and registries, `docker build .` alone does the same build.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${TSYNC_IMAGE_DIR:-/var/tmp/tsync-image}
lock=${TSYNC_SWIFT_BUILD_LOCK:-/tmp/tsync-swift-build.lock}
swift_root=${TSYNC_SWIFT_ROOT:-/opt/swift}
mirror=${TSYNC_SWIFT_MIRROR:-/opt/swift-packages}
debian_mirror=${TSYNC_DEBIAN_MIRROR:-http://deb.debian.org/debian}
build_base=localhost/tsync-build-base:bookworm
runtime_base=localhost/tsync-runtime-base:bookworm
tag=localhost/tearsheet-sync:latest
rebuild_bases=0
proof=1
bases_only=0
proof_only=0

while [ $# -gt 0 ]; do
  case "$1" in
    --rebuild-bases) rebuild_bases=1 ;;
    --tag) tag=$2; shift ;;
    --no-proof) proof=0 ;;
    --bases-only) bases_only=1 ;;
    --proof-only) proof_only=1 ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--rebuild-bases] [--bases-only] [--proof-only] [--no-proof] [--tag NAME]" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "build-image: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and buildah's chroot isolation need it)"
[ -x "$swift_root/usr/bin/swift" ] || die "no Swift toolchain at $swift_root"
[ -d "$mirror" ] || die "no Swift package mirror at $mirror"

# What the Swift toolchain needs to run and link on Debian 12 (read off `ldd` of /opt/swift's
# binaries and libraries, plus the C runtime, libstdc++ and binutils that clang links with).
build_base_packages=(
  ca-certificates git binutils gcc libc6-dev libgcc-12-dev libstdc++-12-dev
  libcurl4-openssl-dev libxml2-dev libedit2 libsqlite3-0 libncurses6 libicu72 libbsd0
  zlib1g-dev pkg-config tzdata
)

install_tools() {
  local missing=()
  command -v buildah >/dev/null || missing+=(buildah)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

image_exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

# debootstrap a Debian 12 root into $work/NAME-root and import it as image $2.
make_base() {
  local name=$1 image=$2 slim=$3; shift 3
  local root=$work/$name-root include=""
  [ $# -gt 0 ] && include="--include=$(IFS=,; echo "$*")"
  say "debootstrap $name base ($image)"
  rm -rf "$root"
  mkdir -p "$work"
  # shellcheck disable=SC2086
  debootstrap --variant=minbase $include bookworm "$root" "$debian_mirror" > "$work/$name-debootstrap.log" 2>&1 ||
    { tail -n 20 "$work/$name-debootstrap.log" >&2; die "debootstrap of the $name base failed"; }

  # As Debian's own images: updates and security in the sources, no package lists or caches.
  rm -f "$root/etc/apt/sources.list"
  cat > "$root/etc/apt/sources.list.d/debian.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  if [ "$slim" = 1 ]; then
    # What debian:bookworm-slim leaves out: documentation, manual pages, translations.
    cat > "$root/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/groff/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
DPKG
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/groff/"* \
      "$root/usr/share/lintian/"* "$root/usr/share/linda/"*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  fi
  rm -rf "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* \
    "$root/var/log/"*.log "$root/var/log/apt/"* "$root/tmp/"*
  : > "$root/etc/resolv.conf"
  echo localhost > "$root/etc/hostname"

  # Import: an empty image, the root copied into it (no device nodes: the runtime makes /dev).
  local ctr mnt
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar -C "$root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' --numeric-owner -cpf - . |
    tar -C "$mnt" --numeric-owner -xpf -
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash --label org.opencontainers.image.description="Debian 12 ($name base, debootstrap)" \
    --os linux --arch amd64 "$ctr"
  # debootstrap takes bookworm's packages as released; the updates and security fixes on top.
  buildah run --isolation chroot --network host "$ctr" -- sh -c \
    'apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq -y upgrade >/dev/null &&
     apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log' ||
    die "upgrading the $name base failed"
  buildah rmi "$image" >/dev/null 2>&1 || true
  buildah commit --quiet --rm "$ctr" "$image" >/dev/null
  rm -rf "$root"
  say "made $image"
}

# The build: the toolchain and the package mirror mounted read-only; git in the build stage reads
# github.com from the mirror, as on this machine. Under the Swift build lock: no two Swift builds
# at once on this machine.
#
# The build stage is built and tagged first ($build_cache, all layers cached: the second run only
# reuses them), so that its last layer, the compiled package, is kept for the next build, and the
# images that a new build replaces can be removed without losing that cache.
build_cache=${tag%:*}-build-stage:latest
build_image() {
  local revision version start old_ids=() id
  revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
  git -C "$repo" diff --quiet HEAD -- 2>/dev/null || revision="$revision-dirty"
  version=$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)
  for id in "$tag" "$build_cache"; do
    image_exists "$id" && old_ids+=("$(buildah inspect --type image --format '{{.FromImageID}}' "$id")")
  done
  local bud=(buildah bud --isolation chroot --network host --layers --pull=never
    --build-arg BUILD_BASE="$build_base"
    --build-arg RUNTIME_BASE="$runtime_base"
    --build-arg GIT_INSTEAD_OF="$mirror/"
    --build-arg REVISION="$revision"
    --build-arg VERSION="$version"
    --volume "$swift_root:/opt/swift:ro"
    --volume "$mirror:$mirror:ro"
    --file "$repo/Dockerfile")
  say "building $tag (waiting for $lock while another Swift build runs)"
  start=$(date +%s)
  flock "$lock" "${bud[@]}" --target build --tag "$build_cache" "$repo"
  flock "$lock" "${bud[@]}" --tag "$tag" "$repo"
  say "built $tag in $(( $(date +%s) - start )) s (lock wait included)"
  # The images this build replaced, now nameless: gone (their layers stay while others use them).
  for id in "${old_ids[@]}"; do
    [ -n "$(buildah images --noheading --filter dangling=true --format '{{.ID}}' | grep "^${id:0:12}")" ] &&
      buildah rmi "$id" >/dev/null 2>&1 || true
  done
}

# The proof: the image run as it is (its USER 10001) with the host's network, since PostgreSQL
# listens on 127.0.0.1. `buildah run` does not apply the image's ENTRYPOINT: the commands name the
# binary the entrypoint names.
services=$repo/deploy/local/services.sh
pg_data=${TSYNC_LOCAL_DIR:-$repo/.local-services}/postgres
ctr=""
proof_db=""         # the throwaway database the proof migrates, and the server's URL to drop it
admin_url=""
started_pg_pid=""   # the PostgreSQL that this script started, if it did
rabbit_was_up=0
pg_pid() { local pid; pid=$(sed -n 1p "$pg_data/postmaster.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo "$pid"; }
cleanup() {
  [ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true
  [ -z "$proof_db" ] || psql -q -X -d "$admin_url" -c "DROP DATABASE IF EXISTS \"$proof_db\"" >/dev/null 2>&1 || true
  # Only what was started here, and only while it is still the same server.
  [ -n "$started_pg_pid" ] && [ "$(pg_pid)" = "$started_pg_pid" ] || return 0
  if [ "$rabbit_was_up" = 0 ]; then
    "$services" stop || true
  else
    # The RabbitMQ beside it ran before: someone else's. Stop only the PostgreSQL started here.
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_data" -w -m fast stop >/dev/null || true
    say "PostgreSQL stopped"
  fi
}
trap cleanup EXIT

run_in_image() { buildah run --isolation chroot --network host "$@"; }
pg_ready() { /usr/lib/postgresql/15/bin/pg_isready -q -d "$1" >/dev/null 2>&1; }
redacted() { sed -E 's#://([^:@/]*):[^@/]*@#://\1:***@#' <<<"$1"; }

# The PostgreSQL to migrate: $TSYNC_DATABASE_URL when set; else the local services' (deploy/local/
# services.sh), whose URL is read now since its ports change (its `env` names the configured
# port; `status` the one its running server was started on); started here when it is down.
database_url() {
  local url status port failed=0
  if [ -n "${TSYNC_DATABASE_URL:-}" ]; then
    pg_ready "$TSYNC_DATABASE_URL" || die "no PostgreSQL answers at TSYNC_DATABASE_URL ($(redacted "$TSYNC_DATABASE_URL"))"
    echo "$TSYNC_DATABASE_URL"; return
  fi
  url=$("$services" env | sed -n 's/^export TSYNC_DATABASE_URL=//p')
  [ -n "$url" ] || die "$services env printed no TSYNC_DATABASE_URL"
  if pg_ready "$url"; then echo "$url"; return; fi
  status=$("$services" status 2>&1 || true)
  port=$(sed -n 's/.*PostgreSQL up on \([0-9]*\).*/\1/p' <<<"$status")
  if [ -n "$port" ]; then
    url=$(sed -E "s#@127\.0\.0\.1:[0-9]+/#@127.0.0.1:$port/#" <<<"$url")
    say "the local services' PostgreSQL runs on port $port, not the one $services env names"
  else
    say "no PostgreSQL at $(redacted "$url"): starting the local services"
    grep -q "RabbitMQ up" <<<"$status" && rabbit_was_up=1
    "$services" start >&2 || failed=1
    started_pg_pid=$(pg_pid || true)
    [ "$failed" = 0 ] || die "$services start failed"
  fi
  pg_ready "$url" || die "no PostgreSQL answers at $(redacted "$url")"
  echo "$url"
}

prove_image() {
  local db_url
  ctr=$(buildah from --pull=never "$tag")

  say "proof: tearsheet-sync --help, as $(run_in_image "$ctr" -- id)"
  run_in_image "$ctr" -- /usr/local/bin/tearsheet-sync --help

  database_url > "$work/database-url"   # not $(…): the servers it may start stay this shell's
  db_url=$(cat "$work/database-url"); rm -f "$work/database-url"
  # A database of its own on that server, so that migrate starts from nothing and nobody else's
  # schema is touched; dropped at the end.
  admin_url=$db_url
  proof_db=tsync_image_proof_$$
  psql -q -X -v ON_ERROR_STOP=1 -d "$admin_url" -c "CREATE DATABASE \"$proof_db\"" >/dev/null ||
    die "cannot create database $proof_db at $(redacted "$admin_url")"
  db_url=$(sed -E "s#^([a-z]+://[^/]*/)[^?]*#\1$proof_db#" <<<"$admin_url")
  say "proof: tearsheet-sync migrate, TSYNC_DATABASE_URL=$(redacted "$db_url")"
  run_in_image --env TSYNC_DATABASE_URL="$db_url" "$ctr" -- /usr/local/bin/tearsheet-sync migrate
  say "proof: tearsheet-sync migrate again (nothing left to apply)"
  run_in_image --env TSYNC_DATABASE_URL="$db_url" "$ctr" -- /usr/local/bin/tearsheet-sync migrate
}

install_tools
mkdir -p "$work"
if [ "$proof_only" = 0 ]; then
  if [ "$rebuild_bases" = 1 ] || ! image_exists "$build_base"; then
    make_base build "$build_base" 0 "${build_base_packages[@]}"
  fi
  if [ "$rebuild_bases" = 1 ] || ! image_exists "$runtime_base"; then
    make_base runtime "$runtime_base" 1
  fi
  [ "$bases_only" = 1 ] && exit 0
  build_image
fi
image_exists "$tag" || die "no image $tag: build it first"
[ "$proof" = 1 ] && prove_image
say "image $tag: $(buildah images --noheading --format '{{.Size}}' "$tag") (uncompressed, as buildah lists it)"
