import BLCore
import BLGraph
import BLKernels

/// What one step of a plan computes.
enum StepKind: Equatable {
    /// The node's own op.
    case node
    /// An `add` node computed as the epilogue of the convolution `conv` (which gets no step of its own):
    /// `act(conv(x) + residual)`.
    case convAdd(conv: Int, residual: Int, relu: Bool)
    /// A `relu` node computed as the epilogue of the convolution `conv` (no step of its own).
    case convRelu(conv: Int)
    /// An `add` node computed by the nearest resize `resize` with `addend` fused in:
    /// `act(resize(x) + addend)`.
    case resizeAdd(resize: Int, addend: Int, relu: Bool)
    /// A `tam` node reading `source`: its own input, or, when `duplicated`, the input of the
    /// `duplicateFrames` that fed it (read twice per frame, no copy). With `even`/`odd`, the step
    /// writes the little-branch (`selectFrames .little`) and big-branch (`selectFrames .big`)
    /// frames straight into those two nodes' values and the TAM node has no value of its own.
    case tam(source: Int, duplicated: Bool, even: Int?, odd: Int?)
    /// An `add` node computed by the chain of convolutions `convs` run frame by frame, the last
    /// one adding `residual` (see `Kernels.convChain`); with `tail`, the convolution `tail` of
    /// `residual` (a downsample) adds the chain's result instead. The convolutions get no steps
    /// and the intermediate values no memory of their own.
    case convChain(convs: [Int], residual: Int, tail: Int?, relu: Bool)
    /// A node whose value is the value of `of` (no work): `framesFromChannels`, and `selectFrames`
    /// of a `duplicateFrames` (either parity gives back the frames that were duplicated).
    case view(of: Int)
}

/// One step, run at the position of `node` in the graph's order.
struct Step {
    let node: Int
    let kind: StepKind
    /// Nodes whose values the step writes.
    let outputs: [Int]
    /// Nodes whose values the step reads.
    let reads: [Int]
}

/// The fusions a graph allows, decided from its structure alone (not the input size).
struct Fusion {
    /// Step kind per node; nodes absent here run their own op.
    var kinds: [Int: StepKind] = [:]
    /// Nodes that get no step of their own (computed inside another node's step).
    var absorbed = Set<Int>()

    /// A bottleneck the plan may run frame by frame (`StepKind.convChain`): convolutions
    /// `convs` (each the only reader of the one before, the first two with their ReLU) ending in
    /// the `add` node with `residual`, or with the convolution `tail` of `residual` when the
    /// `add` had absorbed that one (a downsample). Whether it runs so depends on the input size
    /// (see `ExecutionPlan`), so it is not applied here.
    struct Chain {
        let add: Int
        let convs: [Int]
        let residual: Int
        let tail: Int?
        let relu: Bool
    }
    var chains = [Chain]()

    /// Convolution `c` of `chain` as the kernel runs it: the ReLU of the chain's end on the tail
    /// (or on the last convolution without one), its own otherwise.
    static func chainConv(_ c: Int, of chain: Chain, bound: [BoundOp]) throws -> ChainConv {
        guard case let .conv(_, .prepared(cw), bias, relu) = bound[c] else {
            throw BLError.invariant("chain at node \(chain.add): node \(c) is not a prepared convolution")
        }
        return ChainConv(weights: cw, bias: bias?.pointer, relu: c == (chain.tail ?? chain.convs.last) ? chain.relu : relu)
    }

    /// Applies `chain`: the `add` step runs it and its convolutions (the tail too) are absorbed.
    mutating func apply(_ chain: Chain) {
        kinds[chain.add] = .convChain(convs: chain.convs, residual: chain.residual, tail: chain.tail, relu: chain.relu)
        absorbed.formUnion(chain.convs)
    }

    /// - A conv (without its own ReLU) or a nearest resize is fused into the `add` that is its only consumer.
    /// - A conv (without its own ReLU) is fused into the `relu` that is its only consumer.
    /// - A `duplicateFrames` read only by a `tam` is folded into the TAM's reads.
    /// - A `tam` read only by a big and a little `selectFrames` writes their two values directly.
    /// - A `selectFrames` of a `duplicateFrames` is a view of the duplicated value.
    /// Nodes in `keep` (captured) and the output keep their own values.
    init(graph: Graph, bound: [BoundOp], consumers: [[Int]], keep: Set<Int>) {
        func single(_ x: Int) -> Bool {
            consumers[x].count == 1 && !keep.contains(x) && x != graph.output && !absorbed.contains(x)
        }
        for node in graph.nodes where !absorbed.contains(node.id) {
            switch node.op {
            case .framesFromChannels:
                kinds[node.id] = .view(of: node.inputs[0])
            case .selectFrames:
                let x = node.inputs[0]
                guard case .duplicateFrames = graph.nodes[x].op else { break }
                let source = graph.nodes[x].inputs[0]
                kinds[node.id] = .view(of: source)
                if single(x) { absorbed.insert(x) }
            case .tam(let t):
                var source = node.inputs[0], duplicated = false
                if case .duplicateFrames = graph.nodes[source].op, single(source), t.duration % 2 == 0 {
                    absorbed.insert(source)
                    duplicated = true
                    source = graph.nodes[source].inputs[0]
                }
                var even: Int? = nil, odd: Int? = nil
                let users = consumers[node.id]
                if users.count == 2, users[0] != users[1], !keep.contains(node.id), node.id != graph.output {
                    for u in users {
                        if case let .selectFrames(period, parity) = graph.nodes[u].op, period == t.duration {
                            if parity == .little { even = u } else { odd = u }
                        }
                    }
                }
                if let e = even, let o = odd {
                    absorbed.insert(e)
                    absorbed.insert(o)
                } else {
                    even = nil
                    odd = nil
                }
                if duplicated || even != nil {
                    kinds[node.id] = .tam(source: source, duplicated: duplicated, even: even, odd: odd)
                }
            case .relu:
                let x = node.inputs[0]
                if case .conv(_, weight: _, bias: _, relu: false) = bound[x], single(x) {
                    kinds[node.id] = .convRelu(conv: x)
                    absorbed.insert(x)
                }
            case .add(let relu):
                guard node.inputs[0] != node.inputs[1] else { break }
                // Prefer a convolution (saves a full pass and its buffer); the later one when both are.
                var conv: (id: Int, residual: Int)? = nil
                for (x, other) in [(node.inputs[1], node.inputs[0]), (node.inputs[0], node.inputs[1])] {
                    if case .conv(_, weight: _, bias: _, relu: false) = bound[x], single(x), x > (conv?.id ?? -1) {
                        conv = (x, other)
                    }
                }
                if let (c, r) = conv {
                    kinds[node.id] = .convAdd(conv: c, residual: r, relu: relu)
                    absorbed.insert(c)
                    break
                }
                for (x, other) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
                    if case .resizeNearest = bound[x], single(x) {
                        kinds[node.id] = .resizeAdd(resize: x, addend: other, relu: relu)
                        absorbed.insert(x)
                        break
                    }
                }
            default:
                break
            }
        }
        // Bottlenecks: conv(ReLU) -> conv(ReLU) -> conv -> add, packed weights throughout.
        func packedConv(_ x: Int, relu: Bool) -> Bool {
            guard case let .conv(_, .prepared(cw), _, r) = bound[x], r == relu else { return false }
            return cw.runsInChain
        }
        for node in graph.nodes {
            guard case .add(let relu) = node.op, node.inputs[0] != node.inputs[1], !keep.contains(node.id) else { continue }
            for (c3, r) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
                guard packedConv(c3, relu: false), consumers[c3].count == 1, !keep.contains(c3) else { continue }
                let c2 = graph.nodes[c3].inputs[0]
                guard packedConv(c2, relu: true), single(c2) else { continue }
                let c1 = graph.nodes[c2].inputs[0]
                guard packedConv(c1, relu: true), single(c1) else { continue }
                // The other input a convolution the add absorbed (a downsample): the chain's tail.
                if case let .convAdd(d, _, _)? = kinds[node.id], d == r {
                    guard packedConv(d, relu: false) else { continue }
                    chains.append(Chain(add: node.id, convs: [c1, c2, c3], residual: graph.nodes[d].inputs[0], tail: d, relu: relu))
                } else {
                    chains.append(Chain(add: node.id, convs: [c1, c2, c3], residual: r, tail: nil, relu: relu))
                }
                break
            }
        }
    }

    /// Nodes a fusion may remove; capturing them changes the plan.
    static func mayBeAbsorbed(_ op: BoundOp) -> Bool {
        switch op {
        case .conv, .resizeNearest, .duplicateFrames, .tam, .selectFrames: return true
        default: return false
        }
    }
}

/// Activation memory and step list for one input size: every value lives at a fixed arena offset,
/// values whose lifetimes do not overlap share memory, and elementwise ops run in place when
/// their input dies at that step.
struct ExecutionPlan {
    let batch: Int
    let height: Int
    let width: Int
    /// Concrete dims of every node's value.
    let dims: [[Int]]
    /// Elements of every node's value.
    let counts: [Int]
    /// Arena offset (floats) of every node's value; -1 for absorbed nodes.
    let offsets: [Int]
    let steps: [Step]
    /// Floats of the activation region (starts at 0).
    let activationFloats: Int
    /// Conv im2col scratch: offset and floats.
    let convScratchOffset: Int
    let convScratchFloats: Int
    /// Scratch for weights converted per use: offset and floats.
    let weightScratchOffset: Int
    let weightScratchFloats: Int
    /// Floats the values would take without any sharing (for reports).
    let unsharedFloats: Int
    /// Distinct memory blocks after sharing.
    let blockCount: Int

    var totalFloats: Int { weightScratchOffset + weightScratchFloats }

    /// Floats are placed on 64-byte boundaries.
    static func aligned(_ n: Int) -> Int { (n + 15) & ~15 }

    /// TAM split steps that write their selections over their source (`Kernels.tam`'s in-place split).
    let tamInPlace: Set<Int>

    init(graph: Graph, bound: [BoundOp], fusion: Fusion, batch: Int, height: Int, width: Int,
         context: KernelContext) throws {
        guard batch > 0 else { throw BLError(.invalidArgument, "batch \(batch) must be positive") }
        let shapes = try graph.inferShapes(height: height, width: width)
        self.batch = batch
        self.height = height
        self.width = width
        let n = graph.nodes.count
        var dims = [[Int]](), counts = [Int]()
        for s in shapes {
            let d = s.dims(batch: batch)
            dims.append(d)
            counts.append(try Tensor.checkedCount(d))
        }
        self.dims = dims
        self.counts = counts

        // Bottlenecks run frame by frame where every plane of the chain is large enough for a
        // single-threaded GEMM (and there is a frame for every worker).
        var fusion = fusion
        var chainScratch = 0
        for chain in fusion.chains where context.minChainPlane < Int.max {
            let x = dims[graph.nodes[chain.convs[0]].inputs[0]]
            guard x.count == 4, x[0] >= context.threads,
                  chain.convs.allSatisfy({ dims[$0].count == 4 && dims[$0][2] * dims[$0][3] >= context.minChainPlane }) else { continue }
            let convs = try chain.convs.map { try Fusion.chainConv($0, of: chain, bound: bound) }
            let tail = try chain.tail.map { d -> (conv: ChainConv, height: Int, width: Int) in
                let r = dims[chain.residual]
                guard r.count == 4 else { throw BLError.invariant("chain at node \(chain.add): the tail's input is not an image") }
                return (try Fusion.chainConv(d, of: chain, bound: bound), r[2], r[3])
            }
            let t = try ConvChainTiling(convs, frames: x[0], height: x[2], width: x[3], tail: tail, context: context)
            chainScratch = max(chainScratch, t.scratchCount)
            fusion.apply(chain)
        }

        // Steps, the values each writes and reads.
        var steps = [Step]()
        for node in graph.nodes where !fusion.absorbed.contains(node.id) {
            let kind = fusion.kinds[node.id] ?? .node
            let outputs: [Int], reads: [Int]
            switch kind {
            case let .convAdd(c, r, _):
                (outputs, reads) = ([node.id], [graph.nodes[c].inputs[0], r])
            case let .convRelu(c):
                (outputs, reads) = ([node.id], [graph.nodes[c].inputs[0]])
            case let .convChain(convs, r, _, _):
                (outputs, reads) = ([node.id], [graph.nodes[convs[0]].inputs[0], r])
            case let .resizeAdd(z, a, _):
                (outputs, reads) = ([node.id], [graph.nodes[z].inputs[0], a])
            case let .tam(source, _, even, odd):
                if let even, let odd { outputs = [even, odd] } else { outputs = [node.id] }
                reads = [source]
            case .view(let of):
                (outputs, reads) = ([node.id], [of])
            case .node:
                if case .resizeNearest = bound[node.id] {
                    (outputs, reads) = ([node.id], [node.inputs[0]])  // input 1 only gives the size
                } else {
                    (outputs, reads) = ([node.id], node.inputs)
                }
            }
            steps.append(Step(node: node.id, kind: kind, outputs: outputs, reads: reads))
        }
        self.steps = steps

        // Lifetimes in step positions: from the defining step to the last step reading the value;
        // the output lives to the end.
        var defined = [Int](repeating: -1, count: n)
        var lastUse = [Int](repeating: -1, count: n)
        for step in steps {
            for o in step.outputs {
                defined[o] = step.node
                lastUse[o] = step.node
            }
            for x in step.reads { lastUse[x] = max(lastUse[x], step.node) }
        }
        lastUse[graph.output] = n

        // Storage groups: values sharing memory (views, in-place results). A TAM split whose
        // source dies at it writes its two selections over the source (little frames first):
        // the group then has two halves, each free once its selection dies.
        var group = [Int](repeating: -1, count: n), within = [Int](repeating: 0, count: n)
        var gSize = [Int](), gStart = [Int](), gEnd = [Int]()
        var gSplit = [Int: (at: Int, firstEnd: Int, secondEnd: Int)]()
        var tamInPlace = Set<Int>()
        /// Value `v` joins the group of `x` at the same place (a view, an in-place result).
        func join(_ v: Int, _ x: Int) {
            let g = group[x]
            group[v] = g
            within[v] = within[x]
            gEnd[g] = max(gEnd[g], lastUse[v])
            if var sp = gSplit[g] {
                if within[x] < sp.at { sp.firstEnd = max(sp.firstEnd, lastUse[v]) } else { sp.secondEnd = max(sp.secondEnd, lastUse[v]) }
                gSplit[g] = sp
            }
        }
        for step in steps {
            let id = step.node
            if case .view(let of) = step.kind {
                join(id, of)
                continue
            }
            if case let .tam(source, false, even?, odd?) = step.kind {
                let g = group[source]
                if g >= 0, gEnd[g] == id, gSplit[g] == nil, within[source] == 0,
                   counts[even] + counts[odd] == counts[source] {
                    group[even] = g
                    group[odd] = g
                    within[odd] = counts[even]
                    gSplit[g] = (at: counts[even], firstEnd: lastUse[even], secondEnd: lastUse[odd])
                    gEnd[g] = max(lastUse[even], lastUse[odd])
                    tamInPlace.insert(id)
                    continue
                }
            }
            var candidates: [Int]
            switch step.kind {
            case .node: candidates = bound[id].inPlaceInputs(graph.nodes[id].inputs)
            case .resizeAdd(_, let a, _): candidates = [a]
            default: candidates = []  // conv, TAM: outputs must not overlap inputs
            }
            for o in step.outputs {
                var chosen: Int? = nil
                for x in candidates {
                    let g = group[x]
                    if g >= 0, gEnd[g] == id, counts[x] == counts[o] { chosen = x; break }
                }
                if let x = chosen {
                    join(o, x)
                } else {
                    group[o] = gSize.count
                    gSize.append(ExecutionPlan.aligned(counts[o]))
                    gStart.append(defined[o])
                    gEnd.append(lastUse[o])
                }
            }
        }

        // Offsets: largest blocks first, each at the lowest-waste gap among the memory alive at the
        // same time (a split group's halves each for their own lifetime).
        func parts(_ g: Int) -> [(lo: Int, hi: Int, start: Int, end: Int)] {
            guard let sp = gSplit[g] else { return [(0, gSize[g], gStart[g], gEnd[g])] }
            return [(0, sp.at, gStart[g], sp.firstEnd), (sp.at, gSize[g], gStart[g], sp.secondEnd)]
        }
        var gOffset = [Int](repeating: 0, count: gSize.count)
        var placed = [Int]()
        let order = gSize.indices.sorted { gSize[$0] != gSize[$1] ? gSize[$0] > gSize[$1] : gStart[$0] < gStart[$1] }
        var total = 0
        for g in order {
            let live = placed.flatMap { p in
                parts(p).filter { $0.start <= gEnd[g] && gStart[g] <= $0.end }.map { (lo: gOffset[p] + $0.lo, hi: gOffset[p] + $0.hi) }
            }.sorted { $0.lo < $1.lo }
            var best: Int? = nil, bestGap = Int.max, cursor = 0
            for r in live {
                let gap = r.lo - cursor
                if gap >= gSize[g] && gap < bestGap { best = cursor; bestGap = gap }
                cursor = max(cursor, r.hi)
            }
            gOffset[g] = best ?? cursor
            total = max(total, gOffset[g] + gSize[g])
            placed.append(g)
        }
        offsets = (0..<n).map { group[$0] >= 0 ? gOffset[group[$0]] + within[$0] : -1 }
        self.tamInPlace = tamInPlace
        activationFloats = total
        blockCount = gSize.count
        unsharedFloats = steps.reduce(0) { acc, s in
            if case .view = s.kind { return acc }
            return acc + s.outputs.reduce(0) { $0 + ExecutionPlan.aligned(counts[$1]) }
        }

        // Scratch.
        var convScratch = chainScratch, weightScratch = 0
        for node in graph.nodes {
            switch bound[node.id] {
            case let .conv(p, w, _, _):
                let x = dims[node.inputs[0]]
                let need: Int
                if case .prepared(let cw) = w {
                    need = try Kernels.conv2dScratchCount(cw, frames: x[0], height: x[2], width: x[3], context: context)
                } else {
                    need = try Kernels.conv2dIm2colScratchCount(p, frames: x[0], height: x[2], width: x[3], context: context)
                }
                convScratch = max(convScratch, need)
                if case .deferred = w { weightScratch = max(weightScratch, w.count) }
            case let .linear(w, _, _, _):
                if case .prepared(let cw) = w {
                    let rows = dims[node.inputs[0]][0]
                    convScratch = max(convScratch, try Kernels.conv2dScratchCount(cw, frames: rows, height: 1, width: 1,
                                                                                  context: context))
                }
                if case .deferred = w { weightScratch = max(weightScratch, w.count) }
            case let .tam(_, _, duration) where tamInPlace.contains(node.id) && duration > 0:
                let d = dims[node.id]
                convScratch = max(convScratch, try Kernels.tamInPlaceScratchCount(
                    clips: d[0] / duration, framesPerClip: duration, height: d[2], width: d[3], channels: d[1],
                    context: context))
            default:
                break
            }
        }
        convScratchOffset = total
        convScratchFloats = ExecutionPlan.aligned(convScratch)
        weightScratchOffset = convScratchOffset + convScratchFloats
        weightScratchFloats = ExecutionPlan.aligned(weightScratch)
    }
}
