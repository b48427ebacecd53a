import BLCore
import BLGraph
import BLKernels
import Foundation

/// Activation memory of a plan, for reports.
package struct MemoryPlanSummary: Sendable, Equatable {
    /// Bytes of the activation region of the arena (values after sharing).
    package var activationBytes: Int
    /// Bytes of convolution scratch (im2col) plus per-use weight conversion scratch.
    package var scratchBytes: Int
    /// Bytes the values would take if none shared memory.
    package var unsharedActivationBytes: Int
    /// Distinct memory blocks the values were packed into.
    package var blockCount: Int
    /// Steps a run executes (nodes absorbed by a fusion have none).
    package var stepCount: Int
    /// Convolutions fused into a following residual add, and nearest resizes fused into an add.
    package var fusedConvAdds: Int
    package var fusedResizeAdds: Int
    /// Convolutions whose ReLU node runs as their epilogue.
    package var fusedConvRelus: Int
    /// TAM splits written over their source's memory.
    package var inPlaceTAMSplits: Int
    /// TAMs reading a duplicated input without the copy, and TAMs writing the big/little frame
    /// selections directly.
    package var fusedDuplicateTAMs: Int
    package var splitTAMs: Int
    /// Nodes whose value is another's memory (frame reshapes, selections of duplicated frames).
    package var views: Int
    /// Bottlenecks run frame by frame (`Kernels.convChain`; their intermediate values need no
    /// activation memory).
    package var convChains: Int

    /// The whole arena: activations and scratch.
    package var totalBytes: Int { activationBytes + scratchBytes }
}

/// Executes a `Graph` on float32 NCHW tensors with the kernels of `BLKernels`.
///
/// Weights are bound once; per input size (batch, height, width) a plan is made once and cached:
/// each value gets a fixed offset in one arena (values whose lifetimes do not overlap share memory;
/// ReLU, BatchNorm and add run in place when their input dies there), so running allocates nothing
/// per op (only the returned tensors). The plan also fuses, without changing results beyond float
/// rounding: a conv into the residual `add` that is its only reader (conv epilogue), a nearest
/// resize into its `add`, a `duplicateFrames` into the TAM reading it, a TAM into the big/little
/// `selectFrames` pair reading it, and a `selectFrames` of a `duplicateFrames` into a view.
/// Captured nodes are never fused away. A run holds a lock: one engine runs one clip at a time.
package final class Engine: @unchecked Sendable {
    package let graph: Graph
    package let context: KernelContext
    package let weightConversion: WeightConversion
    /// The arithmetic of the convolutions and the linear layer.
    package let precision: ComputePrecision
    /// How 3x3 stride-1 convolutions chose Winograd at bind.
    package let winograd: WinogradPolicy
    let bound: [BoundOp]
    let consumers: [[Int]]
    let defaultFusion: Fusion

    /// What runs change: cached plans and fusions, and the arena. Held for a whole run.
    private struct State {
        var plans: [PlanKey: ExecutionPlan] = [:]
        var fusions: [[Int]: Fusion] = [:]
        var arena: HugePageRegion?
    }
    private let state = Locked(State())

    struct PlanKey: Hashable {
        var batch: Int, height: Int, width: Int
        /// Sorted captured nodes that a fusion could absorb.
        var unfused: [Int]
    }

    /// Binds weights (name -> tensor, any floating dtype) and checks that every weight the graph
    /// declares is present with its shape. Convolution weights are prepared for their kernel
    /// once, here (packed into the GEMM's panels, in bfloat16 with `.bfloat16` precision, or
    /// transformed for Winograd where `winograd` chooses it; see `ConvWeights`; float32 weights
    /// `kernelCache` holds in the form this would compute are used from there instead), on the
    /// context's threads; a float32 weight borrowed from a mapped file is then released from
    /// memory. Other float32 contiguous aligned tensors are used in place (the engine keeps their
    /// storage alive); others are converted to float32 now, except half-precision conv/linear
    /// weights under `.perUse` with float32 precision. Throws `.unsupported` for `.bfloat16` on a
    /// CPU without AVX512_BF16.
    package init(graph: Graph, weights: [String: Tensor], context: KernelContext = .init(),
                weightConversion: WeightConversion = .atBind, precision: ComputePrecision = .float32,
                winograd: WinogradPolicy = .fromEnvironment, kernelCache: [String: CachedConvWeights] = [:]) throws {
        try graph.validateStructure()
        try graph.checkWeights(weights.mapValues { $0.shape })
        try precision.checkAvailable()
        self.graph = graph
        self.context = context
        self.weightConversion = weightConversion
        self.precision = precision
        self.winograd = winograd
        let options = BindOptions(conversion: weightConversion, precision: precision, winograd: winograd,
                                  context: context, cache: kernelCache)
        let nodes = graph.nodes
        let results = Locked([Int: Result<BoundOp, Error>]())
        let next = Locked(0)
        // Convolutions pack (and probe) independently: bind nodes on the context's threads.
        DispatchQueue.concurrentPerform(iterations: max(1, min(context.threads, nodes.count))) { _ in
            while true {
                let i = next.withLock { v -> Int in v += 1; return v - 1 }
                guard i < nodes.count else { return }
                let r = Result { try BoundOp.bind(nodes[i], tensors: weights, options: options) }
                results.withLock { $0[i] = r }
            }
        }
        self.bound = try results.withLock { r in
            try (0..<nodes.count).map { i in
                guard let bound = r[i] else { throw BLError.invariant("node \(i) was not bound") }
                return try bound.get()
            }
        }
        consumers = graph.consumers()
        defaultFusion = Fusion(graph: graph, bound: bound, consumers: consumers, keep: [])
    }

    /// Runs a clip `[N, T*C, H, W]` (float32; float64/float16/bfloat16 are converted). Returns the
    /// output tensor (`[N, classes]` float32 for a classifier).
    package func run(_ input: Tensor) throws -> Tensor {
        try run(input, capture: []).output
    }

    /// Same, also returning copies of the values of the nodes `capture` names.
    package func run(_ input: Tensor, capture: Set<Int>) throws -> (output: Tensor, captured: [Int: Tensor]) {
        var unused: [StepTiming]? = nil
        return try run(input, capture: capture, timings: &unused)
    }

    private func run(_ input: Tensor, capture: Set<Int>, timings: inout [StepTiming]?) throws -> (output: Tensor, captured: [Int: Tensor]) {
        for id in capture where id < 0 || id >= graph.nodes.count {
            throw BLError(.invalidArgument, "cannot capture node \(id): the graph has \(graph.nodes.count) nodes")
        }
        let x = try Engine.float32Input(input)
        guard x.rank == 4 else {
            throw BLError(.invalidArgument, "input has shape \(x.shape); expected [N, T*C, H, W]")
        }
        let (n, channels) = (x.shape[0], x.shape[1])
        if let layout = graph.inputLayout, channels != layout.frames * layout.channels {
            throw BLError(.invalidArgument,
                          "input has \(channels) channels; the model expects T*C = \(layout.frames)*\(layout.channels) = \(layout.frames * layout.channels) (shape \(x.shape))")
        }
        guard n > 0 else { throw BLError(.invalidArgument, "input batch is empty (shape \(x.shape))") }
        return try state.withLock { state in
            try run(x, capture: capture, timings: &timings, state: &state)
        }
    }

    private func run(_ x: Tensor, capture: Set<Int>, timings: inout [StepTiming]?,
                     state: inout State) throws -> (output: Tensor, captured: [Int: Tensor]) {
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let plan = try plan(batch: n, height: h, width: w, capture: capture, state: &state)
        let base = try arenaPointer(floats: plan.totalFloats, state: &state)
        try x.withContiguousBytes { raw in
            guard let src = raw.baseAddress, raw.count == plan.counts[0] * 4 else {
                throw BLError(.invalidArgument, "input of shape \(x.shape) does not match the plan")
            }
            UnsafeMutableRawPointer(base + plan.offsets[0]).copyMemory(from: src, byteCount: raw.count)
        }
        try Engine.checkFinite(base + plan.offsets[0], dims: plan.dims[0])
        context.activate()
        var captured = [Int: Tensor]()
        for step in plan.steps {
            if case let .convChain(chain, _, tail, _) = step.kind, timings != nil {
                // One timing per convolution: the step's wall time split as the workers' time was.
                let convs = chain + (tail.map { [$0] } ?? [])
                let split = Locked([Double](repeating: 0, count: convs.count))
                let seconds = try MonotonicClock.measure { try execute(step, plan: plan, base: base, chainSeconds: split) }.seconds
                let parts = split.withLock { $0 }, total = parts.reduce(0, +)
                for (i, c) in convs.enumerated() {
                    let share = total > 0 ? parts[i] / total : 1 / Double(convs.count)
                    timings?.append(stepTiming(step, plan: plan, seconds: seconds * share, chainConv: c))
                }
            } else if timings != nil {
                let seconds = try MonotonicClock.measure { try execute(step, plan: plan, base: base) }.seconds
                timings?.append(stepTiming(step, plan: plan, seconds: seconds))
            } else {
                try execute(step, plan: plan, base: base)
            }
            for o in step.outputs where capture.contains(o) {
                captured[o] = try copyOut(o, plan: plan, base: base)
            }
        }
        return (try copyOut(graph.output, plan: plan, base: base), captured)
    }

    /// Runs `input` once and returns the time spent per kind of step, in seconds, keyed by op name
    /// (`conv2d+add` and `resizeNearest+add` for fused steps). For benchmarks.
    package func profile(_ input: Tensor) throws -> [String: Double] {
        try profileSteps(input).secondsByOp
    }

    /// Runs `input` once and returns the time of every step (in run order) with its work, and the
    /// sums per kind of step. For benchmarks.
    package func profileSteps(_ input: Tensor) throws -> EngineProfile {
        var times: [StepTiming]? = []
        _ = try run(input, capture: [], timings: &times)
        return EngineProfile(steps: times ?? [])
    }

    /// The timing record of one executed step: its name, the nodes it computes and their MACs.
    /// For a chain, the record of its convolution `chainConv` (the last one with the `add`).
    private func stepTiming(_ step: Step, plan: ExecutionPlan, seconds: Double, chainConv: Int? = nil) -> StepTiming {
        let name: String
        var nodes = [step.node]
        switch step.kind {
        case .node, .view:
            name = graph.nodes[step.node].op.name
        case let .convAdd(c, _, _):
            name = "conv2d+add"
            nodes = [c, step.node]
        case let .convRelu(c):
            name = "conv2d+relu"
            nodes = [c, step.node]
        case let .convChain(convs, _, tail, _):
            let last = chainConv == (tail ?? convs.last)
            name = last ? "conv2d+add (chain)" : "conv2d (chain)"
            nodes = last ? [chainConv ?? step.node, step.node] : [chainConv ?? step.node]
        case let .resizeAdd(z, _, _):
            name = "resizeNearest+add"
            nodes = [z, step.node]
        case let .tam(_, duplicated, even, odd):
            name = (duplicated ? "duplicateFrames+" : "") + "tam" + (even != nil ? "+selectFrames" : "")
            nodes = [step.node] + [even, odd].compactMap { $0 }
        }
        var macs = 0
        var detail = ""
        var kind: String? = nil, path: String? = nil
        for id in nodes {
            let dims = plan.dims[id]
            switch bound[id] {
            case let .conv(p, w, _, _):
                let input = graph.nodes[id].inputs[0]
                if case .framesFromChannels = graph.nodes[input].op {
                    kind = "stem"
                } else if p.kernelH == 1 && p.kernelW == 1 && p.strideH == 1 && p.strideW == 1 {
                    kind = "1x1"
                } else if p.strideH > 1 || p.strideW > 1 {
                    kind = "strided"
                } else if p.kernelH == 3 && p.kernelW == 3 {
                    kind = "3x3 s1"
                } else {
                    kind = "other"
                }
                if case .prepared(let cw) = w {
                    let x = plan.dims[graph.nodes[id].inputs[0]]
                    path = cw.kernelDescription(height: x[2], width: x[3])
                    if case .winograd = cw.path { kind = (kind ?? "") + " Winograd" }
                }
                // MACs: output elements x (C/groups) x kh x kw.
                let outCount = plan.counts[id]
                macs += outCount * (p.inChannels / max(p.groups, 1)) * p.kernelH * p.kernelW
                let x = plan.dims[graph.nodes[id].inputs[0]]
                detail = "\(p.inChannels)->\(p.outChannels) k\(p.kernelH)x\(p.kernelW) s\(p.strideH)"
                    + (p.groups > 1 ? " g\(p.groups)" : "") + " \(x[0])x\(x[2])x\(x[3])"
            case let .tam(_, blending, _):
                macs += plan.counts[id] * blending
                detail = dims.map(String.init).joined(separator: "x")
            case let .linear(w, _, inF, outF):
                macs += (dims.first ?? 0) * inF * outF
                detail = "\(inF)->\(outF)"
                kind = "linear"
                if case .prepared(let cw) = w { path = cw.path.description }
            default:
                if detail.isEmpty { detail = dims.map(String.init).joined(separator: "x") }
            }
        }
        if case .convChain = step.kind, let p = path { path = p + ", frame by frame" }
        let origin = (nodes.first { graph.nodes[$0].origin != nil }).flatMap { graph.nodes[$0].origin }
        return StepTiming(node: nodes.last ?? step.node, nodes: nodes, op: name, seconds: seconds, macs: macs,
                          origin: origin, detail: detail, kind: kind, path: path)
    }

    /// How one convolution (or linear layer) was prepared at bind.
    package struct LayerPath: Sendable, Equatable {
        package var node: Int
        package var origin: String?
        package var params: Conv2DParams
        package var path: ConvWeights.Path
        /// Probe errors of the Winograd tiles tried (tile -> relative error).
        package var winogradErrors: [Int: Double]
        /// Bytes of the packed (or transformed) weights.
        package var packedBytes: Int
        /// Whether they came from a kernel cache instead of being packed at bind.
        package var fromCache: Bool = false
    }

    /// The float32 convolution weights a kernel cache can store, by weight name (see
    /// `CachedConvWeights`): GEMM and Winograd layers only.
    package var cacheableWeights: [(name: String, weights: CachedConvWeights)] {
        graph.nodes.compactMap { node -> (name: String, weights: CachedConvWeights)? in
            guard case .conv2d(let c) = node.op, case .conv(_, .prepared(let cw), _, _) = bound[node.id],
                  let entry = cw.cacheEntry else { return nil }
            return (c.weight, entry)
        }
    }

    /// The kernel path of every convolution and linear layer, in graph order.
    package var layerPaths: [LayerPath] {
        graph.nodes.compactMap { node -> LayerPath? in
            let w: ConvWeights
            switch bound[node.id] {
            case .conv(_, .prepared(let cw), _, _): w = cw
            case .linear(.prepared(let cw), _, _, _): w = cw
            default: return nil
            }
            return LayerPath(node: node.id, origin: node.origin, params: w.params, path: w.path,
                             winogradErrors: w.winogradErrors, packedBytes: w.packedBytes, fromCache: w.fromCache)
        }
    }

    /// Bytes of the arena (activations and scratch) planned for an input of `batch` clips of
    /// `height` x `width`.
    package func plannedActivationBytes(batch: Int, height: Int, width: Int) throws -> Int {
        try memoryPlan(batch: batch, height: height, width: width).totalBytes
    }

    /// Details of the memory plan for an input size.
    package func memoryPlan(batch: Int, height: Int, width: Int) throws -> MemoryPlanSummary {
        let p = try state.withLock { try plan(batch: batch, height: height, width: width, capture: [], state: &$0) }
        var convAdds = 0, convRelus = 0, resizeAdds = 0, dupTAMs = 0, splits = 0, views = 0, chains = 0
        for s in p.steps {
            switch s.kind {
            case .convAdd: convAdds += 1
            case .convRelu: convRelus += 1
            case .convChain: chains += 1
            case .resizeAdd: resizeAdds += 1
            case let .tam(_, duplicated, even, _):
                if duplicated { dupTAMs += 1 }
                if even != nil { splits += 1 }
            case .view: views += 1
            case .node: break
            }
        }
        return MemoryPlanSummary(activationBytes: p.activationFloats * 4,
                                 scratchBytes: (p.convScratchFloats + p.weightScratchFloats) * 4,
                                 unsharedActivationBytes: p.unsharedFloats * 4, blockCount: p.blockCount,
                                 stepCount: p.steps.count, fusedConvAdds: convAdds, fusedResizeAdds: resizeAdds, fusedConvRelus: convRelus,
                                 inPlaceTAMSplits: p.tamInPlace.count,
                                 fusedDuplicateTAMs: dupTAMs, splitTAMs: splits, views: views, convChains: chains)
    }

    /// Frees the arena and forgets the cached plans (the next run plans and allocates again).
    package func releaseMemory() {
        state.withLock { $0 = State() }
    }

    // MARK: - Plans and arena

    /// The cached plan for a size; captured nodes that a fusion would remove are kept unfused.
    private func plan(batch: Int, height: Int, width: Int, capture: Set<Int>, state: inout State) throws -> ExecutionPlan {
        // Captured nodes must keep their values: no fusion may absorb them.
        let unfused = capture.filter { Fusion.mayBeAbsorbed(bound[$0]) }.sorted()
        let key = PlanKey(batch: batch, height: height, width: width, unfused: unfused)
        if let p = state.plans[key] { return p }
        let fusion: Fusion
        if unfused.isEmpty {
            fusion = defaultFusion
        } else if let f = state.fusions[unfused] {
            fusion = f
        } else {
            fusion = Fusion(graph: graph, bound: bound, consumers: consumers, keep: Set(unfused))
            state.fusions[unfused] = fusion
        }
        let p = try ExecutionPlan(graph: graph, bound: bound, fusion: fusion, batch: batch, height: height,
                                  width: width, context: context)
        state.plans[key] = p
        return p
    }

    /// The plan for a size (for tests and reports).
    func plan(batch: Int, height: Int, width: Int, capture: Set<Int>) throws -> ExecutionPlan {
        try state.withLock { try plan(batch: batch, height: height, width: width, capture: capture, state: &$0) }
    }

    /// The arena, grown (never shrunk) to at least `floats`.
    private func arenaPointer(floats: Int, state: inout State) throws -> UnsafeMutablePointer<Float> {
        let floats = max(floats, 16)
        let (bytes, overflow) = floats.multipliedReportingOverflow(by: 4)
        guard !overflow else { throw BLError(.invalidArgument, "activation memory of \(floats) floats overflows") }
        if let a = state.arena, a.count >= bytes { return a.base.assumingMemoryBound(to: Float.self) }
        state.arena = nil
        let physical = ProcessInfo.processInfo.physicalMemory
        guard UInt64(bytes) <= physical else {
            throw BLError(.invalidArgument, String(format: "this input needs %.1f GiB of activation memory, more than the machine's %.1f GiB; use a smaller input",
                                                   Double(bytes) / 1073741824, Double(physical) / 1073741824))
        }
        // Huge pages (kernels in THP `madvise` mode give none otherwise): a first run then takes
        // about 4k page faults instead of 21k on R50.
        guard let region = HugePageRegion(count: bytes) else {
            throw BLError(.invalidArgument, String(format: "could not map %.1f MiB of activation memory", Double(bytes) / 1048576))
        }
        state.arena = region
        return region.base.bindMemory(to: Float.self, capacity: floats)
    }

    private func copyOut(_ node: Int, plan: ExecutionPlan, base: UnsafeMutablePointer<Float>) throws -> Tensor {
        let count = plan.counts[node], offset = plan.offsets[node]
        guard offset >= 0 else { throw BLError(.invalidArgument, "node \(node) has no value of its own (fused)") }
        return try Tensor.make(dtype: .float32, shape: plan.dims[node]) { dst in
            if count > 0 { dst.copyMemory(from: UnsafeRawBufferPointer(start: base + offset, count: count * 4)) }
        }
    }

    // MARK: - Input

    /// The input as float32: float32 as is, other floating dtypes converted, anything else refused.
    static func float32Input(_ t: Tensor) throws -> Tensor {
        if t.dtype == .float32 { return t }
        guard t.dtype.isFloatingPoint else {
            throw BLError(.invalidArgument, "input has dtype \(t.dtype.torchName); expected a floating-point tensor (float32)")
        }
        return try t.converted(to: .float32)
    }

    /// Throws `.numeric` naming the first NaN or infinite element.
    static func checkFinite(_ p: UnsafePointer<Float>, dims: [Int]) throws {
        let count = dims.reduce(1, *)
        var i = 0
        while i < count {
            if !p[i].isFinite { break }
            i += 1
        }
        guard i < count else { return }
        var index = [Int](repeating: 0, count: dims.count)
        var rest = i
        for d in stride(from: dims.count - 1, through: 0, by: -1) where dims[d] > 0 {
            index[d] = rest % dims[d]
            rest /= dims[d]
        }
        throw BLError(.numeric, "input element \(index) (flat index \(i)) is \(p[i]); inputs must be finite",
                      detail: .nonFiniteInput(index: index, value: p[i]))
    }

    // MARK: - Steps

    /// One convolution with its bound weights: prepared (the kernel they were prepared for), or
    /// converted per use into the weight scratch (im2col path).
    private func conv(_ input: UnsafeMutablePointer<Float>, dims d: [Int], params p: Conv2DParams, weight w: WeightRef,
                      bias: FloatData?, residual: UnsafeMutablePointer<Float>?, relu: Bool,
                      output: UnsafeMutablePointer<Float>, plan: ExecutionPlan, base: UnsafeMutablePointer<Float>) throws {
        let convScratch = plan.convScratchFloats > 0 ? base + plan.convScratchOffset : nil
        let residual = residual.map { UnsafePointer($0) }
        switch w {
        case .prepared(let cw):
            try Kernels.conv2d(input, frames: d[0], height: d[2], width: d[3], weights: cw, bias: bias?.pointer,
                               residual: residual, relu: relu, output: output, scratch: convScratch,
                               scratchCount: plan.convScratchFloats, context: context)
        case .ready, .deferred:
            let weightScratch = plan.weightScratchFloats > 0 ? base + plan.weightScratchOffset : nil
            try Kernels.conv2dIm2col(input, frames: d[0], height: d[2], width: d[3],
                                     weight: try w.resolve(scratch: weightScratch, context: context), bias: bias?.pointer,
                                     params: p, residual: residual, relu: relu, output: output,
                                     scratch: convScratch, scratchCount: plan.convScratchFloats, context: context)
        }
    }

    private func execute(_ step: Step, plan: ExecutionPlan, base: UnsafeMutablePointer<Float>,
                         chainSeconds: Locked<[Double]>? = nil) throws {
        let id = step.node
        let node = graph.nodes[id]
        /// The arena memory of node `x`'s value; a node without one (absorbed by a fusion, or
        /// never planned) is a broken plan, reported rather than written at the arena base.
        func value(_ x: Int) throws -> UnsafeMutablePointer<Float> {
            guard x >= 0, x < plan.offsets.count, plan.offsets[x] >= 0 else {
                throw BLError.invariant("node \(x) (read or written by step \(id), \(node.op.name)) has no memory in the plan")
            }
            return base + plan.offsets[x]
        }
        func mismatch(_ n: Int) -> BLError {
            BLError.invariant("step \(id): the weights bound to node \(n) do not match its op \(graph.nodes[n].op.name)")
        }
        let convScratch = plan.convScratchFloats > 0 ? base + plan.convScratchOffset : nil
        let weightScratch = plan.weightScratchFloats > 0 ? base + plan.weightScratchOffset : nil

        switch step.kind {
        case let .convAdd(c, r, relu):
            guard case let .conv(p, w, bias, _) = bound[c] else { throw mismatch(c) }
            let xin = graph.nodes[c].inputs[0], d = plan.dims[xin]
            try conv(value(xin), dims: d, params: p, weight: w, bias: bias, residual: value(r), relu: relu,
                     output: value(id), plan: plan, base: base)
            return
        case let .convChain(convs, r, tail, relu):
            let chain = Fusion.Chain(add: id, convs: convs, residual: r, tail: tail, relu: relu)
            let steps = try convs.map { try Fusion.chainConv($0, of: chain, bound: bound) }
            let xin = graph.nodes[convs[0]].inputs[0], d = plan.dims[xin], rd = plan.dims[r]
            let side = try tail.map { ChainTail(conv: try Fusion.chainConv($0, of: chain, bound: bound), input: try value(r),
                                                 height: rd[2], width: rd[3]) }
            try Kernels.convChain(value(xin), frames: d[0], height: d[2], width: d[3], convs: steps,
                                  residual: tail == nil ? value(r) : nil, tail: side, output: value(id), scratch: convScratch,
                                  scratchCount: plan.convScratchFloats, threadSeconds: chainSeconds, context: context)
            return
        case let .convRelu(c):
            guard case let .conv(p, w, bias, _) = bound[c] else { throw mismatch(c) }
            let xin = graph.nodes[c].inputs[0], d = plan.dims[xin]
            try conv(value(xin), dims: d, params: p, weight: w, bias: bias, residual: nil, relu: true,
                     output: value(id), plan: plan, base: base)
            return
        case let .resizeAdd(z, a, relu):
            let xin = graph.nodes[z].inputs[0], d = plan.dims[xin], o = plan.dims[id]
            try Kernels.resizeNearest(value(xin), planes: d[0] * d[1], inHeight: d[2], inWidth: d[3],
                                      outHeight: o[2], outWidth: o[3], addend: value(a), relu: relu,
                                      output: value(id), context: context)
            return
        case let .tam(source, duplicated, even, odd):
            guard case let .tam(weights, b, duration) = bound[id] else { throw mismatch(id) }
            let d = plan.dims[id]
            // A TAM split into the big/little selections writes them and has no value of its own;
            // planned in place, it writes them over its source.
            let output = try even.map(value) ?? value(id)
            let inPlace = plan.tamInPlace.contains(id)
            try Kernels.tam(value(source), clips: d[0] / duration, framesPerClip: duration, channels: d[1],
                            height: d[2], width: d[3], weights: weights.pointer, blending: b,
                            inputDuplicated: duplicated, output: output,
                            oddOutput: try odd.map(value),
                            inPlaceScratch: inPlace ? convScratch : nil,
                            scratchCount: inPlace ? plan.convScratchFloats : 0, context: context)
            return
        case .view:
            return
        case .node:
            break
        }

        let d = node.inputs.isEmpty ? [] : plan.dims[node.inputs[0]]
        switch bound[id] {
        case .input, .alias:
            return
        case let .conv(p, w, bias, relu):
            try conv(value(node.inputs[0]), dims: d, params: p, weight: w, bias: bias, residual: nil, relu: relu,
                     output: value(id), plan: plan, base: base)
        case let .scaleShift(scale, shift):
            try Kernels.scaleShift(value(node.inputs[0]), planes: d[0] * d[1], channels: d[1], planeSize: d[2] * d[3],
                                   scale: scale.pointer, shift: shift.pointer, output: value(id), context: context)
        case .relu:
            try Kernels.relu(value(node.inputs[0]), count: plan.counts[id], output: value(id), context: context)
        case .add(let relu):
            try Kernels.add(value(node.inputs[0]), value(node.inputs[1]), count: plan.counts[id], relu: relu,
                        output: value(id), context: context)
        case let .avgPool(k, s, pad):
            if k == 3 && s == 2 && pad == 1 {
                try Kernels.avgPool3x3s2p1(value(node.inputs[0]), planes: d[0] * d[1], height: d[2], width: d[3],
                                           output: value(id), context: context)
            } else {
                let o = plan.dims[id]
                try Kernels.avgPool(value(node.inputs[0]), planes: d[0] * d[1], height: d[2], width: d[3],
                                    kernel: k, stride: s, padding: pad, outHeight: o[2], outWidth: o[3],
                                    output: value(id), context: context)
            }
        case .resizeNearest:
            let o = plan.dims[id]
            try Kernels.resizeNearest(value(node.inputs[0]), planes: d[0] * d[1], inHeight: d[2], inWidth: d[3],
                                      outHeight: o[2], outWidth: o[3], output: value(id), context: context)
        case let .tam(weights, b, duration):
            try Kernels.tam(value(node.inputs[0]), clips: d[0] / duration, framesPerClip: duration, channels: d[1],
                            height: d[2], width: d[3], weights: weights.pointer, blending: b, output: value(id),
                            context: context)
        case let .selectFrames(period, parity):
            try Kernels.selectFrames(value(node.inputs[0]), clips: d[0] / period, framesPerClip: period,
                                     frameSize: d[1] * d[2] * d[3], parity: parity, output: value(id))
        case .duplicateFrames:
            try Kernels.duplicateFrames(value(node.inputs[0]), frames: d[0], frameSize: d[1] * d[2] * d[3], output: value(id))
        case .globalAvgPool:
            try Kernels.globalAvgPool(value(node.inputs[0]), planes: d[0] * d[1], height: d[2], width: d[3],
                                      output: value(id), context: context)
        case let .linear(w, bias, inF, outF):
            if case .prepared(let cw) = w {
                // [rows, In] as rows frames of [In, 1, 1] (bfloat16 compute).
                try Kernels.conv2d(value(node.inputs[0]), frames: d[0], height: 1, width: 1, weights: cw,
                                   bias: bias.pointer, output: value(id), scratch: convScratch,
                                   scratchCount: plan.convScratchFloats, context: context)
            } else {
                try Kernels.linear(value(node.inputs[0]), rows: d[0], inFeatures: inF, outFeatures: outF,
                                   weight: try w.resolve(scratch: weightScratch, context: context), bias: bias.pointer,
                                   output: value(id))
            }
        case .temporalMean(let frames):
            try Kernels.temporalMean(value(node.inputs[0]), clips: d[0] / frames, framesPerClip: frames,
                                     features: d[1], output: value(id))
        }
    }
}
