import BLCore

/// Per-node cost for one input size and batch.
package struct NodeCost: Sendable, Equatable {
    package var node: Int
    /// Multiply-accumulates (convolutions, TAM blending, linear layers; 0 for the other ops).
    package var macs: Int
    /// Bytes of the node's output at `bytesPerElement`.
    package var outputBytes: Int
}

/// Costs of running the graph on one input size.
package struct GraphCost: Sendable, Equatable {
    package var nodes: [NodeCost]
    /// MACs of `conv2d` nodes.
    package var convMACs: Int
    /// MACs of the TAM blending (depthwise 1x1 `Conv2d` modules in the reference).
    package var tamMACs: Int
    /// MACs of `linear` nodes.
    package var linearMACs: Int
    /// Learnable parameters: every declared weight except BatchNorm running statistics.
    package var parameters: Int
    /// Every declared weight element, running statistics included.
    package var storedElements: Int
    /// Sum of all node outputs (what keeping every activation would take).
    package var totalActivationBytes: Int
    /// Largest total of live outputs at any step when each output is freed after its last reader
    /// (the network output is kept).
    package var peakActivationBytes: Int

    /// All multiply-accumulates: what counting every reference `Conv2d` (TAM included) and
    /// `Linear` module gives (23.851 G for bLVNet-TAM-50 f8x2 at 224x224).
    package var totalMACs: Int { convMACs + tamMACs + linearMACs }

    /// `{"macs": {"total", "conv", "tam", "linear"}, "parameters", "stored_elements",
    ///   "activation_bytes": {"total", "peak"}}`.
    package var json: JSON {
        func i(_ x: Int) -> JSON { .int(Int64(x)) }
        return .object([
            ("macs", .object([("total", i(totalMACs)), ("conv", i(convMACs)), ("tam", i(tamMACs)), ("linear", i(linearMACs))])),
            ("parameters", i(parameters)),
            ("stored_elements", i(storedElements)),
            ("activation_bytes", .object([("total", i(totalActivationBytes)), ("peak", i(peakActivationBytes))])),
        ])
    }
}

extension Graph {
    /// Multiply-accumulates, parameter counts and activation memory for `batch` clips of
    /// `height` x `width` (validates the graph through `inferShapes`).
    package func cost(batch: Int = 1, height: Int, width: Int, bytesPerElement: Int = 4) throws -> GraphCost {
        let shapes = try inferShapes(height: height, width: width)
        var perNode = [NodeCost]()
        var convMACs = 0, tamMACs = 0, linearMACs = 0
        for n in nodes {
            let out = shapes[n.id]
            let what = "multiply-accumulates of \(label(n.id))"
            let m = try Checked.multiply(batch, out.perClip, what)
            var macs = 0
            switch n.op {
            case .conv2d(let c):
                macs = try Checked.product([m, out.height, out.width, c.outChannels, c.inChannels / c.groups, c.kernel, c.kernel], what)
                convMACs = try Checked.add(convMACs, macs, "convolution multiply-accumulates")
            case .linear(let l):
                macs = try Checked.product([m, l.inFeatures, l.outFeatures], what)
                linearMACs = try Checked.add(linearMACs, macs, "linear multiply-accumulates")
            case .tam(let t):
                macs = try Checked.product([m, out.height, out.width, t.channels, t.blendingFrames], what)
                tamMACs = try Checked.add(tamMACs, macs, "TAM multiply-accumulates")
            default:
                break
            }
            let bytes = try Checked.multiply(try Checked.product(out.dims(batch: batch), "output size of \(label(n.id))"),
                                             bytesPerElement, "output bytes of \(label(n.id))")
            perNode.append(NodeCost(node: n.id, macs: macs, outputBytes: bytes))
        }
        _ = try Checked.sum([convMACs, tamMACs, linearMACs], "multiply-accumulates of the graph")
        var running = Set<String>()
        for n in nodes { if case .batchNorm(let b) = n.op { running.insert(b.runningMean); running.insert(b.runningVar) } }
        var params = 0, stored = 0
        for w in weights {
            let c = try Checked.product(w.shape, "size of weight '\(w.name)'")
            stored = try Checked.add(stored, c, "stored weight elements")
            if !running.contains(w.name) { params += c }
        }
        let total = try Checked.sum(perNode.map(\.outputBytes), "activation bytes of the graph")
        // Liveness: an output dies after its last reader runs.
        var lastUse = Array(0..<nodes.count)
        for n in nodes { for i in n.inputs { lastUse[i] = max(lastUse[i], n.id) } }
        lastUse[output] = nodes.count
        var live = 0, peak = 0
        var dying = [[Int]](repeating: [], count: nodes.count + 1)
        for (i, l) in lastUse.enumerated() { dying[l].append(i) }
        for n in nodes {
            live += perNode[n.id].outputBytes
            peak = max(peak, live)
            for d in dying[n.id] { live -= perNode[d].outputBytes }
        }
        return GraphCost(nodes: perNode, convMACs: convMACs, tamMACs: tamMACs, linearMACs: linearMACs, parameters: params,
                         storedElements: stored, totalActivationBytes: total,
                         peakActivationBytes: peak)
    }
}
