import Foundation
import Testing
@testable import BLCore
@testable import BLEngine
import BLGraph
import BLKernels
import BLTestSupport
import BLVNet

enum EveryOpGraph {
    static let frames = 4, channels = 3

    struct Built {
        var graph: Graph
        var weights: [String: Tensor]
        /// Node ids by role.
        var ids: [String: Int]
    }

    static func make(seed: UInt64 = 7) throws -> Built {
        var g = Graph()
        var rng = SeededRandom(state: seed)
        var weights = [String: Tensor]()
        var ids = [String: Int]()
        func add(_ role: String, _ op: Op, _ inputs: [Int]) -> Int {
            g.declareWeights(of: op)
            let id = g.add(op, inputs, origin: role)
            ids[role] = id
            return id
        }
        func conv(_ role: String, _ x: Int, _ cin: Int, _ cout: Int, k: Int, s: Int = 1, p: Int = 0, groups: Int = 1,
                  bias: Bool = true, relu: Bool = false) -> Int {
            add(role, .conv2d(Conv2D(inChannels: cin, outChannels: cout, kernel: k, stride: s, padding: p,
                                     groups: groups, weight: role + ".weight", bias: bias ? role + ".bias" : nil,
                                     relu: relu)), [x])
        }
        let c = 8
        let input = add("input", .input(frames: frames, channels: channels), [])
        let f = add("frames", .framesFromChannels(frames: frames), [input])
        let stem = conv("stem", f, channels, c, k: 7, s: 2, p: 3, bias: false)
        let bn = add("bn", .batchNorm(BatchNorm(channels: c, module: "bn")), [stem])
        let r = add("relu", .relu, [bn])
        let tam3 = add("tam3", .tam(TAM(duration: frames, channels: c, weights: ["tam3.0", "tam3.1", "tam3.2"])), [r])
        let big = add("big", .selectFrames(period: frames, parity: .big), [tam3])
        let little = add("little", .selectFrames(period: frames, parity: .little), [tam3])
        let b1 = conv("big.conv1", big, c, c, k: 3, s: 2, p: 1, relu: true)
        let b2 = conv("big.conv2", b1, c, c, k: 1)
        let b3 = conv("big.conv3", b1, c, c, k: 3, p: 1, groups: 2)
        let bAdd = add("big.add", .add(relu: true), [b2, b3])
        let up = add("resize", .resizeNearest, [bAdd, little])
        let l1 = conv("little.conv1", little, c, c, k: 3, p: 1, bias: false)
        let lbn = add("little.bn", .batchNorm(BatchNorm(channels: c, module: "little.bn", eps: 1e-3)), [l1])
        let merge = add("merge", .add(relu: true), [up, lbn])
        let tam5 = add("tam5", .tam(TAM(duration: frames / 2, channels: c,
                                        weights: (0..<5).map { "tam5.\($0)" })), [merge])
        let pool = add("pool", .avgPool2d(kernel: 3, stride: 2, padding: 1), [tam5])
        let pool2 = add("pool2", .avgPool2d(kernel: 3, stride: 1, padding: 1), [pool])
        let dup = add("dup", .duplicateFrames, [pool2])
        let side = conv("side", tam3, c, c, k: 3, s: 2, p: 1)
        let sAdd = add("side.add", .add(relu: false), [dup, side])
        let r2 = add("relu2", .relu, [sAdd])
        let joined = add("joined", .add(relu: true), [r2, dup])
        // TAM over duplicated frames whose even/odd frames feed a little/big selection, and a
        // selection of duplicated frames.
        let half = add("half", .selectFrames(period: frames, parity: .big), [joined])
        let dup2 = add("dup2", .duplicateFrames, [half])
        let tamD = add("tamD", .tam(TAM(duration: frames, channels: c, weights: ["tamD.0", "tamD.1", "tamD.2"])), [dup2])
        let sb = add("tamD.big", .selectFrames(period: frames, parity: .big), [tamD])
        let sl = add("tamD.little", .selectFrames(period: frames, parity: .little), [tamD])
        let m2 = add("m2", .add(relu: false), [sb, sl])
        let dup3 = add("dup3", .duplicateFrames, [m2])
        let v = add("view", .selectFrames(period: frames, parity: .little), [dup3])
        let gap = add("gap", .globalAvgPool, [v])
        let fc = add("fc", .linear(Linear(inFeatures: c, outFeatures: 5, weight: "fc.weight", bias: "fc.bias")), [gap])
        let mean = add("mean", .temporalMean(frames: frames / 2), [fc])
        g.output = mean
        g.taps = [Tap(module: "stem", node: stem)]

        for spec in g.weights {
            let n = spec.shape.reduce(1, *)
            var values: [Float]
            if spec.name.hasSuffix("running_var") {
                values = rng.floats(n, 0.5, 2)
            } else if spec.name.hasSuffix("running_mean") {
                values = rng.floats(n, -0.3, 0.3)
            } else if spec.name.hasPrefix("bn.") || spec.name.hasPrefix("little.bn.") {
                values = rng.floats(n, 0.5, 1.5)
            } else {
                let fanIn = spec.shape.count > 1 ? spec.shape.dropFirst().reduce(1, *) : 1
                let bound = Float(1.7 / Double(fanIn).squareRoot())
                values = rng.floats(n, -bound, bound)
            }
            weights[spec.name] = try Tensor.fromFloats(values, shape: spec.shape)
        }
        return Built(graph: g, weights: weights, ids: ids)
    }

    static func input(batch: Int, height: Int, width: Int, seed: UInt64 = 11) throws -> Tensor {
        var rng = SeededRandom(state: seed)
        let n = batch * frames * channels * height * width
        return try Tensor.fromFloats(rng.floats(n, -2, 2), shape: [batch, frames * channels, height, width])
    }
}

/// Random graphs over two spatial sizes, with many consumers per value, long-lived values, chains of
/// in-place candidates and fusion candidates: stresses the memory plan and the fusions.
enum RandomGraph {
    static func make(seed: UInt64) throws -> (Graph, [String: Tensor]) {
        var rng = SeededRandom(state: seed)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        var g = Graph()
        let c = 4, frames = 2
        var full = [Int](), half = [Int]()
        func add(_ op: Op, _ inputs: [Int]) -> Int {
            g.declareWeights(of: op)
            return g.add(op, inputs, origin: "n\(g.nodes.count)")
        }
        let input = add(.input(frames: frames, channels: c), [])
        full.append(add(.framesFromChannels(frames: frames), [input]))
        for _ in 0..<(20 + pick(20)) {
            let useHalf = !half.isEmpty && pick(3) == 0
            let pool = useHalf ? half : full
            // Recent values more often, but any earlier value may be read again.
            let x = pick(2) == 0 ? pool[pool.count - 1] : pool[pick(pool.count)]
            let id = g.nodes.count
            var out: Int
            func tam(_ x: Int) -> Int {
                let k = g.nodes.count
                return add(.tam(TAM(duration: frames, channels: c, weights: ["t\(k).0", "t\(k).1", "t\(k).2"])), [x])
            }
            func select(_ x: Int) -> Int {
                add(.selectFrames(period: frames, parity: pick(2) == 0 ? .big : .little), [x])
            }
            var extra = [Int]()
            switch pick(12) {
            case 9:  // TAM split into big/little selections (unless the TAM gets another reader)
                let t = tam(x)
                let b = add(.selectFrames(period: frames, parity: .big), [t])
                let l = add(.selectFrames(period: frames, parity: .little), [t])
                if pick(3) == 0 { extra.append(t) }
                out = add(.duplicateFrames, [add(.add(relu: pick(2) == 0), [b, l])])
            case 10:  // TAM over duplicated frames
                let d = add(.duplicateFrames, [select(x)])
                if pick(3) == 0 { extra.append(d) }
                out = tam(d)
            case 11:  // selection of duplicated frames: a view
                let d = add(.duplicateFrames, [select(x)])
                if pick(3) == 0 { extra.append(d) }
                out = add(.duplicateFrames, [select(d)])
            case 0, 1:
                let k = pick(2) == 0 ? 3 : 1
                out = add(.conv2d(Conv2D(inChannels: c, outChannels: c, kernel: k, padding: k / 2, weight: "w\(id)",
                                         bias: pick(2) == 0 ? "b\(id)" : nil, relu: pick(3) == 0)), [x])
            case 2: out = add(.relu, [x])
            case 3: out = add(.batchNorm(BatchNorm(channels: c, module: "bn\(id)")), [x])
            case 4, 5: out = add(.add(relu: pick(2) == 0), [x, pool[pick(pool.count)]])
            case 6: out = add(.tam(TAM(duration: frames, channels: c, weights: ["t\(id).0", "t\(id).1", "t\(id).2"])), [x])
            case 7 where !useHalf:
                half.append(add(.avgPool2d(kernel: 3, stride: 2, padding: 1), [x]))
                continue
            default:
                if useHalf {
                    full.append(add(.resizeNearest, [x, full[pick(full.count)]]))
                    continue
                }
                out = add(.relu, [x])
            }
            if useHalf { half += extra + [out] } else { full += extra + [out] }
        }
        let gap = add(.globalAvgPool, [full[full.count - 1]])
        let fc = add(.linear(Linear(inFeatures: c, outFeatures: 3, weight: "fc.w", bias: "fc.b")), [gap])
        g.output = add(.temporalMean(frames: frames), [fc])
        var weights = [String: Tensor]()
        for spec in g.weights {
            let n = spec.shape.reduce(1, *)
            let values = spec.name.hasSuffix("running_var") ? rng.floats(n, 0.5, 1.5) : rng.floats(n, -0.6, 0.6)
            weights[spec.name] = try Tensor.fromFloats(values, shape: spec.shape)
        }
        return (g, weights)
    }
}

@Suite struct EngineTests {
    /// Bound for random graphs: a value can be a few small frames picked out of a larger one (float32
    /// rounding relative to its own maximum reaches ~1e-5); planning or fusion bugs give errors ~1.
    static let randomBound = 1e-4

    @Test func randomGraphsMatchNaiveExecutor() throws {
        var fusedConv = 0, fusedResize = 0, dupTAMs = 0, splits = 0, inPlaceSplits = 0, convRelus = 0, views = 0
        for seed in UInt64(1)...60 {
            let (g, weights) = try RandomGraph.make(seed: seed)
            var rng = SeededRandom(state: seed &* 977)
            let input = try Tensor.fromFloats(rng.floats(1 * 8 * 9 * 11, -1, 1), shape: [1, 8, 9, 11])
            let reference = try NaiveExecutor.run(g, weights: weights, input: input)
            let engine = try Engine(graph: g, weights: weights, context: KernelContext(threads: 2))
            let out = try engine.run(input)
            #expect(engineRelativeError(out.floats(), reference[g.output]) <= EngineTests.randomBound, "seed \(seed)")
            let some = Set(g.nodes.indices.filter { _ in rng.next() % 3 == 0 })
            let (out2, captured) = try engine.run(input, capture: some)
            #expect(engineRelativeError(out2.floats(), reference[g.output]) <= EngineTests.randomBound, "seed \(seed)")
            for id in some {
                #expect(engineRelativeError(captured[id]?.floats() ?? [], reference[id]) <= EngineTests.randomBound, "seed \(seed) \(g.label(id)) depth \(id)")
            }
            let m = try engine.memoryPlan(batch: 1, height: 9, width: 11)
            fusedConv += m.fusedConvAdds
            fusedResize += m.fusedResizeAdds
            dupTAMs += m.fusedDuplicateTAMs
            splits += m.splitTAMs
            inPlaceSplits += m.inPlaceTAMSplits
            convRelus += m.fusedConvRelus
            views += m.views
            for capture in [Set<Int>(), some] {
                let plan = try engine.plan(batch: 1, height: 9, width: 11, capture: capture)
                let issues = EngineTests.memoryIssues(plan, graph: g)
                #expect(issues.isEmpty, "seed \(seed): \(issues.prefix(3))")
            }
        }
        // The generator must actually exercise the fusions.
        #expect(fusedConv > 0 && fusedResize > 0 && dupTAMs > 0 && splits > 0 && views > 40)
        #expect(inPlaceSplits > 0 && inPlaceSplits < splits && convRelus > 0)
        print("random graphs: \(fusedConv) conv+add, \(convRelus) conv+relu, \(fusedResize) resize+add, \(dupTAMs) duplicated-input TAM, \(splits) split TAM fusions (\(inPlaceSplits) in place), \(views) views")
    }


    @Test func everyOpMatchesNaiveExecutor() throws {
        let built = try EveryOpGraph.make()
        let input = try EveryOpGraph.input(batch: 2, height: 33, width: 47)
        let reference = try NaiveExecutor.run(built.graph, weights: built.weights, input: input)
        for threads in [1, 2] {
            let engine = try Engine(graph: built.graph, weights: built.weights, context: KernelContext(threads: threads))
            // Default plan: fusions and in-place steps active.
            let summary = try engine.memoryPlan(batch: 2, height: 33, width: 47)
            #expect(summary.fusedConvAdds == 2)
            #expect(summary.fusedResizeAdds == 1)
            #expect(summary.fusedDuplicateTAMs == 1 && summary.splitTAMs == 1 && summary.views == 2)
            let out = try engine.run(input)
            #expect(out.shape == [2, 5])
            let err = engineRelativeError(out.floats(), reference[built.graph.output])
            #expect(err <= 1e-5, "output rel error \(err) with \(threads) threads")
            var worst = 0.0
            // Every node captured: fusions are undone for captured nodes; every value checked.
            let all = Set(0..<built.graph.nodes.count)
            let (out2, captured) = try engine.run(input, capture: all)
            #expect(engineRelativeError(out2.floats(), reference[built.graph.output]) <= 1e-5)
            #expect(captured.count == built.graph.nodes.count)
            for id in all {
                guard let t = captured[id] else { Issue.record("node \(id) not captured"); continue }
                let dims = try built.graph.inferShapes(batch: 2, height: 33, width: 47)[id]
                #expect(t.shape == dims, "node \(id)")
                let e = engineRelativeError(t.floats(), reference[id])
                #expect(e <= 1e-5, "\(built.graph.label(id)): rel error \(e)")
                worst = max(worst, e)
            }
            print("every-op graph, \(threads) thread(s): output rel error \(err), worst node \(worst), activations \(summary.activationBytes) B (unshared \(summary.unsharedActivationBytes) B), scratch \(summary.scratchBytes) B")
            // A second run reuses the cached plan and arena, and gives the same result.
            let again = try engine.run(input)
            #expect(again.floats() == out.floats())
            engine.releaseMemory()
            #expect(try engine.run(input).floats() == out.floats())
            let times = try engine.profile(input)
            #expect(times["conv2d+add"] != nil && times["resizeNearest+add"] != nil && times["tam"] != nil)
        }
    }

    @Test func selectedCaptureKeepsFusionElsewhere() throws {
        let built = try EveryOpGraph.make()
        let input = try EveryOpGraph.input(batch: 1, height: 20, width: 31, seed: 3)
        let reference = try NaiveExecutor.run(built.graph, weights: built.weights, input: input)
        let engine = try Engine(graph: built.graph, weights: built.weights, context: .serial)
        let wanted: Set<Int> = [built.ids["big.conv3"]!, built.ids["resize"]!, built.ids["relu2"]!]
        let (out, captured) = try engine.run(input, capture: wanted)
        #expect(engineRelativeError(out.floats(), reference[built.graph.output]) <= 1e-5)
        for id in wanted { #expect(engineRelativeError(captured[id]!.floats(), reference[id]) <= 1e-5) }
        // big.conv3 and resize keep their values; the side conv is still fused into its add.
        let plan = try engine.plan(batch: 1, height: 20, width: 31, capture: wanted)
        let kinds = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.node, $0.kind) })
        #expect(kinds[built.ids["side.add"]!] == .convAdd(conv: built.ids["side"]!, residual: built.ids["dup"]!, relu: false))
        #expect(kinds[built.ids["big.conv3"]!] == .node && kinds[built.ids["resize"]!] == .node)
        #expect(kinds[built.ids["merge"]!] == .node)
    }

    @Test func memoryIsSharedAndPlanned() throws {
        let built = try EveryOpGraph.make()
        let engine = try Engine(graph: built.graph, weights: built.weights, context: .serial)
        let s = try engine.memoryPlan(batch: 2, height: 33, width: 47)
        #expect(s.activationBytes < s.unsharedActivationBytes)
        #expect(s.blockCount < s.stepCount)
        #expect(try engine.plannedActivationBytes(batch: 2, height: 33, width: 47) == s.totalBytes)
        // Every pair of values alive at the same time occupies disjoint memory, except a value and
        // its views, and an elementwise result written over an input read for the last time.
        let plan = try engine.plan(batch: 2, height: 33, width: 47, capture: [])
        #expect(EngineTests.memoryIssues(plan, graph: built.graph).isEmpty)
        // A larger input needs a larger arena; plans are cached per size.
        #expect(try engine.plannedActivationBytes(batch: 2, height: 66, width: 94) > s.totalBytes)
    }

    /// bLVNet's stem: its ReLU runs in the convolution's epilogue and the TAM writes the big and
    /// little frames over the stem's output, which sets the arena's size; the plan stays
    /// conflict-free and the engine's logits equal the reference's (ParityTests checks every clip).
    @Test func stemSplitsInPlace() throws {
        let c = try Parity.loadCase(directory: TestData.fixture("mini-a2b4-f4x2"), checkpoint: "model.pth.tar")
        let model = try Parity.importModel(c)
        let (graph, weights) = try GraphPasses.optimize(model.graph, weights: model.weights)
        let engine = try Engine(graph: graph, weights: weights, context: KernelContext(threads: 2))
        let s = try engine.memoryPlan(batch: 2, height: 64, width: 64)
        #expect(s.inPlaceTAMSplits == 1 && s.splitTAMs >= 1 && s.fusedConvRelus >= 1)
        for batch in [1, 2] {
            let plan = try engine.plan(batch: batch, height: 64, width: 64, capture: [])
            #expect(EngineTests.memoryIssues(plan, graph: graph).isEmpty)
            // The stem's output value is the largest; with the split in place the arena holds it
            // and what lives beside it, less than the stem's output plus the two selections.
            let stem = try #require(graph.nodes.first { if case .tam = $0.op { return true }; return false })
            let source = stem.inputs[0]
            #expect(plan.activationFloats < 2 * plan.counts[source])
        }
    }

    /// Independent check of a plan's memory: returns a description of every conflict.
    static func memoryIssues(_ plan: ExecutionPlan, graph g: Graph) -> [String] {
        let n = g.nodes.count
        var defined = [Int](repeating: -1, count: n), lastRead = [Int](repeating: -1, count: n)
        var root = Array(0..<n)
        var valued = [Int]()
        for step in plan.steps {
            for o in step.outputs {
                defined[o] = step.node
                lastRead[o] = step.node
                valued.append(o)
            }
            for x in step.reads { lastRead[x] = max(lastRead[x], step.node) }
            if case .view(let of) = step.kind { root[step.node] = root[of] }
        }
        lastRead[g.output] = n
        var issues = [String]()
        for a in valued {
            for b in valued where a != b && root[a] != root[b] && defined[a] <= defined[b] && (defined[a] < defined[b] || a < b) {
                let ra = plan.offsets[a]..<(plan.offsets[a] + plan.counts[a])
                let rb = plan.offsets[b]..<(plan.offsets[b] + plan.counts[b])
                guard ra.overlaps(rb), defined[b] <= lastRead[a] else { continue }
                let inPlace = defined[b] == lastRead[a] && defined[a] < defined[b] && ra == rb
                // A TAM split written over its source, read for the last time by that step.
                let tamSplit = plan.tamInPlace.contains(defined[b]) && defined[b] == lastRead[a] && defined[a] < defined[b]
                    && rb.lowerBound >= ra.lowerBound && rb.upperBound <= ra.upperBound
                if !inPlace && !tamSplit {
                    issues.append("nodes \(a) (defined \(defined[a]), read until \(lastRead[a])) and \(b) (defined \(defined[b])) overlap")
                }
            }
        }
        return issues
    }

    @Test func unfusedBatchNormAndHalfWeights() throws {
        let built = try EveryOpGraph.make(seed: 21)
        let input = try EveryOpGraph.input(batch: 1, height: 33, width: 47, seed: 5)
        // Store conv/linear weights as float16 and bfloat16: converted at bind or per use, same values
        // as running the float32 values the half tensors hold.
        var halves = [String: Tensor](), asFloat = [String: Tensor]()
        for (i, (name, t)) in built.weights.sorted(by: { $0.key < $1.key }).enumerated() {
            let h = try t.converted(to: i % 2 == 0 ? .float16 : .bfloat16)
            halves[name] = h
            asFloat[name] = try h.converted(to: .float32)
        }
        let reference = try NaiveExecutor.run(built.graph, weights: asFloat, input: input)
        for mode in [WeightConversion.atBind, .perUse] {
            let engine = try Engine(graph: built.graph, weights: halves, context: .serial, weightConversion: mode)
            let out = try engine.run(input)
            let e = engineRelativeError(out.floats(), reference[built.graph.output])
            #expect(e <= 1e-5, "\(mode): rel error \(e)")
        }
    }

    @Test func inputConversionAndRejection() throws {
        let built = try EveryOpGraph.make()
        let engine = try Engine(graph: built.graph, weights: built.weights, context: .serial)
        let input = try EveryOpGraph.input(batch: 1, height: 17, width: 19)
        let out = try engine.run(input).floats()
        // float64 input: converted; same values, same result.
        let f64 = try input.converted(to: .float64)
        #expect(try engine.run(f64).floats() == out)
        // Non-contiguous float32 input (a transposed view of the same logical values).
        let dims = input.shape
        let values = input.floats()
        var transposed = [Float](repeating: 0, count: values.count)  // storage [W, H] per plane
        let (P, H, W) = (dims[0] * dims[1], dims[2], dims[3])
        for p in 0..<P { for y in 0..<H { for x in 0..<W { transposed[(p * W + x) * H + y] = values[(p * H + y) * W + x] } } }
        let storage = ByteStorage(copying: transposed.withUnsafeBytes { Array($0) })
        let view = try Tensor(dtype: .float32, shape: dims, strides: [dims[1] * H * W, H * W, 1, H], storage: storage)
        #expect(try engine.run(view).floats() == out)
        // Integer input: refused.
        let ints = try Tensor.make(dtype: .int32, shape: dims) { _ in }
        #expect { try engine.run(ints) } throws: { e in
            guard let e = e as? BLError else { return false }
            return e.kind == .invalidArgument && e.message.contains("int32")
        }
    }

    @Test func badInputsAreReported() throws {
        let built = try EveryOpGraph.make()
        let engine = try Engine(graph: built.graph, weights: built.weights, context: .serial)
        // Wrong T*C.
        let wrong = try Tensor.fromFloats([Float](repeating: 0, count: 11 * 9 * 9), shape: [1, 11, 9, 9])
        #expect { try engine.run(wrong) } throws: { e in
            guard let e = e as? BLError else { return false }
            return e.kind == .invalidArgument && e.message.contains("12") && e.message.contains("11")
        }
        // NaN / Inf: the first bad element is named.
        var values = try EveryOpGraph.input(batch: 2, height: 9, width: 10).floats()
        values[1 * 12 * 90 + 5 * 90 + 3 * 10 + 7] = .infinity
        values[1 * 12 * 90 + 6 * 90] = .nan
        let bad = try Tensor.fromFloats(values, shape: [2, 12, 9, 10])
        #expect { try engine.run(bad) } throws: { e in
            guard let e = e as? BLError else { return false }
            return e.kind == .numeric && e.message.contains("[1, 5, 3, 7]")
        }
        // Too small for the strides: shape inference's message is passed on.
        var g = Graph()
        let conv = Op.conv2d(Conv2D(inChannels: 2, outChannels: 2, kernel: 3, weight: "w"))
        g.declareWeights(of: conv)
        let i = g.add(.input(frames: 2, channels: 2), [])
        let f = g.add(.framesFromChannels(frames: 2), [i])
        g.output = g.add(conv, [f])
        let small = try Engine(graph: g, weights: ["w": try Tensor.fromFloats([Float](repeating: 0.1, count: 36), shape: [2, 2, 3, 3])])
        let tiny = try Tensor.fromFloats([Float](repeating: 0, count: 4 * 2 * 2), shape: [1, 4, 2, 2])
        var expected = ""
        do { _ = try g.inferShapes(height: 2, width: 2) } catch let e as BLError { expected = e.message }
        #expect(!expected.isEmpty)
        #expect { try small.run(tiny) } throws: { e in (e as? BLError)?.message == expected }
        #expect(try small.run(try Tensor.fromFloats([Float](repeating: 1, count: 4 * 9), shape: [1, 4, 3, 3])).shape == [2, 2, 1, 1])
        // An input whose activations cannot fit in memory is refused before anything is allocated
        // (a broadcast view: one stored float seen as [1, 4, 40000, 40000]).
        let one = ByteStorage(copying: [0, 0, 0x80, 0x3f])
        let broadcast = try Tensor(dtype: .float32, shape: [1, 4, 40000, 40000], strides: [0, 0, 0, 0], storage: one)
        let huge = try small.plannedActivationBytes(batch: 1, height: 40000, width: 40000)
        if UInt64(huge) > ProcessInfo.processInfo.physicalMemory {
            #expect { try small.run(broadcast) } throws: { e in
                (e as? BLError)?.kind == .invalidArgument && (e as? BLError)?.message.contains("GiB") == true
            }
        }
        // Wrong rank and out-of-range capture ids.
        #expect(throws: BLError.self) { try small.run(try Tensor.fromFloats([1, 2, 3, 4], shape: [4])) }
        #expect(throws: BLError.self) { try small.run(tiny, capture: [99]) }
    }

    @Test func weightsAreValidatedAtBind() throws {
        let built = try EveryOpGraph.make()
        var missing = built.weights
        missing["fc.bias"] = nil
        #expect { try Engine(graph: built.graph, weights: missing) } throws: { e in
            (e as? BLError)?.message.contains("fc.bias") == true
        }
        var misshaped = built.weights
        misshaped["stem.weight"] = try Tensor.fromFloats([Float](repeating: 0, count: 8 * 3 * 49), shape: [8, 3, 49])
        #expect { try Engine(graph: built.graph, weights: misshaped) } throws: { e in
            (e as? BLError)?.message.contains("stem.weight") == true
        }
        var ints = built.weights
        ints["fc.weight"] = try Tensor.make(dtype: .int64, shape: [5, 8]) { _ in }
        #expect { try Engine(graph: built.graph, weights: ints) } throws: { e in
            (e as? BLError)?.message.contains("int64") == true
        }
        var negative = built.weights
        negative["bn.running_var"] = try Tensor.fromFloats([Float](repeating: -1, count: 8), shape: [8])
        #expect { try Engine(graph: built.graph, weights: negative) } throws: { e in
            (e as? BLError)?.kind == .numeric
        }
    }
}
