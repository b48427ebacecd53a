import Foundation
import Testing
import BLTestSupport
@testable import BLCore
@testable import BLKernels

/// Deterministic pseudo-random floats in [-1, 1) (64-bit LCG, top bits).
struct KernelRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 1 }
    mutating func next() -> Float {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Float(Int64(bitPattern: state >> 40) - (1 << 23)) / Float(1 << 23)
    }
    mutating func array(_ n: Int) -> [Float] { (0..<n).map { _ in next() } }
}

/// max |a - b| / max |b| (b is the oracle); 0 when both are all zero.
func maxRelativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var diff = 0.0, scale = 0.0
    for i in 0..<a.count {
        diff = max(diff, abs(Double(a[i]) - Double(b[i])))
        scale = max(scale, abs(Double(b[i])))
    }
    return scale == 0 ? diff : diff / scale
}

struct ConvCase: CustomStringConvertible {
    var frames: Int, height: Int, width: Int
    var params: Conv2DParams
    var bias = true, residual = false, relu = false
    var description: String { "F\(frames) \(height)x\(width) \(params) bias:\(bias) res:\(residual) relu:\(relu)" }
}

@Suite struct KernelTests {
    /// Contexts that drive every conv path: serial and threaded, whole-frame and row tiles,
    /// per-frame and multi-frame GEMMs; each with the AVX-512 SGEMM (`.auto`) and with BLAS.
    static let contexts: [KernelContext] = baseContexts.flatMap { c -> [KernelContext] in
        var own = c, blas = c
        own.gemm = .auto
        blas.gemm = .blas
        return [own, blas]
    }

    static let baseContexts: [KernelContext] = [
        KernelContext(threads: 1),
        KernelContext(threads: 2, minParallelElements: 1),
        KernelContext(threads: 2, minParallelElements: 1, convParallelism: .blas),
        KernelContext(threads: 2, im2colBudget: 64, minGemmColumns: 1, minParallelElements: 1),   // 1-row tiles
        KernelContext(threads: 2, im2colBudget: 64, minGemmColumns: 1, minParallelElements: 1, convParallelism: .blas),
        KernelContext(threads: 1, im2colBudget: 600, minGemmColumns: 1),                           // few-row tiles
        KernelContext(threads: 3, im2colBudget: 600, minGemmColumns: 1, minParallelElements: 1),   // uneven parts
        KernelContext(threads: 2, outputTileBudget: 100, minGemmColumns: 1, minParallelElements: 1), // row tiles, also 1x1
        KernelContext(threads: 2, im2colBudget: 1 << 22, minGemmColumns: 1 << 20, minParallelElements: 1), // frames batched
        KernelContext(threads: 2, im2colBudget: 1 << 22, minGemmColumns: 1 << 20, minParallelElements: 1,
                      convParallelism: .blas),
    ]

    static let convCases: [ConvCase] = [
        ConvCase(frames: 3, height: 7, width: 5,
                 params: Conv2DParams(inChannels: 5, outChannels: 7, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 2, height: 33, width: 47,
                 params: Conv2DParams(inChannels: 13, outChannels: 6, kernel: (1, 1)), relu: true),
        ConvCase(frames: 2, height: 33, width: 47,
                 params: Conv2DParams(inChannels: 13, outChannels: 6, kernel: (1, 1)), bias: false, residual: true),
        ConvCase(frames: 4, height: 7, width: 5,
                 params: Conv2DParams(inChannels: 6, outChannels: 10, kernel: (1, 1), stride: (2, 2))),
        ConvCase(frames: 2, height: 33, width: 47,
                 params: Conv2DParams(inChannels: 3, outChannels: 4, kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
                 relu: true),
        ConvCase(frames: 2, height: 33, width: 47,
                 params: Conv2DParams(inChannels: 3, outChannels: 8, kernel: (7, 7), stride: (2, 2), padding: (3, 3)),
                 relu: true),
        ConvCase(frames: 5, height: 1, width: 1,
                 params: Conv2DParams(inChannels: 9, outChannels: 5, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 1, height: 1, width: 1,
                 params: Conv2DParams(inChannels: 7, outChannels: 3, kernel: (1, 1)), residual: true),
        ConvCase(frames: 2, height: 9, width: 11,
                 params: Conv2DParams(inChannels: 3, outChannels: 5, kernel: (3, 3), padding: (2, 2))),
        ConvCase(frames: 2, height: 13, width: 8,
                 params: Conv2DParams(inChannels: 4, outChannels: 3, kernel: (5, 5), stride: (3, 3), padding: (3, 3)),
                 residual: true),
        ConvCase(frames: 2, height: 6, width: 9,
                 params: Conv2DParams(inChannels: 5, outChannels: 6, kernel: (1, 3), stride: (1, 2), padding: (0, 1)),
                 relu: true),
        ConvCase(frames: 2, height: 4, width: 3,
                 params: Conv2DParams(inChannels: 2, outChannels: 3, kernel: (3, 3), padding: (4, 4))),
        ConvCase(frames: 3, height: 9, width: 12,
                 params: Conv2DParams(inChannels: 6, outChannels: 9, kernel: (3, 3), stride: (2, 2), padding: (1, 1),
                                      groups: 3), residual: true, relu: true),
        ConvCase(frames: 2, height: 7, width: 5,
                 params: Conv2DParams(inChannels: 5, outChannels: 5, kernel: (3, 3), padding: (1, 1), groups: 5),
                 relu: true),
        ConvCase(frames: 2, height: 5, width: 6,
                 params: Conv2DParams(inChannels: 4, outChannels: 8, kernel: (1, 1), groups: 4), bias: false),
        ConvCase(frames: 3, height: 14, width: 14,
                 params: Conv2DParams(inChannels: 67, outChannels: 33, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
        // Network-sized: several row tiles per frame, and frames batched into one GEMM.
        ConvCase(frames: 8, height: 28, width: 28,
                 params: Conv2DParams(inChannels: 64, outChannels: 64, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 8, height: 14, width: 14,
                 params: Conv2DParams(inChannels: 256, outChannels: 128, kernel: (1, 1)), residual: true, relu: true),
        ConvCase(frames: 5, height: 7, width: 7,
                 params: Conv2DParams(inChannels: 128, outChannels: 96, kernel: (3, 3), padding: (1, 1)), relu: true),
        // GEMM edges of the AVX-512 kernel: K out 261 (> one 256-row A block, not a multiple of 8),
        // C*kh*kw = 207 (two depth slices), 1230 columns (three column blocks, partial 48-wide panel).
        ConvCase(frames: 1, height: 30, width: 41,
                 params: Conv2DParams(inChannels: 23, outChannels: 261, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
    ]

    /// Runs `conv2d` under every context and the oracle once.
    static func runConv(_ c: ConvCase, contexts: [KernelContext], seed: UInt64) throws -> (fast: [[Float]], oracle: [Float]) {
        var rng = KernelRNG(seed)
        let p = c.params
        let (oh, ow) = try p.outputSize(height: c.height, width: c.width)
        let x = rng.array(c.frames * p.inChannels * c.height * c.width)
        let w = rng.array(p.weightCount)
        let b = rng.array(p.outChannels)
        let outCount = c.frames * p.outChannels * oh * ow
        let r = rng.array(outCount)
        var results: [[Float]] = []
        var oracle = [Float](repeating: .nan, count: outCount)
        try x.withUnsafeBufferPointer { xp in
            try w.withUnsafeBufferPointer { wp in
                try b.withUnsafeBufferPointer { bp in
                    try r.withUnsafeBufferPointer { rp in
                        let bias = c.bias ? bp.baseAddress : nil, residual = c.residual ? rp.baseAddress : nil
                        for context in contexts {
                            var fast = [Float](repeating: .nan, count: outCount)
                            let need = try Kernels.conv2dScratchCount(p, frames: c.frames, height: c.height,
                                                                      width: c.width, context: context)
                            var scratch = [Float](repeating: .nan, count: need)
                            try Kernels.conv2d(xp.baseAddress!, frames: c.frames, height: c.height, width: c.width,
                                               weight: wp.baseAddress!, bias: bias, params: p, residual: residual,
                                               relu: c.relu, output: &fast, scratch: &scratch, scratchCount: need,
                                               context: context)
                            results.append(fast)
                        }
                        try Kernels.conv2dNaive(xp.baseAddress!, frames: c.frames, height: c.height, width: c.width,
                                                weight: wp.baseAddress!, bias: bias, params: p, residual: residual,
                                                relu: c.relu, output: &oracle)
                    }
                }
            }
        }
        return (results, oracle)
    }

    @Test func conv2dMatchesOracle() throws {
        for (ci, c) in Self.convCases.enumerated() {
            let (results, oracle) = try Self.runConv(c, contexts: Self.contexts, seed: UInt64(ci * 31 + 7))
            for (xi, fast) in results.enumerated() {
                let err = maxRelativeError(fast, oracle)
                #expect(err <= 1e-5, "\(c) context \(xi): relative error \(err)")
                #expect(!fast.contains { $0.isNaN }, "\(c) context \(xi): unwritten output")
                if c.relu { #expect(oracle.contains { $0 == 0 } && oracle.contains { $0 > 0 }, "\(c): ReLU not exercised") }
            }
        }
    }

    /// `a[m, k] x b[k, n]` in float64 loops, rounded once, rows `ldc` apart (columns past n zero).
    static func naiveGemm(m: Int, n: Int, k: Int, a: [Float], lda: Int, b: [Float], ldb: Int, ldc: Int) -> [Float] {
        var want = [Float](repeating: 0, count: m * ldc)
        for i in 0..<m {
            for j in 0..<n {
                var acc = 0.0
                for p in 0..<k { acc += Double(a[i * lda + p]) * Double(b[p * ldb + j]) }
                want[i * ldc + j] = Float(acc)
            }
        }
        return want
    }

    /// The SGEMM behind conv2d against Double loops, on odd shapes and leading dimensions wider
    /// than the matrices, with both backends; `.auto` must pick the AVX-512 kernel exactly when present.
    @Test func gemmMatchesNaive() throws {
        #expect(Gemm.usesOwnKernel(KernelContext(threads: 2, gemm: .auto)) == Gemm.avx512)
        #expect(!Gemm.usesOwnKernel(KernelContext(threads: 2, gemm: .blas)))
        #expect(!Gemm.usesOwnKernel(KernelContext(threads: 2, convParallelism: .blas, gemm: .auto)))
        if BLASRuntime.avx512Available() { #expect(Gemm.avx512) }
        #expect(Kernels.convolutionGemmName(KernelContext(threads: 2, gemm: .blas)).hasPrefix("OpenBLAS "))
        #expect(Kernels.convolutionGemmName(KernelContext(threads: 2, gemm: .auto)) ==
                (Gemm.avx512 ? "AVX-512 (CGemm)" : "OpenBLAS \(BLASRuntime.coreName)"))
        if Gemm.avx512 { #expect(BLASRuntime.kernelAdvice(environment: [:], gemm: .auto) == nil) }
        var rng = KernelRNG(99)
        for (m, n, k) in [(1, 1, 1), (7, 47, 5), (9, 49, 193), (17, 600, 40), (264, 97, 385), (3, 5, 0)] {
            let lda = k + 3, ldb = n + 5, ldc = n + 2
            let a = rng.array(m * lda), b = rng.array(max(k, 1) * ldb)
            let want = Self.naiveGemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, ldc: ldc)
            for backend in [KernelContext.GemmBackend.auto, .blas] {
                var c = [Float](repeating: .nan, count: m * ldc)
                Gemm.sgemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: &c, ldc: ldc,
                           context: KernelContext(threads: 1, gemm: backend))
                var got = [Float](), exp = [Float]()
                for i in 0..<m {
                    for j in 0..<ldc {
                        if j < n { got.append(c[i * ldc + j]); exp.append(want[i * ldc + j]) }
                        else { #expect(c[i * ldc + j].isNaN, "\(m)x\(n)x\(k) \(backend): wrote past column \(n)") }
                    }
                }
                #expect(maxRelativeError(got, exp) <= 1e-5, "\(m)x\(n)x\(k) \(backend)")
            }
        }
    }

    /// OpenBLAS's thread setting, up and down and above the cores: the setting reads back, its
    /// threads run when it is above 1, and the products stay right. (Stopping its idle threads is
    /// the command line's, checked through a process of its own in CLITests: here other tests may
    /// be inside threaded calls.)
    @Test func blasThreadSettingReadsBackAndComputes() throws {
        var rng = KernelRNG(5)
        let (m, n, k) = (256, 384, 320)
        let a = rng.array(m * k), b = rng.array(k * n)
        let want = Self.naiveGemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, ldc: n)
        func product() -> [Float] {
            var c = [Float](repeating: .nan, count: m * n)
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        BLAS.sgemm(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n,
                                   c: pc.baseAddress!, ldc: n)
                    }
                }
            }
            return c
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        for threads in [1, cores + 1, 1, 2, 1] {
            BLAS.threads = threads
            #expect(BLAS.threads == threads)
            if threads > 1, let running = BLAS.serverRunning { #expect(running, "no OpenBLAS threads after setting \(threads)") }
            let err = maxRelativeError(product(), want)
            #expect(err <= 1e-5, "\(threads) OpenBLAS threads: relative error \(err)")
        }
    }

    /// The oracle itself against a hand-computed case: 1 channel 3x3 image, 2x2 kernel, pad 1, stride 2.
    @Test func conv2dNaiveHandCase() throws {
        // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,10],[100,1000]], bias 0.5, output 2x2:
        // (0,0): window rows -1..0, cols -1..0 -> only x[0][0]*w[1][1] = 1000
        // (0,1): rows -1..0, cols 1..2 -> x[0][1]*100 + x[0][2]*1000 = 200 + 3000
        // (1,0): rows 1..2, cols -1..0 -> x[1][0]*10 + x[2][0]*1000 = 40 + 7000
        // (1,1): rows 1..2, cols 1..2 -> 5*1 + 6*10 + 8*100 + 9*1000 = 9865
        let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9], w: [Float] = [1, 10, 100, 1000], b: [Float] = [0.5]
        let p = Conv2DParams(inChannels: 1, outChannels: 1, kernel: (2, 2), stride: (2, 2), padding: (1, 1))
        var out = [Float](repeating: 0, count: 4)
        try Kernels.conv2dNaive(x, frames: 1, height: 3, width: 3, weight: w, bias: b, params: p, output: &out)
        #expect(out == [1000.5, 3200.5, 7040.5, 9865.5])
        let ctx = KernelContext.serial
        var fast = [Float](repeating: 0, count: 4)
        let n = try Kernels.conv2dScratchCount(p, frames: 1, height: 3, width: 3, context: ctx)
        var scratch = [Float](repeating: 0, count: n)
        try Kernels.conv2d(x, frames: 1, height: 3, width: 3, weight: w, bias: b, params: p, output: &fast,
                           scratch: &scratch, scratchCount: n, context: ctx)
        #expect(fast == out)
    }

    @Test func conv2dRejectsBadArguments() throws {
        let ctx = KernelContext.serial
        #expect(throws: BLError.self) {
            try Conv2DParams(inChannels: 6, outChannels: 4, kernel: (3, 3), groups: 4).outputSize(height: 5, width: 5)
        }
        #expect(throws: BLError.self) {
            try Conv2DParams(inChannels: 1, outChannels: 1, kernel: (5, 5)).outputSize(height: 3, width: 9)
        }
        #expect(throws: BLError.self) {
            try Conv2DParams(inChannels: 1, outChannels: 1, kernel: (1, 1), stride: (0, 1)).outputSize(height: 3, width: 3)
        }
        let p = Conv2DParams(inChannels: 2, outChannels: 2, kernel: (3, 3), padding: (1, 1))
        // The im2col path needs its column tiles; one float short is refused.
        let need = try Kernels.conv2dIm2colScratchCount(p, frames: 1, height: 4, width: 4, context: ctx)
        #expect(need > 0)
        let x = [Float](repeating: 1, count: 32), w = [Float](repeating: 1, count: 36)
        var out = [Float](repeating: 0, count: 32)
        var scratch = [Float](repeating: 0, count: need)
        #expect(throws: BLError.self) {
            try Kernels.conv2dIm2col(x, frames: 1, height: 4, width: 4, weight: w, bias: nil, params: p, output: &out,
                                     scratch: &scratch, scratchCount: need - 1, context: ctx)
        }
        // The packed GEMM reads the image through the convolution's geometry: no column buffer.
        var own = ctx
        own.gemm = .auto
        #expect(try Kernels.conv2dScratchCount(p, frames: 1, height: 4, width: 4, context: own) == (Gemm.avx512 ? 0 : need))
        // Winograd needs its transform scratch; one float short is refused.
        if Gemm.avx512 {
            let wino = try ConvWeights.prepare(w, owner: nil, params: p, winograd: .tile(2), context: own)
            let n = try Kernels.conv2dScratchCount(wino, frames: 1, height: 4, width: 4, context: own)
            #expect(n > 0)
            var s = [Float](repeating: 0, count: n)
            #expect(throws: BLError.self) {
                try Kernels.conv2d(x, frames: 1, height: 4, width: 4, weights: wino, bias: nil, output: &out,
                                   scratch: &s, scratchCount: n - 1, context: own)
            }
        }
        // 1x1 stride-1 runs straight on the input: no scratch at all for large planes.
        let q = Conv2DParams(inChannels: 64, outChannels: 64, kernel: (1, 1))
        #expect(try Kernels.conv2dScratchCount(q, frames: 8, height: 56, width: 56, context: KernelContext()) == 0)
        // Tiled im2col stays within its budget per worker.
        let big = Conv2DParams(inChannels: 64, outChannels: 64, kernel: (3, 3), padding: (1, 1))
        let c2 = KernelContext(threads: 2)
        let tiled = try Kernels.conv2dIm2colScratchCount(big, frames: 8, height: 56, width: 56, context: c2)
        #expect(tiled > 0 && tiled <= 2 * c2.im2colBudget && tiled < 8 * 64 * 9 * 56 * 56 / 2)
    }

    @Test func tamMatchesOracleAndDefinition() throws {
        for (n, t, c, h, w, b) in [(2, 4, 3, 5, 7, 3), (1, 2, 5, 1, 1, 3), (2, 6, 4, 3, 2, 5), (3, 3, 2, 4, 4, 1),
                                   (1, 8, 33, 17, 24, 3)] {
            var rng = KernelRNG(UInt64(n * 100 + t * 10 + b))
            let x = rng.array(n * t * c * h * w), wts = rng.array(b * c)
            var fast = [Float](repeating: .nan, count: x.count), oracle = fast
            try Kernels.tam(x, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts, blending: b,
                            output: &fast, context: KernelContext(threads: 2, minParallelElements: 1))
            Kernels.tamNaive(x, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts, blending: b,
                             output: &oracle)
            #expect(maxRelativeError(fast, oracle) <= 1e-6, "tam \(n)x\(t) c\(c) \(h)x\(w) b\(b)")
            // Definition check for b == 3 (reference: prev shifted forward, next shifted back, zero padded):
            // out[n,t] = relu(prev*x[t-1] + curr*x[t] + next*x[t+1]).
            if b == 3 {
                let hw = h * w
                for nn in 0..<n {
                    for tt in 0..<t {
                        for cc in 0..<c {
                            for k in 0..<hw {
                                func xv(_ f: Int) -> Float { f < 0 || f >= t ? 0 : x[((nn * t + f) * c + cc) * hw + k] }
                                let v = max(wts[cc] * xv(tt - 1) + wts[c + cc] * xv(tt) + wts[2 * c + cc] * xv(tt + 1), 0)
                                let o = fast[((nn * t + tt) * c + cc) * hw + k]
                                #expect(abs(o - v) <= 1e-6 * max(1, abs(v)))
                            }
                        }
                    }
                }
            }
        }
    }

    /// The fused layouts equal duplicateFrames -> tam -> selectFrames.
    @Test func tamDuplicatedInputAndSplitOutput() throws {
        for (n, t, c, h, w, b) in [(2, 4, 3, 5, 7, 3), (1, 2, 5, 1, 1, 3), (2, 6, 4, 3, 2, 5), (1, 8, 6, 3, 3, 3)] {
            var rng = KernelRNG(UInt64(n * 7 + t * 5 + b))
            let hw = h * w, frameSize = c * hw
            let half = rng.array(n * (t / 2) * frameSize), wts = rng.array(b * c)
            let ctx = KernelContext(threads: 2, minParallelElements: 1)
            // Reference by composition (through the oracle).
            var full = [Float](repeating: 0, count: n * t * frameSize)
            try Kernels.duplicateFrames(half, frames: n * t / 2, frameSize: frameSize, output: &full)
            var ref = [Float](repeating: 0, count: full.count)
            Kernels.tamNaive(full, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts,
                             blending: b, output: &ref)
            var refEven = [Float](repeating: 0, count: full.count / 2), refOdd = refEven
            try Kernels.selectFrames(ref, clips: n, framesPerClip: t, frameSize: frameSize, parity: 0, output: &refEven)
            try Kernels.selectFrames(ref, clips: n, framesPerClip: t, frameSize: frameSize, parity: 1, output: &refOdd)
            // Duplicated input, plain output.
            var out = [Float](repeating: .nan, count: full.count)
            try Kernels.tam(half, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts,
                            blending: b, inputDuplicated: true, output: &out, context: ctx)
            #expect(maxRelativeError(out, ref) <= 1e-6)
            // Duplicated input, split output.
            var even = [Float](repeating: .nan, count: full.count / 2), odd = even
            try odd.withUnsafeMutableBufferPointer { op in
                try Kernels.tam(half, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts,
                                blending: b, inputDuplicated: true, output: &even, oddOutput: op.baseAddress!,
                                context: ctx)
            }
            #expect(maxRelativeError(even, refEven) <= 1e-6 && maxRelativeError(odd, refOdd) <= 1e-6)
            // Plain input, split output.
            var even2 = [Float](repeating: .nan, count: full.count / 2), odd2 = even2
            try odd2.withUnsafeMutableBufferPointer { op in
                try Kernels.tam(full, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts,
                                blending: b, output: &even2, oddOutput: op.baseAddress!, context: ctx)
            }
            #expect(maxRelativeError(even2, refEven) <= 1e-6 && maxRelativeError(odd2, refOdd) <= 1e-6)
        }
        // Plain input split in place (odd T too: T0 = T1 + 1): the buffer ends as [even | odd], on
        // one and on three workers, the same values as the out-of-place split.
        for (n, t, c, h, w, b) in [(2, 4, 3, 5, 7, 3), (3, 5, 4, 2, 3, 3), (1, 16, 7, 6, 5, 3), (2, 6, 1, 4, 4, 5)] {
            var rng = KernelRNG(UInt64(n * 13 + t * 3 + c))
            let hw = h * w, frameSize = c * hw, t0 = (t + 1) / 2
            let full = rng.array(n * t * frameSize), wts = rng.array(b * c)
            var ref = [Float](repeating: 0, count: full.count)
            Kernels.tamNaive(full, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts,
                             blending: b, output: &ref)
            var refEven = [Float](repeating: 0, count: n * t0 * frameSize)
            var refOdd = [Float](repeating: 0, count: n * (t - t0) * frameSize)
            try Kernels.selectFrames(ref, clips: n, framesPerClip: t, frameSize: frameSize, parity: 0, output: &refEven)
            try Kernels.selectFrames(ref, clips: n, framesPerClip: t, frameSize: frameSize, parity: 1, output: &refOdd)
            for ctx in [KernelContext.serial, KernelContext(threads: 3, minParallelElements: 1)] {
                var buffer = full
                let need = try Kernels.tamInPlaceScratchCount(clips: n, framesPerClip: t, height: h, width: w,
                                                              channels: c, context: ctx)
                var scratch = [Float](repeating: .nan, count: need)
                try buffer.withUnsafeMutableBufferPointer { bp in
                    let base = bp.baseAddress!
                    try Kernels.tam(base, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts,
                                    blending: b, output: base, oddOutput: base + n * t0 * frameSize,
                                    inPlaceScratch: &scratch, scratchCount: need, context: ctx)
                }
                #expect(maxRelativeError(Array(buffer[..<(n * t0 * frameSize)]), refEven) <= 1e-6, "in place \(n)x\(t) c\(c)")
                #expect(maxRelativeError(Array(buffer[(n * t0 * frameSize)...]), refOdd) <= 1e-6, "in place \(n)x\(t) c\(c)")
                // Wrong layouts and short scratch are refused.
                var other = full
                #expect(throws: BLError.self) {
                    try buffer.withUnsafeMutableBufferPointer { bp in
                        let base = bp.baseAddress!
                        try Kernels.tam(base, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts,
                                        blending: b, output: &other, oddOutput: base + n * t0 * frameSize,
                                        inPlaceScratch: &scratch, scratchCount: need, context: ctx)
                    }
                }
                #expect(throws: BLError.self) {
                    try buffer.withUnsafeMutableBufferPointer { bp in
                        let base = bp.baseAddress!
                        try Kernels.tam(base, clips: n, framesPerClip: t, channels: c, height: h, width: w, weights: wts,
                                        blending: b, output: base, oddOutput: base + n * t0 * frameSize,
                                        inPlaceScratch: &scratch, scratchCount: need - 1, context: ctx)
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: 9)
        #expect(throws: BLError.self) {
            try Kernels.tam([Float](repeating: 0, count: 9), clips: 1, framesPerClip: 3, channels: 1, height: 1, width: 1,
                            weights: [1, 1, 1], blending: 3, inputDuplicated: true, output: &out, context: .serial)
        }
    }

    @Test func avgPoolMatchesOracle() throws {
        for (p, h, w) in [(3, 7, 5), (2, 33, 47), (4, 1, 1), (2, 2, 2), (3, 9, 12), (2, 56, 56), (1, 1, 6)] {
            var rng = KernelRNG(UInt64(p * h * w))
            let x = rng.array(p * h * w)
            let (oh, ow) = Kernels.avgPool3x3s2p1OutputSize(height: h, width: w)
            #expect(oh == (h + 2 - 3) / 2 + 1 && ow == (w + 2 - 3) / 2 + 1)
            var fast = [Float](repeating: .nan, count: p * oh * ow), oracle = fast
            try Kernels.avgPool3x3s2p1(x, planes: p, height: h, width: w, output: &fast,
                                       context: KernelContext(threads: 2, minParallelElements: 1))
            Kernels.avgPool3x3s2p1Naive(x, planes: p, height: h, width: w, output: &oracle)
            #expect(maxRelativeError(fast, oracle) <= 1e-6, "avgpool \(p) \(h)x\(w)")
        }
        // count_include_pad: a corner output of an all-ones 2x2 image sees 4 pixels, divided by 9.
        var out = [Float](repeating: 0, count: 1)
        try Kernels.avgPool3x3s2p1([1, 1, 1, 1], planes: 1, height: 2, width: 2, output: &out, context: .serial)
        #expect(abs(out[0] - 4.0 / 9.0) < 1e-7)
        // 9x12 -> 5x6, 5x6 -> 3x3, 3x3 -> 2x2: the big branches of the mini case at 33x47.
        #expect(Kernels.avgPool3x3s2p1OutputSize(height: 9, width: 12) == (5, 6))
        #expect(Kernels.avgPool3x3s2p1OutputSize(height: 5, width: 6) == (3, 3))
        #expect(Kernels.avgPool3x3s2p1OutputSize(height: 3, width: 3) == (2, 2))
    }

    /// Any square window (the engine's general pooling, moved from it with its oracle): every
    /// padding, stride and kernel the IR allows, threaded and serial, against the Double oracle.
    @Test func generalAvgPoolMatchesOracle() throws {
        for (p, h, w, k, s, pad) in [(3, 7, 5, 3, 2, 1), (2, 9, 12, 2, 2, 0), (1, 8, 8, 4, 4, 0), (2, 11, 6, 3, 1, 1),
                                     (4, 5, 7, 5, 3, 2), (1, 1, 1, 1, 1, 0), (2, 33, 47, 3, 2, 0)] {
            var rng = KernelRNG(UInt64(p * h * w * k + s))
            let x = rng.array(p * h * w)
            let (oh, ow) = Kernels.avgPoolOutputSize(height: h, width: w, kernel: k, stride: s, padding: pad)
            var oracle = [Float](repeating: .nan, count: p * oh * ow)
            Kernels.avgPoolNaive(x, planes: p, height: h, width: w, kernel: k, stride: s, padding: pad, output: &oracle)
            for context in [KernelContext.serial, KernelContext(threads: 2, minParallelElements: 1)] {
                var fast = [Float](repeating: .nan, count: p * oh * ow)
                try Kernels.avgPool(x, planes: p, height: h, width: w, kernel: k, stride: s, padding: pad,
                                    outHeight: oh, outWidth: ow, output: &fast, context: context)
                #expect(maxRelativeError(fast, oracle) <= 1e-6, "avgPool \(p) \(h)x\(w) k\(k) s\(s) p\(pad)")
            }
        }
        // The 3x3/2/1 case agrees with its specialised kernel.
        var rng = KernelRNG(5)
        let x = rng.array(2 * 13 * 10)
        var general = [Float](repeating: 0, count: 2 * 7 * 5), special = general
        try Kernels.avgPool(x, planes: 2, height: 13, width: 10, kernel: 3, stride: 2, padding: 1, outHeight: 7, outWidth: 5,
                            output: &general, context: .serial)
        try Kernels.avgPool3x3s2p1(x, planes: 2, height: 13, width: 10, output: &special, context: .serial)
        #expect(maxRelativeError(general, special) <= 1e-6)
        // A wrong output size or padding wider than half the window is an error, not a wild write.
        var out = [Float](repeating: 0, count: 4)
        #expect(throws: BLError.self) {
            try Kernels.avgPool(x, planes: 1, height: 4, width: 4, kernel: 2, stride: 2, padding: 0, outHeight: 3, outWidth: 2,
                                output: &out, context: .serial)
        }
        #expect(throws: BLError.self) {
            try Kernels.avgPool(x, planes: 1, height: 4, width: 4, kernel: 2, stride: 1, padding: 2, outHeight: 7, outWidth: 7,
                                output: &out, context: .serial)
        }
    }

    /// Inference BatchNorm as scale and shift, in place and not, against the Double oracle.
    @Test func scaleShiftMatchesOracle() throws {
        for (m, c, hw) in [(1, 3, 1), (2, 5, 7), (3, 64, 49), (1, 1, 1000)] {
            var rng = KernelRNG(UInt64(m * c * hw))
            let x = rng.array(m * c * hw), scale = rng.array(c), shift = rng.array(c)
            var oracle = [Float](repeating: .nan, count: x.count)
            Kernels.scaleShiftNaive(x, planes: m * c, channels: c, planeSize: hw, scale: scale, shift: shift, output: &oracle)
            var fast = [Float](repeating: .nan, count: x.count)
            try Kernels.scaleShift(x, planes: m * c, channels: c, planeSize: hw, scale: scale, shift: shift, output: &fast,
                                   context: KernelContext(threads: 2, minParallelElements: 1))
            #expect(maxRelativeError(fast, oracle) <= 1e-6, "scaleShift \(m)x\(c)x\(hw)")
            var inPlace = x
            try inPlace.withUnsafeMutableBufferPointer { b in
                guard let p = b.baseAddress else { return }
                try Kernels.scaleShift(p, planes: m * c, channels: c, planeSize: hw, scale: scale, shift: shift, output: p,
                                       context: .serial)
            }
            #expect(inPlace == fast)
        }
        var out = [Float](repeating: 0, count: 6)
        #expect(throws: BLError.self) {
            try Kernels.scaleShift([Float](repeating: 1, count: 6), planes: 3, channels: 2, planeSize: 2, scale: [1, 1],
                                   shift: [0, 0], output: &out, context: .serial)
        }
    }

    /// Source-index tables of PyTorch's legacy 'nearest' rule, written out from its formula
    /// (`nearest_idx` in ATen UpSample.h: same size copies, double size shifts, otherwise float32
    /// `scale = in/out`, `src = min(floor(dst * scale), in - 1)`), evaluated independently in
    /// numpy float32.
    static let nearestTables: [(Int, Int, [Int])] = [
        (7, 4, [0, 1, 3, 5]),                                                   // scale 1.75
        (4, 7, [0, 0, 1, 1, 2, 2, 3]),                                          // scale 4/7
        (33, 17, [0, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31]),
        (17, 9, [0, 1, 3, 5, 7, 9, 11, 13, 15]),
        (5, 9, [0, 0, 1, 1, 2, 2, 3, 3, 4]),
        (6, 12, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),                          // exact doubling: dst >> 1
        (3, 5, [0, 0, 1, 1, 2]),
        (3, 6, [0, 0, 1, 1, 2, 2]),
        (2, 3, [0, 0, 1]),
        (9, 5, [0, 1, 3, 5, 7]),
        (5, 5, [0, 1, 2, 3, 4]),
        // float32 rounding matters: 11 * float(26/22) = 12.999999 -> 12 (exact arithmetic gives 13).
        (26, 22, [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24]),
    ]

    @Test func nearestIndexMatchesPyTorchTables() {
        for (i, o, table) in Self.nearestTables {
            let got = (0..<o).map { Kernels.nearestSourceIndex($0, input: i, output: o) }
            #expect(got == table, "\(i) -> \(o)")
        }
        // float32 rounding: 37 * float(6/74) = 2.9999998 -> 2 (exact arithmetic gives 3).
        #expect(Kernels.nearestSourceIndex(37, input: 6, output: 74) == 2)
    }

    @Test func resizeMatchesOracleAndTables() throws {
        for (hi, wi, ho, wo) in [(7, 4, 4, 7), (33, 17, 17, 9), (5, 6, 9, 12), (3, 3, 5, 6), (2, 2, 3, 3), (1, 1, 3, 2),
                                 (26, 6, 22, 74)] {
            var rng = KernelRNG(UInt64(hi * 1000 + wi * 100 + ho * 10 + wo))
            let p = 3
            let x = rng.array(p * hi * wi), add = rng.array(p * ho * wo)
            for (useAdd, relu) in [(false, false), (true, true), (true, false)] {
                var fast = [Float](repeating: .nan, count: p * ho * wo), oracle = fast
                try Kernels.resizeNearest(x, planes: p, inHeight: hi, inWidth: wi, outHeight: ho, outWidth: wo,
                                          addend: useAdd ? add : nil, relu: relu, output: &fast,
                                          context: KernelContext(threads: 2, minParallelElements: 1))
                Kernels.resizeNearestNaive(x, planes: p, inHeight: hi, inWidth: wi, outHeight: ho, outWidth: wo,
                                           addend: useAdd ? add : nil, relu: relu, output: &oracle)
                #expect(fast == oracle, "resize \(hi)x\(wi) -> \(ho)x\(wo)")
            }
            // Against the tables directly where both axes are listed.
            if let ty = Self.nearestTables.first(where: { $0.0 == hi && $0.1 == ho })?.2,
               let tx = Self.nearestTables.first(where: { $0.0 == wi && $0.1 == wo })?.2 {
                var out = [Float](repeating: 0, count: p * ho * wo)
                try Kernels.resizeNearest(x, planes: p, inHeight: hi, inWidth: wi, outHeight: ho, outWidth: wo,
                                          output: &out, context: .serial)
                var ok = true
                for q in 0..<p { for y in 0..<ho { for xx in 0..<wo {
                    ok = ok && out[(q * ho + y) * wo + xx] == x[(q * hi + ty[y]) * wi + tx[xx]]
                } } }
                #expect(ok, "table check \(hi)x\(wi) -> \(ho)x\(wo)")
            }
        }
        // In place: output is the addend buffer.
        let x: [Float] = [1, -2, 3, -4]
        var buf: [Float] = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
        try buf.withUnsafeMutableBufferPointer { b in
            try Kernels.resizeNearest(x, planes: 1, inHeight: 2, inWidth: 2, outHeight: 3, outWidth: 3,
                                      addend: UnsafePointer(b.baseAddress!), relu: true, output: b.baseAddress!,
                                      context: .serial)
        }
        // rows/cols map 0,0,1 (table (2, 3)): [[1,1,-2],[1,1,-2],[3,3,-4]] + 0.5, ReLU
        #expect(buf == [1.5, 1.5, 0, 1.5, 1.5, 0, 3.5, 3.5, 0])
    }

    /// Resize shapes of the mini fixture at 33x47, derived from the architecture and checked
    /// against the activation shapes PyTorch recorded in clip2.safetensors.
    @Test func miniFixtureResizeShapes() throws {
        let path = TestData.fixture("mini-a2b4-f4x2/clip2.safetensors")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | (Int($1.element) << (8 * $1.offset)) }
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
        func hw(_ name: String) throws -> (Int, Int) {
            let entry = try #require(header["act.baseline_model." + name] as? [String: Any])
            let shape = try #require(entry["shape"] as? [Int])
            return (shape[2], shape[3])
        }
        let input = try #require((header["input"] as? [String: Any])?["shape"] as? [Int])
        let s2k3 = Conv2DParams(inChannels: 1, outChannels: 1, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        // conv1: k7 s2 p3
        let c1 = try Conv2DParams(inChannels: 3, outChannels: 64, kernel: (7, 7), stride: (2, 2), padding: (3, 3))
            .outputSize(height: input[2], width: input[3])
        #expect(c1 == (17, 24))
        #expect(try hw("conv1") == c1)
        // layer 0: b_conv0 (s2) and l_conv1 (s2) meet at 9x12
        let l0 = try s2k3.outputSize(height: c1.height, width: c1.width)
        #expect(try hw("bn_bl_init") == l0)
        // layer1: big branch stride 2 (conv s2 and avgpool agree), little stays at l0; resize big -> l0.
        let b1 = try s2k3.outputSize(height: l0.height, width: l0.width)
        #expect(Kernels.avgPool3x3s2p1OutputSize(height: l0.height, width: l0.width) == b1)
        #expect(b1 == (5, 6))
        #expect(try hw("layer1") == b1)  // fusion stride 2
        let b2 = try s2k3.outputSize(height: b1.height, width: b1.width)
        #expect(try hw("layer2") == b2)  // layer2 resizes b2 -> b1, fusion stride 2
        let b3 = try s2k3.outputSize(height: b2.height, width: b2.width)
        #expect(try hw("layer3") == b2)  // layer3 resizes b3 -> b2, fusion stride 1
        let pairs = [(b1.height, l0.height), (b1.width, l0.width), (b2.height, b1.height), (b2.width, b1.width),
                     (b3.height, b2.height), (b3.width, b2.width)]
        #expect(pairs.map { "\($0.0)->\($0.1)" } == ["5->9", "6->12", "3->5", "3->6", "2->3", "2->3"])
        for (i, o) in pairs {
            let table = try #require(Self.nearestTables.first { $0.0 == i && $0.1 == o }?.2)
            #expect((0..<o).map { Kernels.nearestSourceIndex($0, input: i, output: o) } == table)
        }
    }

    @Test func poolingLinearAndFrameHelpers() throws {
        var rng = KernelRNG(99)
        // globalAvgPool
        for (p, h, w) in [(5, 7, 5), (3, 1, 1), (4, 2, 2), (2, 14, 14)] {
            let x = rng.array(p * h * w)
            var fast = [Float](repeating: .nan, count: p), oracle = fast
            try Kernels.globalAvgPool(x, planes: p, height: h, width: w, output: &fast,
                                      context: KernelContext(threads: 2, minParallelElements: 1))
            Kernels.globalAvgPoolNaive(x, planes: p, height: h, width: w, output: &oracle)
            #expect(maxRelativeError(fast, oracle) <= 1e-6)
        }
        // linear
        for (f, i, o) in [(3, 17, 5), (1, 2048, 10), (4, 1, 1)] {
            let x = rng.array(f * i), w = rng.array(o * i), b = rng.array(o)
            var fast = [Float](repeating: .nan, count: f * o), oracle = fast
            try Kernels.linear(x, rows: f, inFeatures: i, outFeatures: o, weight: w, bias: b, output: &fast)
            Kernels.linearNaive(x, rows: f, inFeatures: i, outFeatures: o, weight: w, bias: b, output: &oracle)
            #expect(maxRelativeError(fast, oracle) <= 1e-5)
        }
        // temporalMean: [2*3, 2] -> [2, 2]
        var mean = [Float](repeating: 0, count: 4)
        try Kernels.temporalMean([1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60], clips: 2, framesPerClip: 3, features: 2,
                                 output: &mean)
        #expect(mean == [3, 4, 30, 40])
        // selectFrames: 2 clips of 4 frames, 2 floats per frame; frame value = 10*index + element.
        let frames: [Float] = (0..<8).flatMap { [Float(10 * $0), Float(10 * $0 + 1)] }
        var odd = [Float](repeating: 0, count: 8), even = odd
        try Kernels.selectFrames(frames, clips: 2, framesPerClip: 4, frameSize: 2, parity: 1, output: &odd)
        try Kernels.selectFrames(frames, clips: 2, framesPerClip: 4, frameSize: 2, parity: 0, output: &even)
        #expect(odd == [10, 11, 30, 31, 50, 51, 70, 71])     // big list range(1, T, 2) per clip
        #expect(even == [0, 1, 20, 21, 40, 41, 60, 61])      // little list range(0, T, 2) per clip
        #expect(Kernels.parityFrameCount(framesPerClip: 5, parity: 0) == 3)
        #expect(Kernels.parityFrameCount(framesPerClip: 5, parity: 1) == 2)
        #expect(throws: BLError.self) {
            try Kernels.selectFrames(frames, clips: 2, framesPerClip: 4, frameSize: 2, parity: 2, output: &odd)
        }
        // duplicateFrames: [3, 2] -> [6, 2]
        var dup = [Float](repeating: 0, count: 12)
        try Kernels.duplicateFrames([1, 2, 3, 4, 5, 6], frames: 3, frameSize: 2, output: &dup)
        #expect(dup == [1, 2, 1, 2, 3, 4, 3, 4, 5, 6, 5, 6])
        // add / relu
        var sum = [Float](repeating: 0, count: 3)
        Kernels.add([1, -5, 2], [1, 1, -3], count: 3, relu: true, output: &sum, context: .serial)
        #expect(sum == [2, 0, 0])
        Kernels.add([1, -5, 2], [1, 1, -3], count: 3, output: &sum, context: .serial)
        #expect(sum == [2, -4, -1])
        Kernels.relu(sum, count: 3, output: &sum, context: .serial)
        #expect(sum == [2, 0, 0])
    }
}
