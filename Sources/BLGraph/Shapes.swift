import BLCore

/// The shape of a node's output, symbolic in the batch `N`: the first dimension is `N * perClip`.
/// Rank 4 is `[N*perClip, channels, height, width]`; rank 2 is `[N*perClip, channels]`.
package struct NodeShape: Sendable, Equatable, CustomStringConvertible {
    package var perClip: Int
    package var channels: Int
    package var height: Int
    package var width: Int
    package var rank: Int

    package init(perClip: Int, channels: Int, height: Int, width: Int, rank: Int = 4) {
        self.perClip = perClip
        self.channels = channels
        self.height = height
        self.width = width
        self.rank = rank
    }

    /// Largest output of one node for one clip, in elements (2^36: 256 GiB of float32).
    package static let maxElementsPerClip = 1 << 36

    /// Concrete dimensions for a batch of `batch` clips.
    package func dims(batch: Int) -> [Int] {
        rank == 2 ? [batch * perClip, channels] : [batch * perClip, channels, height, width]
    }

    /// Elements for a batch of `batch` clips.
    package func elementCount(batch: Int) -> Int {
        dims(batch: batch).reduce(1, *)
    }

    package var description: String {
        let m = perClip == 1 ? "N" : "N*\(perClip)"
        return rank == 2 ? "[\(m), \(channels)]" : "[\(m), \(channels), \(height), \(width)]"
    }
}

extension Graph {
    /// Output size of a window op along one axis, or nil when the window does not fit.
    static func windowOutput(_ size: Int, kernel: Int, stride: Int, padding: Int) -> Int? {
        let (twice, o1) = padding.multipliedReportingOverflow(by: 2)
        let (padded, o2) = size.addingReportingOverflow(twice)
        let (span, o3) = padded.subtractingReportingOverflow(kernel)
        guard !o1, !o2, !o3, span >= 0, stride > 0 else { return nil }
        return span / stride + 1
    }

    /// Largest kernel, stride and padding a graph may declare (bLVNet-TAM uses 7, 2 and 3).
    package static let maxWindow = 256

    /// Checks the graph's structure (ids, input references, arities, a single input node, the output,
    /// taps, that every referenced weight is declared with the shape its op needs) and infers every
    /// node's output shape for an input of `height` x `width`, checking channel counts, frame
    /// bookkeeping and that H and W stay large enough for each window. Errors name the node.
    package func inferShapes(height: Int, width: Int) throws -> [NodeShape] {
        try validateStructure()
        guard height > 0, width > 0 else {
            throw BLError(.invalidArgument, "input size \(height)x\(width) must be positive")
        }
        var shapes = [NodeShape]()
        shapes.reserveCapacity(nodes.count)
        for node in nodes {
            let ins = node.inputs.map { shapes[$0] }
            let shape = try outputShape(node, ins, height: height, width: width)
            // Every size downstream (costs, the arena plan) is computed from these: bound them here.
            let elements = try Checked.product([shape.perClip, shape.channels, shape.height, shape.width],
                                               "output size of \(label(node.id))")
            guard elements <= NodeShape.maxElementsPerClip else {
                throw BLError(.mismatch, "\(label(node.id)): output \(shape) has \(elements) elements per clip, more than \(NodeShape.maxElementsPerClip)")
            }
            shapes.append(shape)
        }
        return shapes
    }

    /// `inferShapes` with concrete dimensions for `batch` clips.
    package func inferShapes(batch: Int, height: Int, width: Int) throws -> [[Int]] {
        guard batch > 0 else { throw BLError(.invalidArgument, "batch \(batch) must be positive") }
        return try inferShapes(height: height, width: width).map { $0.dims(batch: batch) }
    }

    /// A short name for errors: `node 12 conv2d (baseline_model.layer1.big.0.conv1)`.
    package func label(_ id: Int) -> String {
        guard id >= 0 && id < nodes.count else { return "node \(id)" }
        let n = nodes[id]
        return "node \(id) \(n.op.name)" + (n.origin.map { " (\($0))" } ?? "")
    }

    /// Structural checks that do not depend on the input size.
    package func validateStructure() throws {
        guard !nodes.isEmpty else { throw BLError(.mismatch, "graph has no nodes") }
        // Declared shapes by name, built once (a lookup per weight reference, not a scan).
        var declaredShapes = [String: [[Int]]](minimumCapacity: weights.count)
        for w in weights { declaredShapes[w.name, default: []].append(w.shape) }
        for (i, n) in nodes.enumerated() {
            guard n.id == i else { throw BLError(.mismatch, "node at index \(i) has id \(n.id)") }
            if case .input = n.op {
                guard i == 0 else { throw BLError(.mismatch, "\(label(i)): only node 0 may be the input") }
            } else if i == 0 {
                throw BLError(.mismatch, "\(label(0)): node 0 must be the input")
            }
            guard n.inputs.count == n.op.arity else {
                throw BLError(.mismatch, "\(label(i)): takes \(n.op.arity) inputs, has \(n.inputs.count)")
            }
            for x in n.inputs where x < 0 || x >= i {
                throw BLError(.mismatch, "\(label(i)): input \(x) is not an earlier node")
            }
            for (name, shape) in Graph.expectedWeightShapes(n.op) {
                guard let declared = declaredShapes[name] else {
                    throw BLError(.mismatch, "\(label(i)): weight '\(name)' is not declared")
                }
                for d in declared where d != shape {
                    throw BLError(.mismatch, "\(label(i)): weight '\(name)' is declared \(d), the op needs \(shape)")
                }
            }
            try checkAttributes(n)
        }
        var seen = Set<String>()
        for w in weights {
            guard seen.insert(w.name).inserted else {
                throw BLError(.mismatch, "weight '\(w.name)' is declared twice")
            }
        }
        guard output >= 0 && output < nodes.count else {
            throw BLError(.mismatch, "output \(output) is not a node")
        }
        for t in taps where t.node < 0 || t.node >= nodes.count {
            throw BLError(.mismatch, "tap '\(t.module)' refers to missing node \(t.node)")
        }
    }

    private func checkAttributes(_ n: Node) throws {
        func bad(_ m: String) -> BLError { BLError(.mismatch, "\(label(n.id)): \(m)") }
        switch n.op {
        case let .input(frames, channels):
            if frames < 1 || channels < 1 { throw bad("frames \(frames) and channels \(channels) must be positive") }
        case .framesFromChannels(let frames):
            if frames < 1 { throw bad("frames \(frames) must be positive") }
        case .conv2d(let c):
            if c.kernel < 1 || c.stride < 1 || c.padding < 0 || c.groups < 1 || c.kernel > Graph.maxWindow
                || c.stride > Graph.maxWindow || c.padding > c.kernel {
                throw bad("invalid kernel \(c.kernel), stride \(c.stride), padding \(c.padding) or groups \(c.groups) (kernel and stride at most \(Graph.maxWindow), padding at most the kernel)")
            }
            if c.inChannels < 1 || c.outChannels < 1 || c.inChannels % c.groups != 0 || c.outChannels % c.groups != 0 {
                throw bad("channels \(c.inChannels) -> \(c.outChannels) do not divide into \(c.groups) groups")
            }
        case .batchNorm(let b):
            if b.channels < 1 || !(b.eps >= 0) { throw bad("invalid channels or eps") }
        case let .avgPool2d(k, s, p):
            if k < 1 || s < 1 || p < 0 || k > Graph.maxWindow || s > Graph.maxWindow || p > k / 2 { throw bad("invalid pooling window \(k)/\(s)/\(p)") }
        case .tam(let t):
            if t.duration < 1 || t.channels < 1 || t.weights.isEmpty {
                throw bad("needs a positive duration, channels and at least one blending weight")
            }
        case .selectFrames(let period, _):
            if period < 2 || period % 2 != 0 { throw bad("period \(period) must be even") }
        case .linear(let l):
            if l.inFeatures < 1 || l.outFeatures < 1 { throw bad("invalid feature counts") }
        case .temporalMean(let f):
            if f < 1 { throw bad("frames \(f) must be positive") }
        case .relu, .add, .resizeNearest, .duplicateFrames, .globalAvgPool:
            break
        }
    }

    private func outputShape(_ n: Node, _ ins: [NodeShape], height: Int, width: Int) throws -> NodeShape {
        func bad(_ m: String) -> BLError { BLError(.mismatch, "\(label(n.id)): \(m)") }
        func spatial(_ s: NodeShape) throws {
            guard s.rank == 4 else { throw bad("expects a 4-D input, got \(s)") }
        }
        switch n.op {
        case let .input(frames, channels):
            return NodeShape(perClip: 1, channels: try Checked.multiply(frames, channels, "input channels of \(label(n.id))"),
                             height: height, width: width)
        case .framesFromChannels(let frames):
            let x = ins[0]
            try spatial(x)
            guard x.channels % frames == 0 else { throw bad("\(x.channels) channels do not split into \(frames) frames") }
            return NodeShape(perClip: try Checked.multiply(x.perClip, frames, "frames of \(label(n.id))"),
                             channels: x.channels / frames, height: x.height, width: x.width)
        case .conv2d(let c):
            let x = ins[0]
            try spatial(x)
            guard x.channels == c.inChannels else { throw bad("expects \(c.inChannels) input channels, got \(x.channels) (input \(x))") }
            guard let h = Graph.windowOutput(x.height, kernel: c.kernel, stride: c.stride, padding: c.padding),
                  let w = Graph.windowOutput(x.width, kernel: c.kernel, stride: c.stride, padding: c.padding) else {
                throw bad("input \(x.height)x\(x.width) is too small for kernel \(c.kernel), padding \(c.padding)")
            }
            return NodeShape(perClip: x.perClip, channels: c.outChannels, height: h, width: w)
        case .batchNorm(let b):
            let x = ins[0]
            try spatial(x)
            guard x.channels == b.channels else { throw bad("expects \(b.channels) channels, got \(x.channels)") }
            return x
        case .relu:
            return ins[0]
        case .add:
            guard ins[0] == ins[1] else { throw bad("inputs differ in shape: \(ins[0]) vs \(ins[1])") }
            return ins[0]
        case let .avgPool2d(k, s, p):
            let x = ins[0]
            try spatial(x)
            guard let h = Graph.windowOutput(x.height, kernel: k, stride: s, padding: p),
                  let w = Graph.windowOutput(x.width, kernel: k, stride: s, padding: p) else {
                throw bad("input \(x.height)x\(x.width) is too small for a \(k)x\(k) pool with padding \(p)")
            }
            return NodeShape(perClip: x.perClip, channels: x.channels, height: h, width: w)
        case .resizeNearest:
            let (x, like) = (ins[0], ins[1])
            try spatial(x)
            try spatial(like)
            guard x.perClip == like.perClip else { throw bad("inputs have \(x.perClip) and \(like.perClip) frames per clip") }
            return NodeShape(perClip: x.perClip, channels: x.channels, height: like.height, width: like.width)
        case .tam(let t):
            let x = ins[0]
            try spatial(x)
            guard x.channels == t.channels else { throw bad("expects \(t.channels) channels, got \(x.channels)") }
            guard x.perClip == t.duration else { throw bad("duration \(t.duration) but the input has \(x.perClip) frames per clip") }
            return x
        case let .selectFrames(period, _):
            let x = ins[0]
            try spatial(x)
            guard x.perClip == period else { throw bad("period \(period) but the input has \(x.perClip) frames per clip") }
            return NodeShape(perClip: period / 2, channels: x.channels, height: x.height, width: x.width)
        case .duplicateFrames:
            var x = ins[0]
            try spatial(x)
            x.perClip = try Checked.multiply(x.perClip, 2, "frames of \(label(n.id))")
            return x
        case .globalAvgPool:
            let x = ins[0]
            try spatial(x)
            return NodeShape(perClip: x.perClip, channels: x.channels, height: 1, width: 1)
        case .linear(let l):
            let x = ins[0]
            guard x.rank == 2 || (x.height == 1 && x.width == 1) else { throw bad("expects [M, F, 1, 1] or [M, F], got \(x)") }
            guard x.channels == l.inFeatures else { throw bad("expects \(l.inFeatures) features, got \(x.channels)") }
            return NodeShape(perClip: x.perClip, channels: l.outFeatures, height: 1, width: 1, rank: 2)
        case .temporalMean(let f):
            let x = ins[0]
            guard x.rank == 2 else { throw bad("expects a 2-D input, got \(x)") }
            guard x.perClip == f else { throw bad("averages \(f) frames but the input has \(x.perClip) per clip") }
            return NodeShape(perClip: 1, channels: x.channels, height: 1, width: 1, rank: 2)
        }
    }

    /// Checks that `tensors` holds every declared weight with its declared shape; returns nothing,
    /// throws one error listing every missing or mis-shaped name.
    package func checkWeights(_ tensorShapes: [String: [Int]]) throws {
        var problems = [String]()
        var mismatch = BLError.WeightMismatch()
        for w in weights {
            guard let s = tensorShapes[w.name] else {
                problems.append("missing '\(w.name)' \(w.shape)")
                mismatch.missing.append((w.name, w.shape))
                continue
            }
            if s != w.shape {
                problems.append("'\(w.name)': expected \(w.shape), found \(s)")
                mismatch.misshaped.append(.init(name: w.name, expected: w.shape, found: s))
            }
        }
        if !problems.isEmpty {
            throw BLError(.mismatch, "weights do not match the graph: " + problems.joined(separator: "; "),
                          detail: .weights(mismatch))
        }
    }
}
