import BLCore
import BLGraph

/// Graph rewrites for inference: BatchNorm folding and ReLU fusion. Both keep the outputs equal up
/// to float rounding and keep every tap whose value they do not change.
package enum GraphPasses {
    /// Folds every `batchNorm` whose input is a `conv2d` read by nothing else into that convolution:
    /// `w'[o] = w[o] * g[o] / sqrt(var[o] + eps)`, `b'[o] = (b[o] - mean[o]) * g[o] / sqrt(var[o] + eps) + beta[o]`
    /// (b = 0 without a bias), computed in double and stored as float32. The folded weight keeps the
    /// convolution's weight name; the bias is named `<conv module>.bias`. Taps on the convolution's old
    /// output are dropped (its value changed); taps on the BatchNorm move to the convolution.
    ///
    /// With `releasingInputs`, the pages of a memory-mapped checkpoint that held a folded weight are
    /// released once it is folded (`ByteStorage.releasePages`): the input tensors stay readable (the
    /// pages are read back from the file), but the process no longer holds both copies.
    package static func foldBatchNorm(_ graph: Graph, weights: [String: Tensor],
                                     releasingInputs: Bool = false) throws -> (Graph, [String: Tensor]) {
        var g = graph
        var w = weights
        let consumers = g.consumers()
        var replace = [Int](0..<g.nodes.count)
        var droppedTaps = Set<Int>()
        func foldable(_ node: Node) -> (BatchNorm, Int, Conv2D)? {
            guard case .batchNorm(let bn) = node.op, let src = node.inputs.first,
                  case .conv2d(let conv) = g.nodes[src].op, !conv.relu,
                  consumers[src].count == 1, src != g.output else { return nil }
            return (bn, src, conv)
        }
        // All folded weights in one mapping: a few huge-page faults instead of one per 4 KiB page.
        // Only views with no more elements than their storage holds count (a broadcast view's
        // size is not backed by the file); the others get memory of their own.
        var total = 0
        for node in g.nodes {
            if let (_, _, conv) = foldable(node), let t = w[conv.weight], t.elementCount <= t.storage.count / t.dtype.byteSize {
                total += (t.elementCount * 4 + 63) / 64 * 64
            }
        }
        let arena = WeightArena(capacity: total)
        for node in g.nodes {
            guard let (bn, src, foundConv) = foldable(node) else { continue }
            var conv = foundConv
            let wt = try tensor(w, conv.weight)
            let gamma = try tensor(w, bn.weight).doubles(), beta = try tensor(w, bn.bias).doubles()
            let mean = try tensor(w, bn.runningMean).doubles(), variance = try tensor(w, bn.runningVar).doubles()
            let cout = conv.outChannels
            guard wt.shape == conv.weightShape, cout > 0, [gamma, beta, mean, variance].allSatisfy({ $0.count == cout }) else {
                throw BLError(.mismatch, "\(g.label(node.id)): weights do not fit the convolution \(g.label(src))")
            }
            let oldBias = try conv.bias.map { try tensor(w, $0).doubles() } ?? [Double](repeating: 0, count: cout)
            guard oldBias.count == cout else {
                throw BLError(.mismatch, "\(g.label(src)): bias has \(oldBias.count) values for \(cout) channels")
            }
            var scales = [Double](repeating: 0, count: cout)
            var bias = [Float](repeating: 0, count: cout)
            for o in 0..<cout {
                let v = variance[o] + bn.eps
                guard v > 0 else {
                    throw BLError(.numeric, "\(g.label(node.id)): running_var + eps = \(v) for channel \(o) is not positive")
                }
                scales[o] = gamma[o] / v.squareRoot()
                bias[o] = Float((oldBias[o] - mean[o]) * scales[o] + beta[o])
            }
            let folded = try scaledRows(wt, scales, arena: arena)
            if releasingInputs && wt.isContiguous {
                let start = wt.offset * wt.dtype.byteSize
                wt.storage.releasePages(start..<(start + wt.byteCount))
            }
            let biasName = conv.bias ?? (conv.weight.hasSuffix(".weight") ? String(conv.weight.dropLast(".weight".count)) + ".bias" : conv.weight + ".bias")
            w[conv.weight] = folded
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

    /// A new float32 tensor of `t`'s shape whose row `o` (of `scales.count` rows along dimension 0)
    /// is `Float(Double(t[o, ...]) * scales[o])`.
    /// Shapes: t [O, ...] with O = scales.count, any float dtype and strides -> [O, ...] float32, contiguous.
    static func scaledRows(_ t: Tensor, _ scales: [Double], arena: WeightArena? = nil) throws -> Tensor {
        let rows = scales.count
        let per = rows == 0 ? 0 : t.elementCount / rows
        if let arena, t.elementCount <= t.storage.count / t.dtype.byteSize, let storage = arena.take(t.elementCount * 4) {
            fillScaledRows(t, scales, per: per, UnsafeMutableRawBufferPointer(mutating: storage.bytes))
            return try Tensor(dtype: .float32, shape: t.shape, storage: storage)
        }
        return try Tensor.make(dtype: .float32, shape: t.shape) { fillScaledRows(t, scales, per: per, $0) }
    }

    static func fillScaledRows(_ t: Tensor, _ scales: [Double], per: Int, _ dst: UnsafeMutableRawBufferPointer) {
        let rows = scales.count
        guard let out = dst.baseAddress?.assumingMemoryBound(to: Float.self), per > 0 else { return }
        // The common case, read in place from the checkpoint: contiguous float32 or float64,
        // possibly unaligned in the file.
        if t.isContiguous && (t.dtype == .float32 || t.dtype == .float64) {
            t.withContiguousBytes { src in
                guard let p = src.baseAddress else { return }
                scales.withUnsafeBufferPointer { s in
                    if t.dtype == .float32 {
                        for o in 0..<rows {
                            let scale = s[o], row = o * per
                            for i in row..<(row + per) {
                                out[i] = Float(Double(p.loadUnaligned(fromByteOffset: i &* 4, as: Float.self)) * scale)
                            }
                        }
                    } else {
                        for o in 0..<rows {
                            let scale = s[o], row = o * per
                            for i in row..<(row + per) {
                                out[i] = Float(p.loadUnaligned(fromByteOffset: i &* 8, as: Double.self) * scale)
                            }
                        }
                    }
                }
            }
            return
        }
        let values = t.doubles()
        for o in 0..<rows {
            let scale = scales[o], row = o * per
            for i in row..<(row + per) { out[i] = Float(values[i] * scale) }
        }
    }

    /// Fuses every `relu` into the `conv2d` or `add` before it when that node feeds nothing else.
    /// With `preservingTaps` (the default), a node whose own output is tapped keeps its separate ReLU
    /// (so `bn1` / `bn_bl_init` stay comparable); without, such taps are dropped.
    package static func fuseReLU(_ graph: Graph, preservingTaps: Bool = true) -> Graph {
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

    /// Both passes: fold BatchNorm, then fuse ReLU (`releasingInputs` as for `foldBatchNorm`).
    package static func optimize(_ graph: Graph, weights: [String: Tensor], preservingTaps: Bool = true,
                                releasingInputs: Bool = false) throws -> (Graph, [String: Tensor]) {
        let (g, w) = try foldBatchNorm(graph, weights: weights, releasingInputs: releasingInputs)
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

/// Anonymous memory handed out in 64-byte aligned slices that live as long as any tensor using
/// them; one huge-page region (at least 2 MiB, so it asks for transparent huge pages).
final class WeightArena: @unchecked Sendable {
    private let region: HugePageRegion
    private var used = 0
    var capacity: Int { region.count }

    init?(capacity: Int) {
        guard capacity >= HugePageRegion.hugePage, let r = HugePageRegion(count: capacity) else { return nil }
        region = r
    }

    /// A new slice of `count` bytes, or nil when the arena is used up.
    func take(_ count: Int) -> ByteStorage? {
        let size = (count + 63) / 64 * 64
        guard count > 0, used + size <= capacity else { return nil }
        let slice = UnsafeRawBufferPointer(start: region.base + used, count: count)
        used += size
        return ByteStorage(slice: slice, owner: self)
    }
}
