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
    /// An `add` node computed by the nearest resize `resize` with `addend` fused in:
    /// `act(resize(x) + addend)`.
    case resizeAdd(resize: Int, addend: Int, relu: Bool)
    /// A `tam` node reading `source`: its own input, or, when `duplicated`, the input of the
    /// `duplicateFrames` that fed it (read twice per frame, no copy). With `even`/`odd`, the step
    /// writes the little-branch (`selectFrames .little`) and big-branch (`selectFrames .big`)
    /// frames straight into those two nodes' values and the TAM node has no value of its own.
    case tam(source: Int, duplicated: Bool, even: Int?, odd: Int?)
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

    /// - A conv (without its own ReLU) or a nearest resize is fused into the `add` that is its only consumer.
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

        // Steps, the values each writes and reads.
        var steps = [Step]()
        for node in graph.nodes where !fusion.absorbed.contains(node.id) {
            let kind = fusion.kinds[node.id] ?? .node
            let outputs: [Int], reads: [Int]
            switch kind {
            case let .convAdd(c, r, _):
                (outputs, reads) = ([node.id], [graph.nodes[c].inputs[0], r])
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

        // Storage groups: values sharing memory (views, in-place results).
        var group = [Int](repeating: -1, count: n)
        var gSize = [Int](), gStart = [Int](), gEnd = [Int]()
        for step in steps {
            let id = step.node
            if case .view(let of) = step.kind {
                let g = group[of]
                group[id] = g
                gEnd[g] = max(gEnd[g], lastUse[id])
                continue
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
                    if g >= 0, gEnd[g] == id, counts[x] == counts[o] { chosen = g; break }
                }
                if let g = chosen {
                    group[o] = g
                    gEnd[g] = max(gEnd[g], lastUse[o])
                } else {
                    group[o] = gSize.count
                    gSize.append(ExecutionPlan.aligned(counts[o]))
                    gStart.append(defined[o])
                    gEnd.append(lastUse[o])
                }
            }
        }

        // Offsets: largest blocks first, each at the lowest-waste gap among blocks alive at the same time.
        var gOffset = [Int](repeating: 0, count: gSize.count)
        var placed = [Int]()
        let order = gSize.indices.sorted { gSize[$0] != gSize[$1] ? gSize[$0] > gSize[$1] : gStart[$0] < gStart[$1] }
        var total = 0
        for g in order {
            let live = placed.filter { gStart[$0] <= gEnd[g] && gStart[g] <= gEnd[$0] }
                .sorted { gOffset[$0] < gOffset[$1] }
            var best: Int? = nil, bestGap = Int.max, cursor = 0
            for p in live {
                let gap = gOffset[p] - cursor
                if gap >= gSize[g] && gap < bestGap { best = cursor; bestGap = gap }
                cursor = max(cursor, gOffset[p] + gSize[p])
            }
            gOffset[g] = best ?? cursor
            total = max(total, gOffset[g] + gSize[g])
            placed.append(g)
        }
        offsets = (0..<n).map { group[$0] >= 0 ? gOffset[group[$0]] : -1 }
        activationFloats = total
        blockCount = gSize.count
        unsharedFloats = steps.reduce(0) { acc, s in
            if case .view = s.kind { return acc }
            return acc + s.outputs.reduce(0) { $0 + ExecutionPlan.aligned(counts[$1]) }
        }

        // Scratch.
        var convScratch = 0, weightScratch = 0
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
