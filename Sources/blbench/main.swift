// blbench: timings of the hot kernels and of whole clips, for release builds.
//
//   swift build -c release --product blbench && .build/release/blbench [options]
//     --threads N     worker threads (default 2)
//     --runs N        timed runs per case (default 7; median reported)
//     --warmup N      untimed runs per case (default 1)
//     --filter TEXT   only cases whose name contains TEXT
//     --no-model      skip the whole-clip cases
//     --mini          whole clips of the bundled mini model even when the r50 fixture exists
//     --json          one JSON object on stdout instead of the table
//     --im2col-budget N   floats per im2col tile (KernelContext.im2colBudget; default 1 Mi)
//     --video FILE    also time decoding + scaling FILE to RGB24 frames (BLVideo; repeatable)
//
// Cases: the convolution shapes of bLVNet-TAM-50 at 56/28/14/7 (1x1, 3x3, strided), the bare SGEMM
// of one of them (the BLAS ceiling), TAM, 3x3/2 average pooling, nearest resize with its add,
// half-precision weight widening, and whole clips: bLVNet-TAM-50 (f32 weights, and f16 weights kept
// half-size) when the shared fixture exists, the bundled mini model otherwise.
import BLConvert
import BLCore
import BLEngine
import BLKernels
import Foundation

struct Options {
    var threads = 2, runs = 7, warmup = 1
    var im2colBudget: Int? = nil
    var filter: String? = nil
    var json = false, model = true, mini = false
    var videos: [String] = []

    init(_ args: [String]) {
        var i = 1
        func next() -> String {
            i += 1
            guard i < args.count else { Options.usage("missing value after \(args[i - 1])") }
            return args[i]
        }
        func int(_ s: String) -> Int {
            guard let v = Int(s), v >= 0, v <= 10_000 else { Options.usage("not a count: \(s)") }
            return v
        }
        while i < args.count {
            switch args[i] {
            case "--threads": threads = max(1, int(next()))
            case "--runs": runs = max(1, int(next()))
            case "--warmup": warmup = int(next())
            case "--filter": filter = next()
            case "--json": json = true
            case "--no-model": model = false
            case "--mini": mini = true
            case "--im2col-budget": im2colBudget = max(1, Int(next()) ?? 0)
            case "--video": videos.append(next())
            case "-h", "--help": Options.usage(nil)
            default: Options.usage("unknown argument \(args[i])")
            }
            i += 1
        }
    }

    static func usage(_ error: String?) -> Never {
        let text = "usage: blbench [--threads N] [--runs N] [--warmup N] [--filter TEXT] [--no-model] [--mini] [--json] [--im2col-budget N] [--video FILE]\n"
        if let error {
            FileHandle.standardError.write(Data("blbench: \(error)\n\(text)".utf8))
            exit(2)
        }
        print(text, terminator: "")
        exit(0)
    }
}

/// One measured case.
struct Result {
    var name: String
    var detail: String
    var seconds: [Double]
    /// Process CPU seconds (user + system, all threads) per run: less sensitive to other load.
    var cpu: [Double]
    var flops: Double
    var median: Double {
        let s = seconds.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var best: Double { seconds.min() ?? 0 }
    var cpuMedian: Double {
        let s = cpu.sorted()
        return s.isEmpty ? 0 : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
    var gflops: Double { flops > 0 && median > 0 ? flops / median / 1e9 : 0 }
}

let options = Options(CommandLine.arguments)
let context: KernelContext = {
    var c = KernelContext(threads: options.threads)
    if let b = options.im2colBudget { c.im2colBudget = b }
    return c
}()
var results: [Result] = []

func cpuClock() -> Double { ProcessUsage.cpuSeconds() }

func wallClock() -> Double { MonotonicClock.seconds() }

@MainActor func wanted(_ name: String) -> Bool {
    guard let f = options.filter else { return true }
    return name.contains(f)
}

/// Times `body` (after warm-up) and records the case.
@MainActor func measure(_ name: String, _ detail: String, flops: Double, _ body: () throws -> Void) rethrows {
    guard wanted(name) else { return }
    for _ in 0..<options.warmup { try body() }
    var times: [Double] = [], cpu: [Double] = []
    for _ in 0..<options.runs {
        let c0 = cpuClock(), t0 = wallClock()
        try body()
        times.append(wallClock() - t0)
        cpu.append(cpuClock() - c0)
    }
    let r = Result(name: name, detail: detail, seconds: times, cpu: cpu, flops: flops)
    results.append(r)
    if !options.json {
        FileHandle.standardError.write(Data("  \(name): \(String(format: "%.3f", r.median * 1000)) ms\n".utf8))
    }
}

/// A buffer of pseudo-random floats in [-1, 1).
func randomBuffer(_ count: Int, seed: UInt64) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
    var s = seed &* 0x9e37_79b9_7f4a_7c15 | 1
    for i in 0..<count {
        s = s &* 6364136223846793005 &+ 1442695040888963407
        p[i] = Float(Int64(bitPattern: s >> 11) % 2_000_001 - 1_000_000) / 1_000_000
    }
    return p
}

// MARK: - Convolutions

/// (name, C, K, kernel, stride, input size, frames): the big-branch shapes of bLVNet-TAM-50 at 224
/// (8 frames per clip after the big/little split; the little branch runs the same shapes at half size).
let convCases: [(String, Int, Int, Int, Int, Int, Int)] = [
    ("conv112_7x7s2_3-64", 3, 64, 7, 2, 224, 16),
    ("conv112_3x3_64-32", 64, 32, 3, 1, 112, 8),
    ("conv56_3x3s2_64-64", 64, 64, 3, 2, 112, 8),
    ("conv56_1x1_256-64", 256, 64, 1, 1, 56, 8),
    ("conv56_3x3_64-64", 64, 64, 3, 1, 56, 8),
    ("conv56_1x1_64-256", 64, 256, 1, 1, 56, 8),
    ("conv28_3x3s2_128-128", 128, 128, 3, 2, 56, 8),
    ("conv28_1x1_512-128", 512, 128, 1, 1, 28, 8),
    ("conv28_3x3_128-128", 128, 128, 3, 1, 28, 8),
    ("conv28_1x1_128-512", 128, 512, 1, 1, 28, 8),
    ("conv14_1x1_1024-256", 1024, 256, 1, 1, 14, 8),
    ("conv14_3x3_256-256", 256, 256, 3, 1, 14, 8),
    ("conv14_1x1_256-1024", 256, 1024, 1, 1, 14, 8),
    ("conv7_1x1_2048-512", 2048, 512, 1, 1, 7, 8),
    ("conv7_3x3_512-512", 512, 512, 3, 1, 7, 8),
    ("conv7_1x1_512-2048", 512, 2048, 1, 1, 7, 8),
]

do {
    for (name, c, k, ks, s, size, frames) in convCases where wanted(name) {
        let p = Conv2DParams(inChannels: c, outChannels: k, kernel: (ks, ks), stride: (s, s),
                             padding: (ks / 2, ks / 2))
        let (oh, ow) = try p.outputSize(height: size, width: size)
        let x = randomBuffer(frames * c * size * size, seed: 1)
        let w = randomBuffer(p.weightCount, seed: 2)
        let b = randomBuffer(k, seed: 3)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: frames * k * oh * ow)
        let scratchCount = try Kernels.conv2dScratchCount(p, frames: frames, height: size, width: size, context: context)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(scratchCount, 1))
        let flops = 2.0 * Double(frames * k * oh * ow * c * ks * ks)
        try measure(name, "\(frames)x\(c)x\(size)x\(size) -> \(k), k\(ks) s\(s), bias+ReLU", flops: flops) {
            try Kernels.conv2d(x, frames: frames, height: size, width: size, weight: w, bias: b, params: p,
                               relu: true, output: out, scratch: scratch, scratchCount: scratchCount, context: context)
        }
        x.deallocate(); w.deallocate(); b.deallocate(); out.deallocate(); scratch.deallocate()
    }

    // The BLAS ceiling: one SGEMM of the 56x56 3x3 shape ([64, 576] x [576, 3136]) per frame, frames
    // split over the threads as the convolution does.
    if wanted("sgemm") {
        let m = 64, kk = 576, n = 3136, frames = 8
        let a = randomBuffer(m * kk, seed: 4), bm = randomBuffer(frames * kk * n, seed: 5)
        let cm = UnsafeMutablePointer<Float>.allocate(capacity: frames * m * n)
        BLAS.threads = 1
        let (sa, sb, sc) = (UInt(bitPattern: a), UInt(bitPattern: bm), UInt(bitPattern: cm))
        measure("sgemm_64x576x3136", "\(frames) frames, one single-threaded SGEMM each, \(options.threads) workers",
                flops: 2.0 * Double(frames * m * n * kk)) {
            let workers = options.threads
            DispatchQueue.concurrentPerform(iterations: workers) { part in
                let a = UnsafePointer<Float>(bitPattern: sa)!, b = UnsafePointer<Float>(bitPattern: sb)!
                let c = UnsafeMutablePointer<Float>(bitPattern: sc)!
                for f in stride(from: part, to: frames, by: workers) {
                    BLAS.sgemm(m: m, n: n, k: kk, a: a, lda: kk, b: b + f * kk * n, ldb: n, c: c + f * m * n, ldc: n)
                }
            }
        }
        a.deallocate(); bm.deallocate(); cm.deallocate()
    }

    // MARK: - Memory-bound kernels

    if wanted("tam") {
        let (t, c, h, blend) = (16, 64, 56, 3)
        let x = randomBuffer(t * c * h * h, seed: 6), w = randomBuffer(blend * c, seed: 7)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: t * c * h * h)
        try measure("tam_16x64x56x56", "1 clip of 16 frames, blending 3", flops: 2.0 * Double(t * c * h * h * blend)) {
            try Kernels.tam(x, clips: 1, framesPerClip: t, channels: c, height: h, width: h, weights: w,
                            blending: blend, output: out, context: context)
        }
        x.deallocate(); w.deallocate(); out.deallocate()
    }
    if wanted("avgpool") {
        let (planes, h) = (16 * 64, 112)
        let x = randomBuffer(planes * h * h, seed: 8)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: planes * 56 * 56)
        try measure("avgpool3x3s2_16x64x112", "16x64 planes 112 -> 56", flops: 0) {
            try Kernels.avgPool3x3s2p1(x, planes: planes, height: h, width: h, output: out, context: context)
        }
        x.deallocate(); out.deallocate()
    }
    if wanted("resize") {
        let (planes, hi, ho) = (8 * 256, 28, 56)
        let x = randomBuffer(planes * hi * hi, seed: 9), add = randomBuffer(planes * ho * ho, seed: 10)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: planes * ho * ho)
        try measure("resize_add_8x256_28-56", "nearest 28 -> 56, + addend, ReLU", flops: 0) {
            try Kernels.resizeNearest(x, planes: planes, inHeight: hi, inWidth: hi, outHeight: ho, outWidth: ho,
                                      addend: add, relu: true, output: out, context: context)
        }
        x.deallocate(); add.deallocate(); out.deallocate()
    }
    if wanted("widen") {
        // The weights of bLVNet-TAM-50 (25 M) widened from float16 once: the per-clip cost of
        // keeping a half package half-size in memory.
        let n = 25_000_000
        let src = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
        for i in 0..<n { src[i] = UInt16(truncatingIfNeeded: (i &* 2_654_435_761) >> 7) & 0x7bff }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n)
        measure("widen_f16_25M", "25 M float16 -> float32", flops: 0) {
            Kernels.widenHalf(UnsafeRawPointer(src), count: n, bfloat16: false, output: out, context: context)
        }
        src.deallocate(); out.deallocate()
    }

    // MARK: - Whole clips

    if options.model {
        // The heavy fixtures live beside the repository (../shared/fixtures) or at $BLCONVERT_SHARED_FIXTURES.
        let shared = ProcessInfo.processInfo.environment["BLCONVERT_SHARED_FIXTURES"] ?? "../shared/fixtures"
        let r50 = shared + "/r50-a2b4-f8x2-ssv2/model.pth.tar"
        let mini = ["Fixtures/mini-a2b4-f4x2/model.pth.tar", shared + "/mini-a2b4-f4x2/model.pth.tar"]
        let (label, path, size): (String, String?, Int) = !options.mini && FileManager.default.fileExists(atPath: r50)
            ? ("r50", r50, 224)
            : ("mini", mini.first { FileManager.default.fileExists(atPath: $0) }, 64)
        if let path, wanted("clip") || wanted("paths") {
            // Loaded through the library's public API; the engines below get blbench's own kernel context.
            let model = try BLVNetModel(checkpoint: URL(fileURLWithPath: path), frames: label == "r50" ? 16 : 8,
                                        options: RuntimeOptions(threads: options.threads))
            let cost = try model.cost(height: size, width: size)
            let shape = [1, model.configuration.frames * model.configuration.inputChannels, size, size]
            let count = shape.reduce(1, *)
            let values = randomBuffer(count, seed: 11)
            let clip = try Tensor.make(dtype: .float32, shape: shape) { raw in
                raw.baseAddress?.copyMemory(from: values, byteCount: count * 4)
            }
            values.deallocate()
            let flops = 2.0 * Double(cost.multiplyAccumulates)
            if wanted("paths") {
                for policy in [WinogradPolicy.tile(2), .tile(4), .tile(6), .standard] {
                    let engine = try Engine(graph: model.graph, weights: model.weights, context: context, winograd: policy)
                    print("winograd \(policy):")
                    for l in engine.layerPaths where ConvWeights.winogradApplies(l.params) {
                        let errs = l.winogradErrors.sorted { $0.key < $1.key }.map { "F\($0.key) \(String(format: "%.2e", $0.value))" }
                        print("  \(l.node) \(l.params) \(l.path) \(errs.joined(separator: " ")) \(l.origin ?? "")")
                    }
                }
            }
            do {
                let engine = try Engine(graph: model.graph, weights: model.weights, context: context)
                try measure("clip_\(label)_f32", "1x\(shape[1])x\(size)x\(size), float32 weights", flops: flops) {
                    _ = try engine.run(clip)
                }
            }
            if wanted("clip_\(label)_f16") {
                let half = try model.weights.mapValues { try $0.converted(to: DType.float16) }
                let engine = try Engine(graph: model.graph, weights: half, context: context, weightConversion: .perUse)
                try measure("clip_\(label)_f16", "same, float16 weights kept half-size (converted per use)", flops: flops) {
                    _ = try engine.run(clip)
                }
            }
        }
    }
    try videoCases(options.videos)
} catch {
    FileHandle.standardError.write(Data("blbench: \(error)\n".utf8))
    exit(1)
}

// MARK: - Report

let core = BLASRuntime.coreName
if options.json {
    var obj: [(String, JSON)] = [
        ("threads", .int(Int64(options.threads))), ("runs", .int(Int64(options.runs))),
        ("warmup", .int(Int64(options.warmup))), ("openblas_core", .string(core)),
    ]
    obj.append(("cases", .array(results.map { r in
        .object([("name", .string(r.name)), ("detail", .string(r.detail)),
                 ("seconds_median", .double(r.median)), ("seconds_min", .double(r.best)),
                 ("seconds_all", .array(r.seconds.map { .double($0) })),
                 ("cpu_seconds_median", .double(r.cpuMedian)),
                 ("gflop", .double(r.flops / 1e9)), ("gflops_median", .double(r.gflops))])
    })))
    print(JSON.object(obj).serialized(indent: 2))
} else {
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
    print("blbench: \(options.threads) threads, median of \(options.runs) runs after \(options.warmup) warm-up, OpenBLAS \(core) kernels")
    if let advice = BLASRuntime.kernelAdvice() { print("note: \(advice)") }
    print(pad("case", 26) + lpad("median ms", 11) + lpad("min ms", 10) + lpad("cpu ms", 9) + lpad("GFLOP/s", 9) + "  detail")
    for r in results {
        print(pad(r.name, 26) + lpad(String(format: "%.3f", r.median * 1000), 11)
              + lpad(String(format: "%.3f", r.best * 1000), 10) + lpad(String(format: "%.1f", r.cpuMedian * 1000), 9)
              + lpad(r.flops > 0 ? String(format: "%.1f", r.gflops) : "-", 9) + "  " + r.detail)
    }
}
