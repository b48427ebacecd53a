import BLCore
import BLGraph

/// Graph rewrites for inference: BatchNorm folding and ReLU fusion. Both keep the outputs equal up
/// to float rounding and keep every tap whose value they do not change.
public enum GraphPasses {
    /// Folds every `batchNorm` whose input is a `conv2d` read by nothing else into that convolution:
    /// `w'[o] = w[o] * g[o] / sqrt(var[o] + eps)`, `b'[o] = (b[o] - mean[o]) * g[o] / sqrt(var[o] + eps) + beta[o]`
    /// (b = 0 without a bias), computed in double and stored as float32. The folded weight keeps the
    /// convolution's weight name; the bias is named `<conv module>.bias`. Taps on the convolution's old
    /// output are dropped (its value changed); taps on the BatchNorm move to the convolution.
    public static func foldBatchNorm(_ graph: Graph, weights: [String: Tensor]) throws -> (Graph, [String: Tensor]) {
        var g = graph
        var w = weights
        let consumers = g.consumers()
        var replace = [Int](0..<g.nodes.count)
        var droppedTaps = Set<Int>()
        for node in g.nodes {
            guard case .batchNorm(let bn) = node.op, let src = node.inputs.first,
                  case .conv2d(var conv) = g.nodes[src].op, !conv.relu,
                  consumers[src].count == 1, src != g.output else { continue }
            let wt = try tensor(w, conv.weight)
            let gamma = try tensor(w, bn.weight).doubles(), beta = try tensor(w, bn.bias).doubles()
            let mean = try tensor(w, bn.runningMean).doubles(), variance = try tensor(w, bn.runningVar).doubles()
            let cout = conv.outChannels
            guard wt.shape == conv.weightShape, [gamma, beta, mean, variance].allSatisfy({ $0.count == cout }) else {
                throw BLError(.mismatch, "\(g.label(node.id)): weights do not fit the convolution \(g.label(src))")
            }
            let oldBias = try conv.bias.map { try tensor(w, $0).doubles() } ?? [Double](repeating: 0, count: cout)
            let per = wt.elementCount / cout
            let values = wt.doubles()
            var folded = [Float](repeating: 0, count: values.count)
            var bias = [Float](repeating: 0, count: cout)
            for o in 0..<cout {
                let v = variance[o] + bn.eps
                guard v > 0 else {
                    throw BLError(.numeric, "\(g.label(node.id)): running_var + eps = \(v) for channel \(o) is not positive")
                }
                let scale = gamma[o] / v.squareRoot()
                for i in 0..<per { folded[o * per + i] = Float(values[o * per + i] * scale) }
                bias[o] = Float((oldBias[o] - mean[o]) * scale + beta[o])
            }
            let biasName = conv.bias ?? (conv.weight.hasSuffix(".weight") ? String(conv.weight.dropLast(".weight".count)) + ".bias" : conv.weight + ".bias")
            w[conv.weight] = try Tensor.fromFloats(folded, shape: wt.shape)
            w[biasName] = try Tensor.fromFloats(bias, shape: [cout])
            conv.bias = biasName
            g.nodes[src].op = .conv2d(conv)
            g.declareWeight(biasName, shape: [cout])
            replace[node.id] = src
            droppedTaps.insert(src)
        }
        g.taps.removeAll { droppedTaps.contains($0.node) }
        g = rewire(g, replace)
        return (g, pruned(w, g))
    }

    /// Fuses every `relu` into the `conv2d` or `add` before it when that node feeds nothing else.
    /// With `preservingTaps` (the default), a node whose own output is tapped keeps its separate ReLU
    /// (so `bn1` / `bn_bl_init` stay comparable); without, such taps are dropped.
    public static func fuseReLU(_ graph: Graph, preservingTaps: Bool = true) -> Graph {
        var g = graph
        let consumers = g.consumers()
        var replace = [Int](0..<g.nodes.count)
        var droppedTaps = Set<Int>()
        let tapped = Set(g.taps.map(\.node))
        for node in g.nodes {
            guard case .relu = node.op, let src = node.inputs.first, consumers[src].count == 1, src != g.output else { continue }
            if tapped.contains(src) {
                if preservingTaps { continue }
                droppedTaps.insert(src)
            }
            switch g.nodes[src].op {
            case .conv2d(var c) where !c.relu:
                c.relu = true
                g.nodes[src].op = .conv2d(c)
            case .add(relu: false):
                g.nodes[src].op = .add(relu: true)
            default:
                droppedTaps.remove(src)
                continue
            }
            replace[node.id] = src
        }
        g.taps.removeAll { droppedTaps.contains($0.node) }
        return rewire(g, replace)
    }

    /// Both passes: fold BatchNorm, then fuse ReLU.
    public static func optimize(_ graph: Graph, weights: [String: Tensor], preservingTaps: Bool = true) throws -> (Graph, [String: Tensor]) {
        let (g, w) = try foldBatchNorm(graph, weights: weights)
        let f = fuseReLU(g, preservingTaps: preservingTaps)
        return (f, pruned(w, f))
    }

    static func tensor(_ w: [String: Tensor], _ name: String) throws -> Tensor {
        guard let t = w[name] else { throw BLError(.mismatch, "weight '\(name)' is missing") }
        return t
    }

    /// Redirects every use of node `i` to `replace[i]` (taps and output too), then drops dead nodes.
    static func rewire(_ graph: Graph, _ replace: [Int]) -> Graph {
        var g = graph
        func resolve(_ i: Int) -> Int {
            var j = i
            while replace[j] != j { j = replace[j] }
            return j
        }
        for k in g.nodes.indices { g.nodes[k].inputs = g.nodes[k].inputs.map(resolve) }
        g.output = resolve(g.output)
        g.taps = g.taps.map { Tap(module: $0.module, node: resolve($0.node)) }
        return g.compacted()
    }

    static func pruned(_ w: [String: Tensor], _ g: Graph) -> [String: Tensor] {
        var out = [String: Tensor]()
        for spec in g.weights { out[spec.name] = w[spec.name] }
        return out
    }
}
