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
}

/// One step: produces the value of `node`.
struct Step {
    let node: Int
    let kind: StepKind
}

/// The fusions a graph allows, decided from its structure alone (not the input size).
struct Fusion {
    /// Step kind per node; nodes absent here run their own op.
    var kinds: [Int: StepKind] = [:]
    /// Nodes computed inside another node's step (no value of their own).
    var absorbed = Set<Int>()

    /// Fuses a conv (without its own ReLU) or a nearest resize into the `add` that is its only consumer.
    /// Nodes in `keep` (captured, or the output) keep their own values.
    init(graph: Graph, bound: [BoundOp], consumers: [[Int]], keep: Set<Int>) {
        for node in graph.nodes {
            guard case .add(let relu) = node.op, node.inputs.count == 2, node.inputs[0] != node.inputs[1] else { continue }
            func single(_ x: Int) -> Bool {
                consumers[x].count == 1 && !keep.contains(x) && x != graph.output && !absorbed.contains(x)
            }
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
                continue
            }
            for (x, other) in [(node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])] {
                if case .resizeNearest = bound[x], single(x) {
                    kinds[node.id] = .resizeAdd(resize: x, addend: other, relu: relu)
                    absorbed.insert(x)
                    break
                }
            }
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

        // Steps and the values each reads.
        var steps = [Step]()
        var reads = [[Int]](repeating: [], count: n)
        for node in graph.nodes where !fusion.absorbed.contains(node.id) {
            let kind = fusion.kinds[node.id] ?? .node
            steps.append(Step(node: node.id, kind: kind))
            switch kind {
            case let .convAdd(c, r, _): reads[node.id] = [graph.nodes[c].inputs[0], r]
            case let .resizeAdd(z, a, _): reads[node.id] = [graph.nodes[z].inputs[0], a]
            case .node:
                if case .resizeNearest = bound[node.id] {
                    reads[node.id] = [node.inputs[0]]  // input 1 only gives the size
                } else {
                    reads[node.id] = node.inputs
                }
            }
        }
        self.steps = steps

        // Last step reading each value; the output lives to the end.
        var lastUse = Array(0..<n)
        for s in 0..<n { for x in reads[s] { lastUse[x] = max(lastUse[x], s) } }
        lastUse[graph.output] = n

        // Storage groups: values sharing memory (views, in-place results).
        var group = [Int](repeating: -1, count: n)
        var gSize = [Int](), gStart = [Int](), gEnd = [Int]()
        for step in steps {
            let id = step.node
            if case .alias = bound[id] {
                let g = group[graph.nodes[id].inputs[0]]
                group[id] = g
                gEnd[g] = max(gEnd[g], lastUse[id])
                continue
            }
            var candidates: [Int]
            switch step.kind {
            case .node: candidates = bound[id].inPlaceInputs(graph.nodes[id].inputs)
            case .convAdd: candidates = []  // the conv kernel's output must not overlap its residual
            case .resizeAdd(_, let a, _): candidates = [a]
            }
            var chosen: Int? = nil
            for x in candidates {
                let g = group[x]
                if g >= 0, gEnd[g] == id, counts[x] == counts[id] { chosen = g; break }
            }
            if let g = chosen {
                group[id] = g
                gEnd[g] = max(gEnd[g], lastUse[id])
            } else {
                group[id] = gSize.count
                gSize.append(ExecutionPlan.aligned(counts[id]))
                gStart.append(id)
                gEnd.append(lastUse[id])
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
            if case .alias = bound[s.node] { return acc }
            return acc + ExecutionPlan.aligned(counts[s.node])
        }

        // Scratch.
        var convScratch = 0, weightScratch = 0
        for node in graph.nodes {
            switch bound[node.id] {
            case let .conv(p, w, _, _):
                let x = dims[node.inputs[0]]
                convScratch = max(convScratch, try Kernels.conv2dScratchCount(p, frames: x[0], height: x[2], width: x[3],
                                                                              context: context))
                if case .deferred = w { weightScratch = max(weightScratch, w.count) }
            case let .linear(w, _, _, _):
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
