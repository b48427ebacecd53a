#!/usr/bin/env python3
"""Writes Fixtures/eval-flow (synthetic flow frames) and the reference view hashes of
Fixtures/eval-flow and of dense sampling on Fixtures/eval-mini, by running the reference
pipeline through tools/eval_reference.py. Needs what that script needs. Not run by CI.

  python3 tools/make_eval_fixtures.py --reference-code ~/src/bLVNet-TAM
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "Fixtures")


def write_flow(root):
    rng = np.random.RandomState(7)
    videos = [("f001", 14, (40, 30), "png"), ("f002", 4, (30, 44), "jpg"), ("f003", 9, (36, 36), "png")]
    lines = []
    for name, count, (w, h), ext in videos:
        os.makedirs(os.path.join(root, "frames", name), exist_ok=True)
        for n in range(1, count + 1):
            for axis in "xy":
                base = rng.randint(0, 256, size=(h, w)).astype(np.uint8)
                Image.fromarray(base, mode="L").save(os.path.join(root, "frames", name, f"{n:05d}_{axis}.{ext}"),
                                                     quality=90)
        lines.append((ext, f"{name} 1 {count} {len(lines) % 3}\n"))
    for ext in ["png", "jpg"]:
        with open(os.path.join(root, f"flow_list_{ext}.txt"), "w") as f:
            f.writelines(line for e, line in lines if e == ext)


def views(ref, args, list_file, root):
    cmd = [sys.executable, os.path.join(HERE, "eval_reference.py"), "--reference-code", ref, "--list", list_file,
           "--root", root, "--views-sha"] + args
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reference-code", required=True)
    a = p.parse_args()
    flow = os.path.join(FIXTURES, "eval-flow")
    write_flow(flow)
    runs = []
    for tmpl, rest in [("{:05d}.png", []), ("{:05d}.png", ["--num-crops", "10", "--num-clips", "2"]),
                       ("{:05d}.png", ["--num-crops", "3"]), ("{:05d}.png", ["--num-crops", "5", "--disable-scaleup"]),
                       ("{:05d}.png", ["--dense-sampling", "--frames-per-group", "2", "--num-clips", "2"])]:
        settings = ["--frames", "4", "--modality", "flow", "--input-shape", "24", "--image-tmpl", tmpl] + rest
        r = views(a.reference_code, settings, os.path.join(flow, "flow_list_png.txt"), os.path.join(flow, "frames"))
        runs.append({"args": settings, "list": "flow_list_png.txt", "videos": r["videos"]})
    r = views(a.reference_code, ["--frames", "4", "--modality", "flow", "--input-shape", "24", "--num-crops", "10",
                                 "--image-tmpl", "{:05d}.jpg"], os.path.join(flow, "flow_list_jpg.txt"),
              os.path.join(flow, "frames"))
    runs.append({"args": ["--frames", "4", "--modality", "flow", "--input-shape", "24", "--num-crops", "10",
                          "--image-tmpl", "{:05d}.jpg"], "list": "flow_list_jpg.txt", "videos": r["videos"]})
    mini = os.path.join(FIXTURES, "eval-mini")
    # Dense sampling reads frames the bundled v002 does not have: the complete videos only.
    dense_list = os.path.join(flow, "mini_dense_list.txt")
    with open(os.path.join(mini, "val_list.txt")) as f, open(dense_list, "w") as out:
        out.writelines(line for line in f if not line.startswith("v002 "))
    for rest in [["--dense-sampling", "--frames-per-group", "2", "--num-clips", "2", "--input-shape", "160"],
                 ["--dense-sampling", "--frames-per-group", "3", "--num-clips", "3", "--num-crops", "3",
                  "--input-shape", "112"]]:
        settings = ["--frames", "8"] + rest
        r = views(a.reference_code, settings, dense_list, os.path.join(mini, "frames"))
        runs.append({"args": settings, "list": "mini_dense_list.txt", "root": "../eval-mini/frames",
                     "videos": r["videos"]})
    with open(os.path.join(flow, "reference.json"), "w") as f:
        json.dump({"written_by": "tools/make_eval_fixtures.py (the reference VideoDataSet and test.py augmentor)",
                   "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
