import BLCore

/// One operation of the graph. `id` equals the node's index in `Graph.nodes`; inputs refer to
/// earlier nodes only (the node list is in execution order).
package struct Node: Sendable, Equatable {
    package var id: Int
    package var op: Op
    /// Ids of the input nodes, in the order the op documents.
    package var inputs: [Int]
    /// The reference module this node comes from (`baseline_model.layer2.big.0.conv1`), if any.
    package var origin: String?

    package init(id: Int, op: Op, inputs: [Int], origin: String? = nil) {
        self.id = id
        self.op = op
        self.inputs = inputs
        self.origin = origin
    }
}

/// A named weight the graph reads and its shape.
package struct WeightSpec: Sendable, Equatable {
    package var name: String
    package var shape: [Int]

    package init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }
}

/// Marks that the output of `node` equals the output of the reference module `module`
/// (e.g. `baseline_model.layer1`), so recorded intermediate activations can be compared.
package struct Tap: Sendable, Equatable {
    package var module: String
    package var node: Int

    package init(module: String, node: Int) {
        self.module = module
        self.node = node
    }
}

/// A dataflow graph over named weights: the network's description, not its execution.
package struct Graph: Sendable, Equatable {
    /// Nodes in execution order; `nodes[i].id == i`; node 0 is the `input`.
    package var nodes: [Node]
    /// The node whose value is the network output.
    package var output: Int
    /// Every weight the nodes reference, with its shape, in first-use order.
    package var weights: [WeightSpec]
    /// Reference modules whose outputs some node reproduces.
    package var taps: [Tap]

    package init(nodes: [Node] = [], output: Int = 0, weights: [WeightSpec] = [], taps: [Tap] = []) {
        self.nodes = nodes
        self.output = output
        self.weights = weights
        self.taps = taps
    }

    /// Frames per clip `T` and channels per frame `C` of the input node.
    package var inputLayout: (frames: Int, channels: Int)? {
        if let first = nodes.first, case let .input(frames, channels) = first.op { return (frames, channels) }
        return nil
    }

    /// Shape of a weight by name.
    package func weightShape(_ name: String) -> [Int]? {
        weights.first { $0.name == name }?.shape
    }

    /// The node that reproduces a reference module's output, if any.
    package func tap(_ module: String) -> Int? {
        taps.first { $0.module == module }?.node
    }

    /// Appends a node and returns its id.
    @discardableResult
    package mutating func add(_ op: Op, _ inputs: [Int], origin: String? = nil) -> Int {
        let id = nodes.count
        nodes.append(Node(id: id, op: op, inputs: inputs, origin: origin))
        return id
    }

    /// Records a weight (once; a later different shape for the same name is kept for `validate` to report).
    package mutating func declareWeight(_ name: String, shape: [Int]) {
        if let i = weights.firstIndex(where: { $0.name == name }) {
            if weights[i].shape != shape { weights.append(WeightSpec(name: name, shape: shape)) }
            return
        }
        weights.append(WeightSpec(name: name, shape: shape))
    }

    /// Declares every weight `op` reads with the shape the op implies (see `expectedWeightShapes`).
    package mutating func declareWeights(of op: Op) {
        for (name, shape) in Graph.expectedWeightShapes(op) { declareWeight(name, shape: shape) }
    }

    /// The shape each weight of `op` must have.
    package static func expectedWeightShapes(_ op: Op) -> [(String, [Int])] {
        switch op {
        case .conv2d(let c):
            var r = [(c.weight, c.weightShape)]
            if let b = c.bias { r.append((b, [c.outChannels])) }
            return r
        case .batchNorm(let b):
            return [b.weight, b.bias, b.runningMean, b.runningVar].map { ($0, [b.channels]) }
        case .tam(let t):
            return t.weights.map { ($0, [t.channels, 1, 1, 1]) }
        case .linear(let l):
            return [(l.weight, [l.outFeatures, l.inFeatures]), (l.bias, [l.outFeatures])]
        default:
            return []
        }
    }

    /// Ids of the nodes reading each node's output.
    package func consumers() -> [[Int]] {
        var out = [[Int]](repeating: [], count: nodes.count)
        for n in nodes { for i in n.inputs where i >= 0 && i < nodes.count { out[i].append(n.id) } }
        return out
    }

    /// A copy without unreachable nodes (not feeding the output), renumbered, with weights
    /// and taps restricted to what remains.
    package func compacted() -> Graph {
        var live = [Bool](repeating: false, count: nodes.count)
        guard output >= 0 && output < nodes.count else { return self }
        live[output] = true
        if !nodes.isEmpty { live[0] = true }
        for id in stride(from: nodes.count - 1, through: 0, by: -1) where live[id] {
            for i in nodes[id].inputs where i >= 0 && i < nodes.count { live[i] = true }
        }
        var map = [Int](repeating: -1, count: nodes.count)
        var g = Graph()
        for n in nodes where live[n.id] {
            map[n.id] = g.nodes.count
            g.nodes.append(Node(id: g.nodes.count, op: n.op, inputs: n.inputs.map { map[$0] }, origin: n.origin))
        }
        g.output = map[output]
        var used = Set<String>()
        for n in g.nodes { used.formUnion(n.op.weightNames) }
        g.weights = weights.filter { used.contains($0.name) }
        g.taps = taps.compactMap { t in
            guard t.node >= 0 && t.node < map.count && map[t.node] >= 0 else { return nil }
            return Tap(module: t.module, node: map[t.node])
        }
        return g
    }
}
