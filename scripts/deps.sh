#!/usr/bin/env bash
# Installs the Debian packages blconvert builds against, when they are missing.
set -euo pipefail
need=()
pkg-config --exists hdf5-serial || need+=(libhdf5-dev)
pkg-config --exists openblas || need+=(libopenblas-dev)
pkg-config --exists zlib || need+=(zlib1g-dev)
pkg-config --exists libpng || need+=(libpng-dev)
[ -f /usr/include/jpeglib.h ] || need+=(libjpeg62-turbo-dev)
pkg-config --exists libavformat || need+=(libavformat-dev)
pkg-config --exists libavcodec || need+=(libavcodec-dev)
pkg-config --exists libswscale || need+=(libswscale-dev)
pkg-config --exists libavutil || need+=(libavutil-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${need[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pkg-config "${need[@]}" >/dev/null
