"""Peer baselines for blconvert: onnxruntime, OpenVINO (f32 forced, and its default, bf16 on CPUs
with AVX512_BF16 or AMX), PyTorch eager and torch.compile on one bLVNet-TAM clip.

Runs locally only (never downloads anything). Needs a Python with torch, onnxruntime, numpy and
safetensors (and openvino for ov-f32 / ov-default), and the reference bLVNet-TAM code (the
IBM/bLVNet-TAM repository) on disk. The OpenVINO engines read the exported ONNX model.

usage:
  peer_bench.py export  --ref DIR --checkpoint FILE --onnx OUT [model options]
  peer_bench.py time    ort|ov-f32|ov-default|eager|compile --clip FILE [--onnx FILE | --ref DIR --checkpoint FILE]
                        [--runs 10] [--warmup 2] [--threads 2] [model options]
  peer_bench.py once    ort|ov-f32|ov-default|eager --clip FILE [...]     load the model, run the clip once, print top-5
model options (defaults: bLVNet-TAM-50 a2 b4 f8x2, Something-Something v2 head):
  --depth 50 --alpha 2 --beta 4 --frames 16 --blending 3 --classes 174
`time` prints one JSON line: engine, seconds (all runs), median, min, cpu seconds per run (median,
all threads), peak RSS of the process in bytes, and the max |logit - logits_f64| when the clip has it.
"""
import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import sys
import time
import warnings
from collections import OrderedDict

warnings.filterwarnings("ignore")


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["export", "time", "once"])
    p.add_argument("engine", nargs="?", default="ort", choices=["ort", "ov-f32", "ov-default", "eager", "compile"])
    p.add_argument("--ref", default=os.environ.get("BLVNET_REF"))
    p.add_argument("--checkpoint")
    p.add_argument("--onnx")
    p.add_argument("--clip")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--depth", type=int, default=50)
    p.add_argument("--alpha", type=int, default=2)
    p.add_argument("--beta", type=int, default=4)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--blending", type=int, default=3)
    p.add_argument("--classes", type=int, default=174)
    return p.parse_args()


def torch_model(a):
    """The reference model with the checkpoint loaded strictly, in eval mode."""
    import torch
    if not a.ref or not a.checkpoint:
        sys.exit("peer_bench: --ref and --checkpoint are needed for the PyTorch model")
    sys.path.insert(0, a.ref)
    from core.models.blvnet_tam import bLVNet_TAM
    params = dict(depth=a.depth, alpha=a.alpha, beta=a.beta, groups=a.frames, blending_frames=a.blending,
                  input_channels=3, imagenet_blnet_pretrained=False, dataset="st2stv2", pretrained=False,
                  dropout=0.5, num_classes=a.classes, blending_method="sum", partial_freeze_bn=False)
    with contextlib.redirect_stdout(io.StringIO()):  # the constructor prints its parameters
        model = bLVNet_TAM(params)
    state = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in state.items())
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_clip(a):
    from safetensors.numpy import load_file
    if not a.clip:
        sys.exit("peer_bench: --clip is needed")
    t = load_file(a.clip)
    return t["input"], t.get("logits_f64")


def runner(a, engine):
    """A function running the clip once and returning logits as numpy."""
    x, _ = load_clip(a)
    if engine == "ort":
        import onnxruntime as ort
        if not a.onnx or not os.path.exists(a.onnx):
            sys.exit("peer_bench: --onnx must name an exported model (see `export`)")
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(a.onnx, so, providers=["CPUExecutionProvider"])
        return lambda: sess.run(None, {"input": x})[0], f"onnxruntime {ort.__version__}"
    if engine.startswith("ov-"):
        import openvino as ov
        if not a.onnx or not os.path.exists(a.onnx):
            sys.exit("peer_bench: --onnx must name an exported model (see `export`)")
        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": a.threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if engine == "ov-f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = core.compile_model(core.read_model(a.onnx), "CPU", config)
        precision = compiled.get_property("INFERENCE_PRECISION_HINT")
        request = compiled.create_infer_request()
        return (lambda: request.infer({0: x})[compiled.output(0)],
                f"OpenVINO {ov.get_version().split('-')[0]} CPU, precision {precision}")
    import torch
    torch.set_num_threads(a.threads)
    model = torch_model(a)
    xt = torch.from_numpy(x)
    fn = model
    note = f"torch {torch.__version__}"
    if engine == "compile":
        t0 = time.perf_counter()
        fn = torch.compile(model)
        with torch.no_grad():
            fn(xt)
        note += f", compile + first run {time.perf_counter() - t0:.1f} s"

    def run():
        with torch.no_grad():
            return fn(xt).numpy()
    return run, note


def main():
    a = parse()
    if a.mode == "export":
        import torch
        torch.set_num_threads(a.threads)
        model = torch_model(a)
        x, _ = load_clip(a) if a.clip else (None, None)
        shape = x.shape if x is not None else (1, 3 * a.frames, 224, 224)
        with torch.no_grad():
            torch.onnx.export(model, (torch.zeros(shape),), a.onnx, opset_version=17, dynamo=False,
                              input_names=["input"], output_names=["logits"])
        print(f"exported {a.onnx} (torch {torch.__version__}, opset 17)")
        return
    run, note = runner(a, a.engine)
    if a.mode == "once":
        import numpy as np
        logits = np.asarray(run())[0]
        top = np.argsort(-logits)[:5]
        print("top-5:", " ".join(f"{i}:{logits[i]:.4f}" for i in top))
        return
    for _ in range(a.warmup):
        out = run()
    ts, cs = [], []
    for _ in range(a.runs):
        c0, t0 = time.process_time(), time.perf_counter()
        out = run()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    _, ref = load_clip(a)
    err = rel = None
    top5 = None
    if ref is not None:
        import numpy as np
        o = np.asarray(out, dtype=np.float64)
        err = float(np.abs(o - ref).max())
        rel = err / float(np.abs(ref).max())
        top5 = [int(i) for i in np.argsort(-o[0])[:5]]
    print(json.dumps({"engine": a.engine, "note": note, "threads": a.threads, "seconds": ts,
                      "median": statistics.median(ts), "min": min(ts), "cpu": statistics.median(cs),
                      "cpu_all": cs,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "max_abs_error_vs_f64": err, "max_rel_error_vs_f64": rel, "top5": top5}), flush=True)


if __name__ == "__main__":
    main()
