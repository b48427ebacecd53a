import Foundation
import Testing
import BLTestSupport
@testable import BLCore
@testable import BLKernels
import BLEngine
import BLGraph
import CGemm

/// The prepared-weight kernels against their naive oracles: Winograd F(2x2), F(4x4), F(6x6)
/// and the packed GEMM (float32 and bfloat16) against `conv2dNaive` (float64 sums).
@Suite struct FastKernelTests {
    static let ownKernel = Gemm.avx512
    static let bf16 = ComputePrecision.bfloat16Available

    /// Contexts that drive each Winograd split: serial; per-worker blocks (many small blocks);
    /// one block shared by the workers in three phases (a large block budget); several shared
    /// blocks (a small scratch budget).
    static let winogradContexts: [KernelContext] = [
        KernelContext(threads: 1, gemm: .auto),
        KernelContext(threads: 2, minParallelElements: 1, gemm: .auto, winogradBlockTiles: 16),
        KernelContext(threads: 2, minParallelElements: 1, gemm: .auto, winogradBlockTiles: 4096),
        KernelContext(threads: 3, minParallelElements: 1, gemm: .auto, winogradBlockTiles: 4096,
                      winogradScratchBudget: 20_000),
    ]

    /// Shapes for Winograd: edge tiles sticking out (odd sizes), K and C off the microkernel's
    /// multiples, C over one depth slice, frames batched, and the fused epilogue.
    static let winogradCases: [ConvCase] = [
        ConvCase(frames: 1, height: 5, width: 7,
                 params: Conv2DParams(inChannels: 3, outChannels: 5, kernel: (3, 3), padding: (1, 1))),
        ConvCase(frames: 3, height: 13, width: 11,
                 params: Conv2DParams(inChannels: 19, outChannels: 21, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 2, height: 14, width: 14,
                 params: Conv2DParams(inChannels: 300, outChannels: 40, kernel: (3, 3), padding: (1, 1)),
                 bias: false, relu: true),
        ConvCase(frames: 4, height: 28, width: 28,
                 params: Conv2DParams(inChannels: 64, outChannels: 64, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 1, height: 1, width: 1,
                 params: Conv2DParams(inChannels: 8, outChannels: 8, kernel: (3, 3), padding: (1, 1))),
    ]

    /// Runs `weights` on the case under every context; returns the worst relative error against
    /// the float64 oracle (computed on `oracleInput` / `oracleWeight` when given, e.g. rounded).
    static func worstError(_ c: ConvCase, seed: UInt64, contexts: [KernelContext],
                           prepare: (UnsafePointer<Float>, KernelContext) throws -> ConvWeights,
                           round: ((Float) -> Float)? = nil) throws -> Double {
        var rng = SeededRandom(state: seed)
        let p = c.params
        let (oh, ow) = try p.outputSize(height: c.height, width: c.width)
        // Inputs as after a ReLU (non-negative), weights signed: what the network feeds the kernels.
        let x = rng.floats(c.frames * p.inChannels * c.height * c.width, 0, 1)
        let w = rng.floats(p.weightCount, -1, 1)
        let b = rng.floats(p.outChannels, -1, 1)
        let outCount = c.frames * p.outChannels * oh * ow
        let r = rng.floats(outCount, -1, 1)
        let ox = round.map { f in x.map(f) } ?? x, ow8 = round.map { f in w.map(f) } ?? w
        var oracle = [Float](repeating: .nan, count: outCount)
        var worst = 0.0
        try x.withUnsafeBufferPointer { xp in
            try b.withUnsafeBufferPointer { bp in
                try r.withUnsafeBufferPointer { rp in
                    let bias = c.bias ? bp.baseAddress : nil, residual = c.residual ? rp.baseAddress : nil
                    try ox.withUnsafeBufferPointer { oxp in
                        try ow8.withUnsafeBufferPointer { owp in
                            try Kernels.conv2dNaive(oxp.baseAddress!, frames: c.frames, height: c.height, width: c.width,
                                                    weight: owp.baseAddress!, bias: bias, params: p, residual: residual,
                                                    relu: c.relu, output: &oracle)
                        }
                    }
                    try w.withUnsafeBufferPointer { wp in
                        for (ci, context) in contexts.enumerated() {
                            let prepared = try prepare(wp.baseAddress!, context)
                            let need = try Kernels.conv2dScratchCount(prepared, frames: c.frames, height: c.height,
                                                                      width: c.width, context: context)
                            var scratch = [Float](repeating: .nan, count: max(need, 1))
                            var fast = [Float](repeating: .nan, count: outCount)
                            try Kernels.conv2d(xp.baseAddress!, frames: c.frames, height: c.height, width: c.width,
                                               weights: prepared, bias: bias, residual: residual, relu: c.relu,
                                               output: &fast, scratch: &scratch, scratchCount: need, context: context)
                            #expect(!fast.contains { $0.isNaN }, "\(c) context \(ci): output left unwritten")
                            worst = max(worst, maxRelativeError(fast, oracle))
                        }
                    }
                }
            }
        }
        return worst
    }

    /// Winograd against direct float64 convolution. F(2x2) and F(4x4) stay within the parity
    /// bound (1e-5); F(6x6), whose transforms have larger coefficients, within 1e-4.
    @Test(.enabled(if: ownKernel), arguments: [2, 4, 6])
    func winogradMatchesDirectFloat64(tile: Int) throws {
        var worst = 0.0
        for (i, c) in Self.winogradCases.enumerated() {
            let e = try Self.worstError(c, seed: UInt64(100 * tile + i), contexts: Self.winogradContexts) { w, ctx in
                let prepared = try ConvWeights.prepare(w, owner: nil, params: c.params, winograd: .tile(tile), context: ctx)
                #expect(prepared.path == .winograd(tile: tile))
                return prepared
            }
            #expect(e <= (tile == 6 ? 1e-4 : 1e-5), "F(\(tile)x\(tile)) \(c): relative error \(e)")
            worst = max(worst, e)
        }
        print("WINOGRAD F(\(tile)x\(tile)): worst relative error vs float64 direct \(String(format: "%.2e", worst))")
    }

    /// The packed Winograd weights (vectorised, written straight into the panels) equal their
    /// definition bit for bit: U = G g G^T per (output, input) channel pair in float64, rounded once,
    /// each position's [K, C] packed by `cgemm_pack_a`, rows past K +0. Depth slices end mid-way
    /// (kc 64 on 300 channels) and K is off the multiple of 8.
    @Test(arguments: [2, 4, 6]) func winogradWeightTransformMatchesItsDefinition(tile m: Int) throws {
        let a = m + 2
        var g = [Double](repeating: 0, count: a * 3)
        #expect(cgemm_wino_matrices(Int32(m), nil, &g, nil) == 0)
        for (K, C, kc) in [(13, 5, 64), (37, 300, 64), (64, 96, Int(cgemm_get_blocking().kc)), (8, 1, 512)] {
            var rng = SeededRandom(state: UInt64(K * 1000 + C + m))
            let w = (0..<(K * C * 9)).map { _ in Float(rng.uniform(-1, 1)) }
            let mpad = (K + 7) / 8 * 8, plane = mpad * C
            var want = [Float](repeating: .nan, count: a * a * plane)
            var u = [Float](repeating: 0, count: K * C)
            for xi in 0..<(a * a) {
                let (y, x) = (xi / a, xi % a)
                for k in 0..<K {
                    for c in 0..<C {
                        let tap = (k * C + c) * 9
                        let t = (0..<3).map { j in
                            g[y * 3] * Double(w[tap + j]) + g[y * 3 + 1] * Double(w[tap + 3 + j]) + g[y * 3 + 2] * Double(w[tap + 6 + j])
                        }
                        u[k * C + c] = Float(t[0] * g[x * 3] + t[1] * g[x * 3 + 1] + t[2] * g[x * 3 + 2])
                    }
                }
                want.withUnsafeMutableBufferPointer { cgemm_pack_a(K, C, u, C, kc, $0.baseAddress! + xi * plane) }
            }
            var got = [Float](repeating: .nan, count: Int(cgemm_wino_packed_u_floats(Int32(m), K, C)))
            #expect(got.count == want.count)
            #expect(cgemm_wino_pack_u(Int32(m), K, C, w, kc, &got) == 0)
            let differing = zip(got, want).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(differing == 0, "F(\(m)) K \(K) C \(C) kc \(kc): \(differing) of \(got.count) floats differ")
        }
        #expect(cgemm_wino_pack_u(Int32(m), 0, 5, [], 64, nil) == -1)
    }

    /// The transform matrices satisfy the Winograd identity: for a 1-D signal d of alpha values and
    /// a kernel g of 3, A^T ((G g) . (B^T d)) equals the m outputs of the correlation (float64).
    @Test(arguments: [2, 4, 6]) func winogradMatricesComputeACorrelation(tile m: Int) throws {
        let a = m + 2
        var bt = [Double](repeating: 0, count: a * a), g = [Double](repeating: 0, count: a * 3)
        var at = [Double](repeating: 0, count: m * a)
        #expect(cgemm_wino_matrices(Int32(m), &bt, &g, &at) == 0)
        var rng = SeededRandom(state: UInt64(m))
        let d = (0..<a).map { _ in rng.uniform(-1, 1) }, k = (0..<3).map { _ in rng.uniform(-1, 1) }
        let u = (0..<a).map { r in (0..<3).reduce(0.0) { $0 + g[r * 3 + $1] * k[$1] } }
        let v = (0..<a).map { r in (0..<a).reduce(0.0) { $0 + bt[r * a + $1] * d[$1] } }
        for i in 0..<m {
            let y = (0..<a).reduce(0.0) { $0 + at[i * a + $1] * u[$1] * v[$1] }
            let direct = (0..<3).reduce(0.0) { $0 + k[$1] * d[i + $1] }
            #expect(abs(y - direct) <= 1e-12, "F(\(m)) output \(i): \(y) vs \(direct)")
        }
    }

    /// Shapes for the packed GEMM: the stem (7x7 stride 2 on 3 channels), strided 3x3, 1x1 with
    /// few channels, K off the multiple of 8, a depth over several slices, frames batched.
    static let gemmCases: [ConvCase] = [
        ConvCase(frames: 2, height: 37, width: 29,
                 params: Conv2DParams(inChannels: 3, outChannels: 64, kernel: (7, 7), stride: (2, 2), padding: (3, 3)),
                 bias: false, relu: true),
        ConvCase(frames: 3, height: 15, width: 16,
                 params: Conv2DParams(inChannels: 32, outChannels: 29, kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 4, height: 9, width: 9,
                 params: Conv2DParams(inChannels: 32, outChannels: 64, kernel: (1, 1)), residual: true),
        ConvCase(frames: 1, height: 12, width: 10,
                 params: Conv2DParams(inChannels: 700, outChannels: 17, kernel: (1, 1)), relu: true),
        ConvCase(frames: 2, height: 11, width: 13,
                 params: Conv2DParams(inChannels: 67, outChannels: 40, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 6, height: 1, width: 1,
                 params: Conv2DParams(inChannels: 130, outChannels: 174, kernel: (1, 1))),
        // An odd depth (the last bf16 pair half zero) and panels spanning frames of 35 columns.
        ConvCase(frames: 3, height: 5, width: 7,
                 params: Conv2DParams(inChannels: 67, outChannels: 20, kernel: (1, 1)), relu: true),
        // More output channels than one block of rows (MC, 512): B packed whole, once per tile,
        // for a 1x1 and a strided 3x3 layer over several frames.
        ConvCase(frames: 3, height: 5, width: 7,
                 params: Conv2DParams(inChannels: 67, outChannels: 600, kernel: (1, 1)), residual: true),
        ConvCase(frames: 3, height: 9, width: 8,
                 params: Conv2DParams(inChannels: 16, outChannels: 520, kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
                 relu: true),
        // Panels of many short row segments (3 output columns): more tap x segment copies than
        // the per-panel table holds, packed segment by segment.
        ConvCase(frames: 4, height: 5, width: 5,
                 params: Conv2DParams(inChannels: 3, outChannels: 16, kernel: (7, 7), stride: (2, 2), padding: (3, 3))),
    ]

    static let gemmContexts: [KernelContext] = [
        KernelContext(threads: 1, gemm: .auto),
        KernelContext(threads: 2, minGemmColumns: 1, minParallelElements: 1, gemm: .auto),
        KernelContext(threads: 3, minGemmColumns: 1 << 20, minParallelElements: 1, gemm: .auto),
    ]

    /// Weights packed once into the panel layout, then run on every context, against float64.
    @Test(.enabled(if: ownKernel)) func packedGemmMatchesOracle() throws {
        for (i, c) in Self.gemmCases.enumerated() {
            let e = try Self.worstError(c, seed: UInt64(7 + i), contexts: Self.gemmContexts) { w, ctx in
                let prepared = try ConvWeights.prepare(w, owner: nil, params: c.params, context: ctx)
                #expect(prepared.path == .gemm, "\(c): path \(prepared.path)")
                return prepared
            }
            #expect(e <= 1e-5, "packed GEMM \(c): relative error \(e)")
        }
    }

    /// Shapes the direct kernel (B read from zero-padded phase rows) takes: segments of 48 columns
    /// plus narrower tails (45, 100 = 48 + 48 + 4, 33), depths over several slices with a slice
    /// ending mid-channel, a row stride of 2, a 5x3 kernel, rows with every input row outside the
    /// image but one, M off the multiple of 8; stride 2 both ways: the 7x7 stem's geometry on odd
    /// and even sizes, padding 0 and 2, and enough channels that a frame's phase rows are split
    /// in several chunks (70 x 4 phases x 51 columns: 17 rows a chunk, 50 output rows).
    static let directCases: [ConvCase] = [
        ConvCase(frames: 2, height: 6, width: 45,
                 params: Conv2DParams(inChannels: 19, outChannels: 21, kernel: (3, 3), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 1, height: 5, width: 100,
                 params: Conv2DParams(inChannels: 67, outChannels: 64, kernel: (3, 3), padding: (1, 1)),
                 residual: true),
        ConvCase(frames: 3, height: 9, width: 33,
                 params: Conv2DParams(inChannels: 5, outChannels: 8, kernel: (5, 3), stride: (2, 1), padding: (2, 1)),
                 relu: true),
        ConvCase(frames: 2, height: 1, width: 30,
                 params: Conv2DParams(inChannels: 40, outChannels: 12, kernel: (3, 3), padding: (1, 1)),
                 bias: false),
        ConvCase(frames: 1, height: 3, width: 64,
                 params: Conv2DParams(inChannels: 9, outChannels: 3, kernel: (1, 3), padding: (0, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 2, height: 61, width: 63,
                 params: Conv2DParams(inChannels: 3, outChannels: 64, kernel: (7, 7), stride: (2, 2), padding: (3, 3)),
                 relu: true),
        ConvCase(frames: 1, height: 58, width: 64,
                 params: Conv2DParams(inChannels: 5, outChannels: 13, kernel: (5, 5), stride: (2, 2), padding: (0, 0)),
                 residual: true),
        ConvCase(frames: 2, height: 100, width: 100,
                 params: Conv2DParams(inChannels: 70, outChannels: 40, kernel: (3, 3), stride: (2, 2), padding: (1, 1)),
                 residual: true, relu: true),
        ConvCase(frames: 1, height: 9, width: 57,
                 params: Conv2DParams(inChannels: 6, outChannels: 8, kernel: (3, 3), stride: (2, 2), padding: (2, 2)),
                 bias: false),
    ]

    /// The direct kernel against float64 on every context (the tiling splits rows and, with
    /// three workers on one tile, output channels); each case is one it takes.
    @Test(.enabled(if: ownKernel)) func directConvolutionMatchesOracle() throws {
        let kc = Int(cgemm_get_blocking().kc)
        for (i, c) in Self.directCases.enumerated() {
            let p = c.params
            let (_, ow) = try p.outputSize(height: c.height, width: c.width)
            let x = [Float](repeating: 0, count: 1)
            let taken = x.withUnsafeBufferPointer { xp in
                var src = cgemm_src(x: xp.baseAddress, C: p.inChannels, H: c.height, W: c.width, kh: p.kernelH, kw: p.kernelW,
                                    sh: p.strideH, sw: p.strideW, ph: p.padH, pw: p.padW, OW: ow,
                                    f0: 0, fcount: 1, r0: 0, rows: 1)
                return cgemm_conv_is_direct((p.outChannels + 7) / 8 * 8, kc, &src)
            }
            #expect(taken == 1, "\(c): not a direct-kernel shape")
            let e = try Self.worstError(c, seed: UInt64(90 + i), contexts: Self.gemmContexts) { w, ctx in
                let prepared = try ConvWeights.prepare(w, owner: nil, params: p, context: ctx)
                #expect(prepared.path == .gemm, "\(c): path \(prepared.path)")
                return prepared
            }
            #expect(e <= 1e-5, "direct kernel \(c): relative error \(e)")
        }
        // Not taken: stride 3 across, pointwise, more than 64 rows of output channels, short rows.
        let x = [Float](repeating: 0, count: 1)
        x.withUnsafeBufferPointer { xp in
            func direct(kw: Int, sw: Int, pw: Int, rows: Int, ow: Int) -> Int32 {
                var src = cgemm_src(x: xp.baseAddress, C: 8, H: 56, W: 56, kh: kw, kw: kw, sh: sw, sw: sw, ph: pw, pw: pw,
                                    OW: ow, f0: 0, fcount: 1, r0: 0, rows: 1)
                return cgemm_conv_is_direct(rows, kc, &src)
            }
            #expect(direct(kw: 3, sw: 1, pw: 1, rows: 64, ow: 56) == 1)
            #expect(direct(kw: 3, sw: 2, pw: 1, rows: 64, ow: 28) == 1)
            #expect(direct(kw: 3, sw: 3, pw: 1, rows: 64, ow: 28) == 0)
            #expect(direct(kw: 3, sw: 2, pw: 1, rows: 64, ow: 14) == 0)
            #expect(direct(kw: 1, sw: 1, pw: 0, rows: 64, ow: 56) == 0)
            #expect(direct(kw: 3, sw: 1, pw: 1, rows: 72, ow: 56) == 0)
            #expect(direct(kw: 3, sw: 1, pw: 1, rows: 64, ow: 14) == 0)
        }
    }

    /// bfloat16 operands, float32 sums: equal to the float64 convolution of the bf16-rounded input
    /// and weights within float32 summation error.
    @Test(.enabled(if: bf16)) func bfloat16GemmMatchesOracleOfRoundedOperands() throws {
        let round = { (f: Float) in HalfConversion.bfloat16ToFloat(HalfConversion.floatToBFloat16(f)) }
        for (i, c) in Self.gemmCases.enumerated() {
            let e = try Self.worstError(c, seed: UInt64(50 + i), contexts: Self.gemmContexts, prepare: { w, ctx in
                let prepared = try ConvWeights.prepare(w, owner: nil, params: c.params, precision: .bfloat16, context: ctx)
                #expect(prepared.path == .gemmBF16)
                return prepared
            }, round: round)
            #expect(e <= 1e-5, "bf16 GEMM \(c): relative error \(e) against the rounded operands")
            // Against the unrounded operands the error is bfloat16's (8 significant bits).
            let unrounded = try Self.worstError(c, seed: UInt64(50 + i), contexts: [Self.gemmContexts[0]]) { w, ctx in
                try ConvWeights.prepare(w, owner: nil, params: c.params, precision: .bfloat16, context: ctx)
            }
            #expect(unrounded > 1e-6 && unrounded <= 2e-2, "bf16 GEMM \(c): \(unrounded) against float32 operands")
        }
    }

    /// Under bf16 compute the layers the direct kernel takes run its bfloat16 form ("GEMM direct
    /// bf16": channel pairs of padded row copies, weights packed in pairs; odd channel counts
    /// included): equal to the float64 convolution of the rounded operands within float32
    /// summation error, and bfloat16's error against the unrounded ones. The same weights on rows
    /// too short for it run the bf16 GEMM. With AMX the packed GEMM on tiles takes these layers
    /// too (`cgemm_conv_bf16_is_direct`), and the same bounds hold for it.
    @Test(.enabled(if: bf16)) func bfloat16DirectKernelMatchesOracleOfRoundedOperands() throws {
        let round = { (f: Float) in HalfConversion.bfloat16ToFloat(HalfConversion.floatToBFloat16(f)) }
        for (i, c) in Self.directCases.enumerated() {
            var narrow = c
            narrow.width = 9
            for (shape, direct) in [(c, true), (narrow, false)] {
                var described: [String] = []
                let prepare = { (w: UnsafePointer<Float>, ctx: KernelContext) throws -> ConvWeights in
                    let prepared = try ConvWeights.prepare(w, owner: nil, params: c.params, precision: .bfloat16, context: ctx)
                    #expect(prepared.path == .gemmBF16)
                    described.append(prepared.kernelDescription(height: shape.height, width: shape.width))
                    return prepared
                }
                let rounded = try Self.worstError(shape, seed: UInt64(70 + i), contexts: Self.gemmContexts,
                                                  prepare: prepare, round: round)
                let expected = direct && !ComputePrecision.bfloat16OnTiles ? "GEMM direct bf16" : "GEMM bf16"
                #expect(Set(described) == [expected], "\(shape): \(described)")
                #expect(rounded <= 1e-5, "bf16 \(shape): relative error \(rounded) against the rounded operands")
                let unrounded = try Self.worstError(shape, seed: UInt64(70 + i), contexts: [Self.gemmContexts[0]],
                                                    prepare: prepare)
                #expect(unrounded > 1e-6 && unrounded <= 2e-2, "bf16 \(shape): \(unrounded) against float32 operands")
            }
        }
    }

    /// Without AVX512_BF16, asking for bfloat16 is a typed error, not a crash.
    @Test(.enabled(if: !bf16)) func bfloat16IsRefusedWithoutTheInstructions() throws {
        let w = [Float](repeating: 1, count: 8)
        #expect(throws: BLError.self) {
            try ConvWeights.prepare(w, owner: nil, params: Conv2DParams(inChannels: 1, outChannels: 8, kernel: (1, 1)),
                                    precision: .bfloat16, context: .serial)
        }
    }

    /// The automatic policy probes each 3x3 stride-1 layer and keeps a tile only within its bound.
    @Test(.enabled(if: ownKernel)) func automaticPolicyRecordsItsProbe() throws {
        var rng = SeededRandom(state: 3)
        let p = Conv2DParams(inChannels: 64, outChannels: 32, kernel: (3, 3), padding: (1, 1))
        let w = rng.floats(p.weightCount, -0.1, 0.1)
        let auto = try ConvWeights.prepare(w, owner: nil, params: p, winograd: .standard,
                                           context: KernelContext(threads: 1, gemm: .auto))
        #expect(!auto.winogradErrors.isEmpty)
        if case .winograd(let m) = auto.path {
            #expect((auto.winogradErrors[m] ?? 1) <= 1.5e-6)
        } else {
            #expect(auto.path == .gemm && auto.winogradErrors.values.allSatisfy { $0 > 1.5e-6 })
        }
        let strided = try ConvWeights.prepare(w, owner: nil, params: Conv2DParams(inChannels: 64, outChannels: 32, kernel: (3, 3),
                                                                                  stride: (2, 2), padding: (1, 1)),
                                              winograd: .standard, context: KernelContext(threads: 1, gemm: .auto))
        #expect(strided.path == .gemm && strided.winogradErrors.isEmpty)
    }

    /// The probe transforms only the channels it checks: its error equals what the whole layer's
    /// transform gives on those channels (same probe input, float64 direct convolution).
    @Test(.enabled(if: ownKernel)) func probeOfTheCheckedChannelsEqualsTheWholeLayer() throws {
        var rng = SeededRandom(state: 11)
        let p = Conv2DParams(inChannels: 40, outChannels: 37, kernel: (3, 3), padding: (1, 1))
        let w = rng.floats(p.weightCount, -0.2, 0.2)
        let serial = KernelContext(threads: 1, gemm: .auto)
        for m in [2, 4, 6] {
            let probe = try ConvWeights.probeError(w, params: p, tile: m, kc: Int(cgemm_get_blocking().kc))
            // The whole layer, transformed and run on the same 12x12 probe input.
            let whole = try ConvWeights.prepare(w, owner: nil, params: p, winograd: .tile(m), context: serial)
            #expect(whole.path == .winograd(tile: m))
            let s = 12, C = p.inChannels, K = p.outChannels
            var state: UInt64 = 0x2545_f491_4f6c_dd1d
            let x = (0..<(C * s * s)).map { _ -> Float in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Float(state >> 40) / Float(1 << 24)
            }
            var out = [Float](repeating: 0, count: K * s * s)
            let need = try Kernels.conv2dScratchCount(whole, frames: 1, height: s, width: s, context: serial)
            var scratch = [Float](repeating: 0, count: max(need, 1))
            try Kernels.conv2d(x, frames: 1, height: s, width: s, weights: whole, bias: nil, output: &out,
                               scratch: &scratch, scratchCount: need, context: serial)
            let picks = Array(Set((0..<8).map { $0 * K / 8 })).sorted()
            var diff = 0.0, scale = 0.0
            for k in picks {
                for y in 0..<s {
                    for xo in 0..<s {
                        var acc = 0.0  // float64 direct convolution, padding 1
                        for c in 0..<C {
                            for i in 0..<3 where (0..<s).contains(y - 1 + i) {
                                for j in 0..<3 where (0..<s).contains(xo - 1 + j) {
                                    acc += Double(w[((k * C + c) * 3 + i) * 3 + j]) * Double(x[(c * s + y - 1 + i) * s + xo - 1 + j])
                                }
                            }
                        }
                        diff = max(diff, abs(Double(out[(k * s + y) * s + xo]) - acc))
                        scale = max(scale, abs(acc))
                    }
                }
            }
            #expect(probe > 0)
            #expect(abs(probe - diff / scale) <= 1e-3 * probe, "F(\(m)x\(m)): probe \(probe), whole layer \(diff / scale)")
        }
    }
}
