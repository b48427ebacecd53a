#!/usr/bin/env python3
"""The reference test.py evaluation pipeline, driven from the command line: per video the views
(VideoDataSet + test.py's augmentor), and with --checkpoint the model's outputs through
torch's DataLoader and eval_a_batch, with timing. For checking and benchmarking `blconvert eval`.

Needs: python3 with torch, torchvision, numpy, pillow, tqdm, and a checkout of the reference code
(IBM/bLVNet-TAM). Not run by CI; the reference code is imported from the checkout, not copied.

Examples:
  # views only: sha256 of each video's float32 [views, T*C, S, S] tensor (as test.py builds it)
  python3 tools/eval_reference.py --reference-code ~/src/bLVNet-TAM --list val.txt --root frames \\
      --frames 8 --num-crops 10 --num-clips 2 --modality flow --views-sha
  # the whole pipeline with a model, 2 loader workers and 2 torch threads; JSON on stdout
  python3 tools/eval_reference.py --reference-code ~/src/bLVNet-TAM --list val.txt --root frames \\
      --checkpoint model.pth.tar --blocks 2,2,2,1 --frames 8 --num-classes 10 --workers 2 --threads 2
"""
import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
import types


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference-code", required=True)
    p.add_argument("--list", required=True)
    p.add_argument("--root", default="")
    p.add_argument("--separator", default=" ")
    p.add_argument("--image-tmpl", default="{:05d}.jpg")
    p.add_argument("--frames", type=int, required=True, help="T (groups)")
    p.add_argument("--frames-per-group", type=int, default=1)
    p.add_argument("--dense-sampling", action="store_true")
    p.add_argument("--num-crops", type=int, default=1)
    p.add_argument("--num-clips", type=int, default=1)
    p.add_argument("--input-shape", type=int, default=224)
    p.add_argument("--disable-scaleup", action="store_true")
    p.add_argument("--modality", default="rgb")
    p.add_argument("--test-mode", action="store_true", help="a list without labels")
    p.add_argument("--views-sha", action="store_true", help="print the sha256 of each video's views")
    p.add_argument("--checkpoint")
    p.add_argument("--blocks", default="2,2,2,1")
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--alpha", type=int, default=2)
    p.add_argument("--beta", type=int, default=4)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def main():
    args = parse_args()
    # A PyPI torchvision built for another torch variant fails to register its C operators;
    # only its PIL transforms are used here.
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    sys.path.insert(0, args.reference_code)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import numpy as np
    import torch
    import torchvision.transforms as transforms
    from core.video_dataset import VideoDataSet
    from core.video_transforms import GroupScale, GroupCenterCrop, GroupOverSample, Stack, ToTorchFormatTensor, GroupNormalize
    from core.video_utils import build_dataflow
    from test import eval_a_batch

    torch.set_num_threads(args.threads)
    if args.modality == "rgb":
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    else:
        mean, std = [0.5], [np.mean([0.229, 0.224, 0.225])]
    # test.py's augmentor
    scale_size = args.input_shape if args.disable_scaleup else int(args.input_shape / 0.875 + 0.5)
    if args.num_crops == 1:
        augments = [GroupScale(scale_size), GroupCenterCrop(args.input_shape)]
    else:
        augments = [GroupOverSample(args.input_shape, scale_size, num_crops=args.num_crops, flip=args.num_crops == 10)]
    augments += [Stack(), ToTorchFormatTensor(num_clips_crops=args.num_clips * args.num_crops),
                 GroupNormalize(mean=mean, std=std)]
    with contextlib.redirect_stdout(sys.stderr):  # the dataset prints its size
        dataset = VideoDataSet(args.root, args.list, args.frames, args.frames_per_group, num_clips=args.num_clips,
                               modality=args.modality, image_tmpl=args.image_tmpl, dense_sampling=args.dense_sampling,
                               fixed_offset=True, transform=transforms.Compose(augments), is_train=False,
                               test_mode=args.test_mode, seperator=args.separator, filter_video=0)
    views = args.num_crops * args.num_clips
    if args.views_sha:
        out = []
        for i in range(len(dataset)):
            x, _ = dataset[i]
            x = x.view((views, -1) + x.size()[1:]).contiguous().numpy().astype("<f4")
            out.append({"path": dataset.video_list[i].path, "shape": list(x.shape),
                        "input_sha256": hashlib.sha256(x.tobytes()).hexdigest()})
        print(json.dumps({"scale_size": scale_size, "videos": out}, indent=1))
        return
    from export_reference import build_model, load_state_dict
    margs = argparse.Namespace(reference_code=args.reference_code, blocks=args.blocks, depth=args.depth,
                               alpha=args.alpha, beta=args.beta, frames=args.frames, blending_frames=3,
                               input_channels=3 if args.modality == "rgb" else 10, dropout=args.dropout,
                               num_classes=args.num_classes)
    with contextlib.redirect_stdout(sys.stderr):  # the model prints its settings
        model = build_model(margs)
    model.load_state_dict(load_state_dict(args.checkpoint), strict=True)
    model.eval()
    loader = build_dataflow(dataset, is_train=False, batch_size=args.batch_size, workers=args.workers)
    start = time.time()
    probs = []
    with torch.no_grad():
        for video, label in loader:
            probs.append(eval_a_batch(video, model, num_clips=args.num_clips, num_crops=args.num_crops, softmax=True))
    seconds = time.time() - start
    probs = torch.cat(probs).numpy()
    print(json.dumps({"videos": len(dataset), "seconds": seconds, "videos_per_second": len(dataset) / seconds,
                      "workers": args.workers, "threads": args.threads,
                      "top5": np.argsort(probs, axis=1)[:, ::-1][:, :5].tolist()}))


if __name__ == "__main__":
    main()
