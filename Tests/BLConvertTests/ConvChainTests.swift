import Foundation
import Testing
import BLTestSupport
@testable import BLCore
@testable import BLKernels
@testable import BLEngine
import BLGraph

/// Bottlenecks run frame by frame (`Kernels.convChain`, `StepKind.convChain`) against the float64
/// oracle of the same convolutions one after another, and the engine's plans with and without them.
@Suite struct ConvChainTests {
    static let ownKernel = Gemm.avx512

    /// One chain: 1x1 C0->C1 with ReLU, 3x3 C1->C1 (stride 1 on Winograd F(2x2), or stride 2 on
    /// the GEMM) with ReLU, 1x1 C1->C2, the residual added, then ReLU.
    struct Case: CustomStringConvertible {
        var frames: Int, height: Int, width: Int
        var c0: Int, c1: Int, c2: Int
        var stride: Int
        var bf16 = false
        var description: String { "F\(frames) \(height)x\(width) \(c0)->\(c1)->\(c2) s\(stride)\(bf16 ? " bf16" : "")" }
        var params: [Conv2DParams] {
            [Conv2DParams(inChannels: c0, outChannels: c1, kernel: (1, 1)),
             Conv2DParams(inChannels: c1, outChannels: c1, kernel: (3, 3), stride: (stride, stride), padding: (1, 1)),
             Conv2DParams(inChannels: c1, outChannels: c2, kernel: (1, 1))]
        }
    }

    /// Odd sizes, channel counts off the microkernel's multiples, more frames than workers and
    /// fewer, stride 2 in the middle (as bLVNet's first block of a stage).
    static let cases: [Case] = [
        Case(frames: 3, height: 13, width: 11, c0: 19, c1: 12, c2: 19, stride: 1),
        Case(frames: 5, height: 28, width: 28, c0: 64, c1: 16, c2: 64, stride: 1),
        Case(frames: 4, height: 15, width: 17, c0: 24, c1: 8, c2: 40, stride: 2),
        Case(frames: 1, height: 9, width: 30, c0: 8, c1: 24, c2: 8, stride: 1),
    ]

    static let contexts: [KernelContext] = [
        KernelContext(threads: 1, gemm: .auto),
        KernelContext(threads: 2, minParallelElements: 1, gemm: .auto),
        KernelContext(threads: 3, minParallelElements: 1, gemm: .auto),
    ]

    @Test(.enabled(if: ownKernel)) func chainMatchesTheConvolutionsOneAfterAnother() throws {
        for (n, c) in Self.cases.enumerated() {
            var rng = SeededRandom(state: UInt64(31 + n))
            let ps = c.params
            let x = rng.floats(c.frames * c.c0 * c.height * c.width, 0, 1)
            let ws = ps.map { p in rng.floats(p.weightCount, -Float(1.5 / Double(p.weightCount / p.outChannels).squareRoot()),
                                               Float(1.5 / Double(p.weightCount / p.outChannels).squareRoot())) }
            let bs = ps.map { rng.floats($0.outChannels, -0.5, 0.5) }
            // The oracle: each convolution in float64 sums over all frames, rounded to float between.
            var cur = x, h = c.height, w = c.width
            var residual = [Float]()
            for (i, p) in ps.enumerated() {
                let (oh, ow) = try p.outputSize(height: h, width: w)
                if i == ps.count - 1 { residual = rng.floats(c.frames * p.outChannels * oh * ow, -1, 1) }
                var out = [Float](repeating: .nan, count: c.frames * p.outChannels * oh * ow)
                try Kernels.conv2dNaive(cur, frames: c.frames, height: h, width: w, weight: ws[i], bias: bs[i], params: p,
                                        residual: i == ps.count - 1 ? residual : nil, relu: true, output: &out)
                (cur, h, w) = (out, oh, ow)
            }
            let oracle = cur
            for (ci, context) in Self.contexts.enumerated() {
                let prepared = try ps.enumerated().map { i, p in
                    try ws[i].withUnsafeBufferPointer {
                        try ConvWeights.prepare($0.baseAddress!, owner: nil, params: p,
                                                winograd: i == 1 && c.stride == 1 ? .tile(2) : .off, context: context)
                    }
                }
                #expect(prepared[1].path == (c.stride == 1 ? .winograd(tile: 2) : .gemm), "\(c): \(prepared[1].path)")
                let t = try ConvChainTiling(prepared.map { ChainConv(weights: $0, bias: nil, relu: true) },
                                            frames: c.frames, height: c.height, width: c.width, context: context)
                var scratch = [Float](repeating: .nan, count: t.scratchCount)
                var fast = [Float](repeating: .nan, count: oracle.count)
                try bs[0].withUnsafeBufferPointer { b0 in
                    try bs[1].withUnsafeBufferPointer { b1 in
                        try bs[2].withUnsafeBufferPointer { b2 in
                            let convs = [b0, b1, b2].enumerated().map { i, b in
                                ChainConv(weights: prepared[i], bias: b.baseAddress, relu: true)
                            }
                            try Kernels.convChain(x, frames: c.frames, height: c.height, width: c.width, convs: convs,
                                                  residual: residual, output: &fast, scratch: &scratch,
                                                  scratchCount: t.scratchCount, context: context)
                            // Too little scratch is refused, not overrun.
                            #expect(throws: BLError.self) {
                                try Kernels.convChain(x, frames: c.frames, height: c.height, width: c.width, convs: convs,
                                                      residual: residual, output: &fast, scratch: &scratch,
                                                      scratchCount: t.scratchCount - 1, context: context)
                            }
                        }
                    }
                }
                #expect(!fast.contains { $0.isNaN }, "\(c) context \(ci): output left unwritten")
                let e = maxRelativeError(fast, oracle)
                #expect(e <= 1e-5, "\(c) context \(ci): relative error \(e)")
            }
        }
    }

    /// A chain with a tail: act(ds(y) + c3(c2(c1(x)))), ds a 3x3 stride-2 convolution of another
    /// input y (bLVNet's downsample of the block input), against the float64 oracle.
    @Test(.enabled(if: ownKernel)) func chainWithATailMatchesTheOracle() throws {
        let c = Case(frames: 3, height: 15, width: 17, c0: 24, c1: 8, c2: 40, stride: 2)
        let ds = Conv2DParams(inChannels: 12, outChannels: 40, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        var rng = SeededRandom(state: 77)
        let ps = c.params
        let x = rng.floats(c.frames * c.c0 * c.height * c.width, 0, 1)
        let y = rng.floats(c.frames * 12 * c.height * c.width, 0, 1)
        let ws = (ps + [ds]).map { p in rng.floats(p.weightCount, -0.3, 0.3) }
        let bs = (ps + [ds]).map { rng.floats($0.outChannels, -0.5, 0.5) }
        var cur = x, h = c.height, w = c.width
        for (i, p) in ps.enumerated() {
            let (oh, ow) = try p.outputSize(height: h, width: w)
            var out = [Float](repeating: .nan, count: c.frames * p.outChannels * oh * ow)
            try Kernels.conv2dNaive(cur, frames: c.frames, height: h, width: w, weight: ws[i], bias: bs[i], params: p,
                                    residual: nil, relu: i < ps.count - 1, output: &out)
            (cur, h, w) = (out, oh, ow)
        }
        var oracle = [Float](repeating: .nan, count: cur.count)
        try Kernels.conv2dNaive(y, frames: c.frames, height: c.height, width: c.width, weight: ws[3], bias: bs[3], params: ds,
                                residual: cur, relu: true, output: &oracle)
        for (ci, context) in Self.contexts.enumerated() {
            let prepared = try (ps + [ds]).enumerated().map { i, p in
                try ws[i].withUnsafeBufferPointer { try ConvWeights.prepare($0.baseAddress!, owner: nil, params: p, context: context) }
            }
            var fast = [Float](repeating: .nan, count: oracle.count)
            let biases = bs.map { b in UnsafeMutablePointer<Float>.allocate(capacity: b.count) }
            defer { biases.forEach { $0.deallocate() } }
            for (i, b) in bs.enumerated() { biases[i].initialize(from: b, count: b.count) }
            let convs = (0..<3).map { ChainConv(weights: prepared[$0], bias: biases[$0], relu: $0 < 2) }
            let tailConv = ChainConv(weights: prepared[3], bias: biases[3], relu: true)
            let t = try ConvChainTiling(convs, frames: c.frames, height: c.height, width: c.width,
                                        tail: (tailConv, c.height, c.width), context: context)
            var scratch = [Float](repeating: .nan, count: t.scratchCount)
            try y.withUnsafeBufferPointer { yp in
                let tail = ChainTail(conv: tailConv, input: yp.baseAddress!, height: c.height, width: c.width)
                try Kernels.convChain(x, frames: c.frames, height: c.height, width: c.width, convs: convs, residual: nil,
                                      tail: tail, output: &fast, scratch: &scratch, scratchCount: t.scratchCount, context: context)
                // A tail and a residual together are refused.
                #expect(throws: BLError.self) {
                    try Kernels.convChain(x, frames: c.frames, height: c.height, width: c.width, convs: convs, residual: yp.baseAddress,
                                          tail: tail, output: &fast, scratch: &scratch, scratchCount: t.scratchCount, context: context)
                }
            }
            let e = maxRelativeError(fast, oracle)
            #expect(!fast.contains { $0.isNaN } && e <= 1e-5, "context \(ci): relative error \(e)")
            // A tail whose output does not match the chain's is refused.
            #expect(throws: BLError.self) {
                _ = try ConvChainTiling(convs, frames: c.frames, height: c.height, width: c.width,
                                        tail: (tailConv, c.height + 4, c.width), context: context)
            }
        }
    }

    @Test(.enabled(if: ownKernel)) func mismatchedChainsAreRefused() throws {
        let a = Conv2DParams(inChannels: 8, outChannels: 16, kernel: (1, 1))
        let b = Conv2DParams(inChannels: 12, outChannels: 8, kernel: (1, 1))
        let wa = [Float](repeating: 0.5, count: a.weightCount), wb = [Float](repeating: 0.5, count: b.weightCount)
        let pa = try ConvWeights.prepare(wa, owner: nil, params: a, context: .serial)
        let pb = try ConvWeights.prepare(wb, owner: nil, params: b, context: .serial)
        #expect(throws: BLError.self) {
            _ = try ConvChainTiling([ChainConv(weights: pa, bias: nil, relu: true), ChainConv(weights: pb, bias: nil, relu: false)],
                                    frames: 2, height: 4, width: 4, context: .serial)
        }
        #expect(throws: BLError.self) {
            _ = try ConvChainTiling([ChainConv(weights: pa, bias: nil, relu: true)], frames: 2, height: 4, width: 4, context: .serial)
        }
    }

    /// Two bottlenecks, the second with a downsample convolution on its residual (which the add
    /// absorbs): with chains on, both run frame by frame, the downsample as the second's tail;
    /// results equal the naive executor's with chains on and off, a captured
    /// intermediate value turns its chain off, and the plan stays free of overlaps.
    @Test(.enabled(if: ownKernel)) func engineRunsBottlenecksFrameByFrame() throws {
        var g = Graph()
        func add(_ role: String, _ op: Op, _ inputs: [Int]) -> Int {
            g.declareWeights(of: op)
            return g.add(op, inputs, origin: role)
        }
        func conv(_ role: String, _ x: Int, _ cin: Int, _ cout: Int, k: Int, s: Int = 1, relu: Bool) -> Int {
            add(role, .conv2d(Conv2D(inChannels: cin, outChannels: cout, kernel: k, stride: s, padding: k / 2,
                                     weight: role + ".weight", bias: role + ".bias", relu: relu)), [x])
        }
        let frames = 4
        let input = add("input", .input(frames: frames, channels: 16), [])
        let f = add("frames", .framesFromChannels(frames: frames), [input])
        let a1 = conv("a.conv1", f, 16, 8, k: 1, relu: true)
        let a2 = conv("a.conv2", a1, 8, 8, k: 3, relu: true)
        let a3 = conv("a.conv3", a2, 8, 16, k: 1, relu: false)
        let aAdd = add("a.add", .add(relu: true), [a3, f])
        let b1 = conv("b.conv1", aAdd, 16, 8, k: 1, relu: true)
        let b2 = conv("b.conv2", b1, 8, 8, k: 3, s: 2, relu: true)
        let b3 = conv("b.conv3", b2, 8, 24, k: 1, relu: false)
        let ds = conv("b.down", aAdd, 16, 24, k: 3, s: 2, relu: false)
        let bAdd = add("b.add", .add(relu: true), [b3, ds])
        let gap = add("gap", .globalAvgPool, [bAdd])
        g.output = gap
        var rng = SeededRandom(state: 5)
        var weights = [String: Tensor]()
        for spec in g.weights {
            let n = spec.shape.reduce(1, *)
            let fanIn = spec.shape.count > 1 ? spec.shape.dropFirst().reduce(1, *) : 4
            let bound = Float(1.5 / Double(fanIn).squareRoot())
            weights[spec.name] = try Tensor.fromFloats(rng.floats(n, -bound, bound), shape: spec.shape)
        }
        let x = try Tensor.fromFloats(rng.floats(2 * frames * 16 * 17 * 19, -1, 1), shape: [2, frames * 16, 17, 19])
        let reference = try NaiveExecutor.run(g, weights: weights, input: x)
        var results = [[Float]]()
        for (threads, plane) in [(2, 1), (1, 1), (2, Int.max)] {
            let context = KernelContext(threads: threads, minParallelElements: 1, gemm: .auto, minChainPlane: plane)
            let engine = try Engine(graph: g, weights: weights, context: context)
            let plan = try engine.plan(batch: 2, height: 17, width: 19, capture: [])
            let kinds = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.node, $0.kind) })
            if plane == 1 {
                #expect(kinds[aAdd] == .convChain(convs: [a1, a2, a3], residual: f, tail: nil, relu: true))
                #expect(kinds[bAdd] == .convChain(convs: [b1, b2, b3], residual: aAdd, tail: ds, relu: true))
                #expect(kinds[ds] == nil && plan.offsets[ds] < 0 && plan.offsets[b3] < 0)
                #expect(plan.offsets[a1] < 0 && plan.offsets[b2] < 0)
                #expect(try engine.memoryPlan(batch: 2, height: 17, width: 19).convChains == 2)
            } else {
                #expect(!kinds.values.contains { if case .convChain = $0 { return true } else { return false } })
            }
            #expect(EngineTests.memoryIssues(plan, graph: g).isEmpty)
            let out = try engine.run(x).floats()
            #expect(engineRelativeError(out, reference[g.output]) <= 1e-5, "threads \(threads) plane \(plane)")
            results.append(out)
            // A captured intermediate keeps its value: that chain is off, the other stays on.
            let (out2, captured) = try engine.run(x, capture: [b2])
            #expect(engineRelativeError(captured[b2]?.floats() ?? [], reference[b2]) <= 1e-5)
            #expect(engineRelativeError(out2.floats(), reference[g.output]) <= 1e-5)
            if plane == 1 {
                let p2 = try engine.plan(batch: 2, height: 17, width: 19, capture: [b2])
                #expect(p2.steps.filter { if case .convChain = $0.kind { return true } else { return false } }.map(\.node) == [aAdd])
            }
            // A profile times each convolution of a chain by itself, with its kind.
            let profile = try engine.profileSteps(x)
            let chained = profile.steps.filter { $0.op.hasSuffix("(chain)") }
            #expect(chained.map(\.node) == (plane == 1 ? [a1, a2, aAdd, b1, b2, b3, bAdd] : []))
            // (a.conv1 reads the input frames: the stem by the profile's rule.)
            let profiled = chained.map { ($0.kind ?? "").replacingOccurrences(of: " Winograd", with: "") }
            #expect(profiled == (plane == 1 ? ["stem", "3x3 s1", "1x1", "1x1", "strided", "1x1", "strided"] : []))
            #expect(chained.allSatisfy { $0.seconds > 0 && $0.macs > 0 })
        }
    }
}
