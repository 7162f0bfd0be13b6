#!/usr/bin/env bash
# run.sh [bisect|cli] ARGS...: unpacks the kit beside it (scripts/gpu/kit.sh) into /tmp and runs gpu-check (or
# scripts/gpu/bisect.ts, or the recovery-grpo command line with node and nats-server on PATH) with ARGS. On a
# machine with an NVIDIA driver it installs the Vulkan loader from the kit's Debian packages (root) and points it at
# the driver's ICD.
set -euo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
w=/tmp/gpu-check-kit
mkdir -p "$w/node_modules"
[ -x "$w/node" ] || { xz -dc "$kit/node.xz" > "$w/node"; chmod +x "$w/node"; }
rm -rf "$w/nm" "$w/app"; xz -dc "$kit/js.tar.xz" | tar -C "$w" -xf -
cp -r "$w/nm/." "$w/node_modules/"
bin=$(cat "$kit/ort-bin")
[ -f "$w/node_modules/onnxruntime-node/$bin/libonnxruntime.so.1" ] || xz -dc "$kit/libonnxruntime.so.1.xz" > "$w/node_modules/onnxruntime-node/$bin/libonnxruntime.so.1"
# only on a machine with an NVIDIA driver: elsewhere the CPU check needs no Vulkan
if command -v nvidia-smi >/dev/null && ! ldconfig -p | grep -q libvulkan.so.1; then for f in "$kit"/deb/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ]; then export VK_DRIVER_FILES=${VK_DRIVER_FILES:-$icd}; break; fi
done
[ -d "$w/node_modules/@img/sharp-libvips-linux-x64" ] || xz -dc "$kit/libvips.tar.xz" | tar -C "$w/node_modules" -xf -
[ -x "$w/bin/nats-server" ] || { mkdir -p "$w/bin"; xz -dc "$kit/nats-server.xz" > "$w/bin/nats-server"; chmod +x "$w/bin/nats-server"; }
ln -sfn "$w/node_modules" "$w/app/node_modules"
if [ "${1:-}" = cli ]; then shift; export PATH="$w/bin:$w:$PATH"; exec "$w/node" "$w/app/bin/recovery-grpo.mjs" "$@"; fi
cd "$w"
if [ "${1:-}" = bisect ]; then shift; exec ./node bisect.mjs "$@"; fi
exec ./node gpu-check.mjs "$@"
