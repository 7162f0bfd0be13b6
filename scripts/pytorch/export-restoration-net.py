#!/usr/bin/python3
"""Exports a small residual restoration U-Net written in PyTorch, as a user of recovery-grpo would bring one.

Writes into OUT_DIR (default test/fixtures/pytorch):
  restoration-net.onnx         torch.onnx.export, opset 17, dynamic batch/height/width
  restoration-net.safetensors  the model's state dict (written by hand: Debian has no python3-safetensors)
  restoration-net.json         torch version, opset, parameter count, and PyTorch's own output on a fixed
                               input, so the project's tests check the import against PyTorch itself

The network is the project's policy contract: image [N,3,H,W] in, a residual [N,3,H,W] out (the policy's
mean is image + residual). It uses what PyTorch restoration networks use and the project did not write:
GroupNorm, SiLU, GELU, strided convolutions, PixelShuffle, bilinear interpolation, a residual block and a
skip concatenation. The head is scaled down so the untrained residual is small; the GroupNorm affines are randomised (see below).

Needs PyTorch (Debian 12: apt-get install -y python3-torch, which is 1.13.1); run with /usr/bin/python3:
  /usr/bin/python3 scripts/pytorch/export-restoration-net.py [OUT_DIR]
  velocity-net.onnx/.json      a flow velocity network v(x, t_emb, y) (x, y [N,3,H,W], t_emb [N,16])
CI never runs this: the outputs are committed as fixtures.
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c)
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h


class RestorationNet(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.stem = nn.Conv2d(3, w, 3, padding=1)
        self.stem_norm = nn.GroupNorm(4, w)
        self.down = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.mid = ResBlock(2 * w, 8)
        self.up = nn.Conv2d(2 * w, 4 * w, 1)  # 4w channels -> PixelShuffle(2) -> w channels at full size
        self.shuffle = nn.PixelShuffle(2)
        self.context = nn.Conv2d(2 * w, w, 1)  # a bilinear-upsampled context branch
        self.fuse = nn.Conv2d(3 * w, w, 3, padding=1)
        self.head = nn.Conv2d(w, 3, 3, padding=1)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
            # GroupNorm affines as a trained network has them, not PyTorch's ones/zeros: the exporter
            # deduplicates equal initializers (mid.norm2.weight would become Identity(mid.norm1.weight)),
            # which would tie the two norms in training and leave state-dict entries unused.
            for m in self.modules():
                if isinstance(m, nn.GroupNorm):
                    m.weight.copy_(1 + 0.1 * torch.randn_like(m.weight))
                    m.bias.copy_(0.05 * torch.randn_like(m.bias))

    def forward(self, image):
        s = F.silu(self.stem_norm(self.stem(image)))
        d = F.gelu(self.down(s))
        d = self.mid(d)
        u = self.shuffle(self.up(d))
        c = F.interpolate(self.context(d), scale_factor=2.0, mode='bilinear', align_corners=False)
        f = F.leaky_relu(self.fuse(torch.cat([s, u, c], dim=1)), 0.1)
        return self.head(f)


class VelocityNet(nn.Module):
    """A flow-matching velocity field v(x_t, t, y): x_t and the corrupted image y concatenated, the time
    embedding (sinusoidal features computed by the caller, [N, 16]) projected and added per channel."""

    def __init__(self, width: int = 16, time_features: int = 16):
        super().__init__()
        w = width
        self.time = nn.Sequential(nn.Linear(time_features, w), nn.SiLU(), nn.Linear(w, w))
        self.stem = nn.Conv2d(6, w, 3, padding=1)
        self.norm = nn.GroupNorm(4, w)
        self.down = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.up = nn.Conv2d(2 * w, 4 * w, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.head = nn.Conv2d(2 * w, 3, 3, padding=1)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.norm.weight.copy_(1 + 0.1 * torch.randn_like(self.norm.weight))
            self.norm.bias.copy_(0.05 * torch.randn_like(self.norm.bias))

    def forward(self, x, t_emb, y):
        h = self.stem(torch.cat([x, y], dim=1)) + self.time(t_emb)[:, :, None, None]
        h = F.silu(self.norm(h))
        u = self.shuffle(self.up(F.silu(self.down(h))))
        return self.head(torch.cat([h, u], dim=1))


def write_safetensors(path: str, state: dict) -> None:
    header, blobs, offset = {}, [], 0
    for name, t in state.items():
        data = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(',', ':'))
    head += ' ' * ((8 - (8 + len(head)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(head)))
        f.write(head.encode())
        for b in blobs:
            f.write(b)


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else 'test/fixtures/pytorch'
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(14)
    net = RestorationNet().eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        y = net(x)
    onnx_path = os.path.join(out, 'restoration-net.onnx')
    # do_constant_folding=False keeps every initializer under its state-dict name (folding would rename
    # GroupNorm's unsqueezed affine parameters to onnx::Mul_N), so the state dict maps onto the file.
    torch.onnx.export(net, (x,), onnx_path, opset_version=17, input_names=['image'], output_names=['residual'],
                      dynamic_axes={'image': {0: 'N', 2: 'H', 3: 'W'}, 'residual': {0: 'N', 2: 'H', 3: 'W'}},
                      do_constant_folding=False)
    write_safetensors(os.path.join(out, 'restoration-net.safetensors'), net.state_dict())
    meta = {
        'torch': torch.__version__,
        'opset': 17,
        'parameters': sum(p.numel() for p in net.parameters()),
        'input_shape': list(x.shape),
        'input': x.flatten().tolist(),
        'output': y.flatten().tolist(),
    }
    with open(os.path.join(out, 'restoration-net.json'), 'w') as f:
        json.dump(meta, f)
    # The flow family's velocity network: inputs x, t_emb (named by model.network.time), y (model.network.condition).
    torch.manual_seed(15)
    vnet = VelocityNet().eval()
    vx = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    vt = torch.randn(2, 16, generator=torch.Generator().manual_seed(9))
    vy = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        vv = vnet(vx, vt, vy)
    vpath = os.path.join(out, 'velocity-net.onnx')
    spatial = {0: 'N', 2: 'H', 3: 'W'}
    torch.onnx.export(vnet, (vx, vt, vy), vpath, opset_version=17, input_names=['x', 't_emb', 'y'], output_names=['velocity'],
                      dynamic_axes={'x': spatial, 't_emb': {0: 'N'}, 'y': spatial, 'velocity': spatial}, do_constant_folding=False)
    with open(os.path.join(out, 'velocity-net.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'opset': 17, 'parameters': sum(p.numel() for p in vnet.parameters()),
                   'inputs': {'x': vx.flatten().tolist(), 't_emb': vt.flatten().tolist(), 'y': vy.flatten().tolist()},
                   'output': vv.flatten().tolist()}, f)
    print(f"wrote {vpath} ({os.path.getsize(vpath)} bytes)")
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes), {meta['parameters']} parameters, torch {torch.__version__}")


if __name__ == '__main__':
    main()
