#!/usr/bin/env bash
# kit.sh DIR: packs `npm run gpu-check` for a GPU machine that has neither Node.js nor a network: this machine's
# node binary and onnxruntime-node (linux x64 only), the check and scripts/gpu/bisect.ts bundled into a file each
# (esbuild, which tsx brings), and Debian's Vulkan loader for the WebGPU provider; and the command line with sharp
# and nats-server, to run the roles there. On that machine: `bash DIR/run.sh ARGS...` (ARGS: gpu-check's),
# `bash DIR/run.sh bisect ARGS...` (scripts/gpu/bisect.ts) or `bash DIR/run.sh cli ARGS...` (recovery-grpo ARGS).
# In the two scripts' bundles sharp is replaced by a stub that throws: they decode no image files. docs/gpu.md says
# how it was used.
set -euo pipefail
mkdir -p "$1"; out=$(cd "$1" && pwd) # absolute: esbuild resolves the sharp alias from its working directory
root=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$out"; mkdir -p "$out/nm/onnxruntime-node" "$out/deb" "$out/stub"
xz -T0 -6 -c "$(command -v node)" > "$out/node.xz"
cp -r "$root/node_modules/onnxruntime-common" "$out/nm/"
ort=$root/node_modules/onnxruntime-node
cp -r "$ort/package.json" "$ort/dist" "$ort/lib" "$out/nm/onnxruntime-node/"
bin=$(cd "$ort" && ls -d bin/napi-v*/linux/x64)
mkdir -p "$out/nm/onnxruntime-node/$bin"
cp "$ort/$bin/onnxruntime_binding.node" "$out/nm/onnxruntime-node/$bin/"
xz -T0 -6 -c "$ort/$bin/libonnxruntime.so.1" > "$out/libonnxruntime.so.1.xz"
echo "$bin" > "$out/ort-bin"
# lib/grpo/reward-expression.ts requires mathjs's one-file build at run time (a path esbuild cannot follow)
mkdir -p "$out/nm/mathjs/lib/browser"
cp "$root/node_modules/mathjs/package.json" "$out/nm/mathjs/"
cp "$root/node_modules/mathjs/lib/browser/math.js" "$root/node_modules/mathjs/lib/browser/package.json" "$out/nm/mathjs/lib/browser/"
echo 'export default function sharp() { throw new Error("sharp is not in the gpu-check kit (scripts/gpu/kit.sh)"); }' > "$out/stub/sharp.mjs"
bundle() {
  "$root/node_modules/.bin/esbuild" "$1" --bundle --platform=node --format=esm --target=node20 --outfile="$2" \
    --external:onnxruntime-node --alias:sharp="$out/stub/sharp.mjs" --external:nsfwjs '--external:@tensorflow/*' --log-level=warning \
    --banner:js="import { createRequire as __kitRequire } from 'module'; const require = __kitRequire(import.meta.url);"
}
bundle "$root/scripts/gpu-check.ts" "$out/gpu-check.mjs"
bundle "$root/scripts/gpu/bisect.ts" "$out/bisect.mjs"
# The command line itself, to run the roles as processes (`run.sh cli demo ...`): laid out as the clone is, since the
# code finds bin/, proto/ and package.json two folders above itself, with real sharp (it decodes the photographs)
# and nats-server. The pretrained encoders (nsfwjs, TensorFlow.js) are left out.
app=$out/app; mkdir -p "$app/bin" "$app/dist/cli" "$app/proto"
"$root/node_modules/.bin/esbuild" "$root/cli/main.ts" --bundle --platform=node --format=esm --target=node20 --outfile="$app/dist/cli/main.mjs" \
  --external:onnxruntime-node --external:sharp --external:nsfwjs '--external:@tensorflow/*' --log-level=warning \
  --banner:js="import { createRequire as __kitRequire } from 'module'; const require = __kitRequire(import.meta.url);"
echo "await import('../dist/cli/main.mjs');" > "$app/bin/recovery-grpo.mjs"
cp "$root/package.json" "$app/"; cp "$root/proto/recovery.proto" "$app/proto/"
cp "$root/lib/graph/graph-thread-worker.mjs" "$root/lib/data/photos.jsonl" "$app/dist/cli/"
mkdir -p "$app/dist/cli/wasm"; cp "$root/lib/data/wasm/mean-shift-modes.wasm" "$root/lib/data/wasm/convolve-exact.wasm" "$root/lib/data/wasm/line-blur.wasm" "$app/dist/cli/wasm/" # mean_shift's search, motion_blur's convolution and line blur
for m in sharp @img/colour @img/sharp-linux-x64 detect-libc semver; do mkdir -p "$out/nm/$(dirname "$m")"; cp -r "$root/node_modules/$m" "$out/nm/$m"; done
tar -C "$root/node_modules" -cf - @img/sharp-libvips-linux-x64 | xz -T0 -6 > "$out/libvips.tar.xz"
nats=${RECOVERY_GRPO_NATS_SERVER:-$(command -v nats-server || true)}
[ -n "$nats" ] || { bash "$root/scripts/ensure-nats-server.sh"; nats=$(command -v nats-server); }
xz -T0 -6 -c "$nats" > "$out/nats-server.xz"
lists=$(mktemp -d); mkdir -p "$lists/partial"
o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
apt-get $o update -qq >/dev/null 2>&1 || true
(cd "$out/deb" && apt-get $o download libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libgles2 2>/dev/null >/dev/null) ||
  echo "kit.sh: Debian's Vulkan loader could not be downloaded; the kit needs libvulkan.so.1 on the GPU machine" >&2
rm -rf "$lists"
cp "$root/lib/graph/graph-thread-worker.mjs" "$out/" # the graph threads (the CPU scorer's lanes, the roles' sessions), beside the bundle
# the JavaScript in one xz archive (a GPU machine's carry is small: the kit is ~50 MB, the node binary half of it)
tar -C "$out" -cf - nm app stub gpu-check.mjs bisect.mjs graph-thread-worker.mjs | xz -T0 -6 > "$out/js.tar.xz"
rm -rf "$out/nm" "$out/app" "$out/stub" "$out/gpu-check.mjs" "$out/bisect.mjs" "$out/graph-thread-worker.mjs"
cp "$root/scripts/gpu/run.sh" "$out/run.sh"
du -sh "$out"
