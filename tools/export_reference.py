#!/usr/bin/env python3
"""Write reference clip files for `blconvert verify` from your own bLVNet-TAM checkpoint.

Needs: python3 with torch, safetensors and numpy, and a checkout of the reference code
(IBM/bLVNet-TAM) for its model definition. Not run by CI.

Each output file holds, in the format of blconvert's fixtures:
  input        F32 [N, T*C, H, W]  the clip as bLVNet_TAM.forward takes it
  logits       F32 [N, classes]    PyTorch float32 output
  logits_f64   F64 [N, classes]    the same model in float64: the ground truth
  act.baseline_model.<module>      F32 outputs of conv1, bn1, tam, bn_bl_init, layer1..layer4, gappool
                                   (with --activations)

Examples:
  python3 tools/export_reference.py --reference-code ~/src/bLVNet-TAM \\
      --checkpoint st2stv2-bLVNet-TAM-50-a2-b4-f8x2.pth.tar --depth 50 --alpha 2 --beta 4 \\
      --frames 16 --num-classes 174 --dropout 0.5 --random 1x224x224 --seed 0 \\
      --activations -o clip0.safetensors
  python3 tools/export_reference.py ... --input my_clip.npy -o clip1.safetensors
"""
import argparse
import sys
from collections import OrderedDict

ACT_MODULES = ["conv1", "bn1", "tam", "bn_bl_init", "layer1", "layer2", "layer3", "layer4", "gappool"]
DEPTHS = {50: [3, 4, 6, 3], 101: [4, 8, 18, 3], 152: [5, 12, 30, 3]}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference-code", required=True, help="checkout of IBM/bLVNet-TAM (holds core/models)")
    p.add_argument("--checkpoint", required=True, help="state dict or training checkpoint (.pth/.pth.tar)")
    p.add_argument("--depth", type=int, default=50, help="50, 101 or 152 (or give --blocks)")
    p.add_argument("--blocks", help="custom blocks per stage, e.g. 2,2,2,1 (overrides --depth)")
    p.add_argument("--alpha", type=int, default=2)
    p.add_argument("--beta", type=int, default=4)
    p.add_argument("--frames", type=int, required=True, help="T, the number of input frames (f8x2 means 16)")
    p.add_argument("--blending-frames", type=int, default=3)
    p.add_argument("--input-channels", type=int, default=3)
    p.add_argument("--num-classes", type=int, required=True)
    p.add_argument("--dropout", type=float, default=0.5, help="> 0 means the head is dropout + new_fc")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help=".npy or .safetensors (tensor 'input') of shape [N, T*C, H, W]")
    src.add_argument("--random", help="NxHxW: a random normal clip of that size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--activations", action="store_true", help="also store act.baseline_model.* outputs")
    p.add_argument("-o", "--output", required=True)
    return p.parse_args()


def build_model(args):
    sys.path.insert(0, args.reference_code)
    import core.models.blvnet_tam as top
    import core.models.blvnet_tam_backbone as bb

    blocks = [int(b) for b in args.blocks.split(",")] if args.blocks else DEPTHS[args.depth]

    def backbone(depth, alpha, beta, num_frames, blending_frames=3, input_channels=3,
                 imagenet_blnet_pretrained=False):
        return bb.bLVNet_TAM_BACKBONE(bb.Bottleneck, blocks, alpha, beta, num_frames,
                                      blending_frames=blending_frames, input_channels=input_channels)

    top.blvnet_tam_backbone = backbone
    params = dict(depth=args.depth, alpha=args.alpha, beta=args.beta, groups=args.frames,
                  blending_frames=args.blending_frames, input_channels=args.input_channels,
                  imagenet_blnet_pretrained=False, dataset="custom", pretrained=False,
                  dropout=args.dropout, num_classes=args.num_classes, blending_method="sum",
                  partial_freeze_bn=False)
    return top.bLVNet_TAM(params)


def load_state_dict(path):
    import torch
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    out = OrderedDict()
    for k, v in obj.items():
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def main():
    args = parse_args()
    import numpy as np
    import torch
    from safetensors.torch import save_file, load_file

    model = build_model(args)
    model.load_state_dict(load_state_dict(args.checkpoint), strict=True)
    model.eval()

    if args.input:
        if args.input.endswith(".npy"):
            x = torch.from_numpy(np.load(args.input)).float()
        else:
            x = load_file(args.input)["input"].float()
    else:
        n, h, w = (int(v) for v in args.random.lower().split("x"))
        g = torch.Generator().manual_seed(args.seed)
        x = torch.randn(n, args.frames * args.input_channels, h, w, generator=g)

    acts = {}
    hooks = []
    if args.activations:
        for name in ACT_MODULES:
            mod = getattr(model.baseline_model, name)
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, name=name: acts.__setitem__("act.baseline_model." + name, o.detach().float().clone())))
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        logits64 = model.double()(x.double())

    tensors = {"input": x.contiguous(), "logits": logits.contiguous(), "logits_f64": logits64.contiguous()}
    tensors.update({k: v.contiguous() for k, v in acts.items()})
    save_file(tensors, args.output)
    rel = (logits.double() - logits64).abs().max() / logits64.abs().max()
    print(f"wrote {args.output}: input {list(x.shape)}, logits {list(logits.shape)}, "
          f"torch float32 vs float64 rel {rel.item():.3e}, top-1 {logits64.argmax(1).tolist()}")


if __name__ == "__main__":
    main()
