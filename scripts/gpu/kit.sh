#!/usr/bin/env bash
# kit.sh DIR: packs `npm run gpu-check` for a GPU machine that has neither Node.js nor a network: this machine's
# node binary and onnxruntime-node (linux x64 only), the check and scripts/gpu/bisect.ts bundled into a file each
# (esbuild, which tsx brings), and Debian's Vulkan loader for the WebGPU provider. On that machine: `bash DIR/run.sh ARGS...` (ARGS: gpu-check's),
# or `bash DIR/run.sh bisect ARGS...` (scripts/gpu/bisect.ts).
# sharp is replaced by a stub that throws: the check decodes no image files. docs/gpu.md says how it was used.
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
lists=$(mktemp -d); mkdir -p "$lists/partial"
o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
apt-get $o update -qq >/dev/null 2>&1 || true
(cd "$out/deb" && apt-get $o download libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libgles2 2>/dev/null >/dev/null) ||
  echo "kit.sh: Debian's Vulkan loader could not be downloaded; the kit needs libvulkan.so.1 on the GPU machine" >&2
rm -rf "$lists"
cp "$root/scripts/gpu/run.sh" "$out/run.sh"
cp "$root/lib/models/lane-worker.mjs" "$out/" # the CPU scorer's worker threads, beside the bundle
du -sh "$out"
