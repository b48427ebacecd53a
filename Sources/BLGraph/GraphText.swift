import BLCore

extension Graph {
    /// A readable listing, one node a line:
    /// `  12 conv2d      [N*8, 64, 56, 56]  0.925G <- 11   k3 s2 p1 64->64 relu  (baseline_model.b_conv0)`.
    /// Shapes and per-node multiply-accumulates (for one clip) are shown when an input size is given
    /// and inference succeeds (totals: `cost(...)`).
    package func textDump(height: Int? = nil, width: Int? = nil) -> String {
        var shapes: [NodeShape]? = nil
        var costs: GraphCost? = nil
        if let height, let width {
            shapes = try? inferShapes(height: height, width: width)
            costs = try? cost(batch: 1, height: height, width: width)
        }
        let tapsByNode = Dictionary(grouping: taps, by: { $0.node })
        var out = ""
        if let l = inputLayout { out += "graph: input [N, \(l.frames)*\(l.channels), H, W], \(nodes.count) nodes, \(weights.count) weights, output node \(output)\n" }
        for n in nodes {
            var line = pad(String(n.id), 5, left: true) + " " + pad(n.op.name, 19)
            if let s = shapes { line += pad(s[n.id].description, 22) }
            if let c = costs { line += pad(c.nodes[n.id].macs > 0 ? Graph.giga(c.nodes[n.id].macs) : "", 8, left: true) }
            line += " <- " + pad(n.inputs.map(String.init).joined(separator: ","), 9)
            line += " " + Graph.shortAttributes(n.op)
            if let o = n.origin { line += "  (\(o))" }
            if let ts = tapsByNode[n.id] { line += "  = " + ts.map(\.module).joined(separator: ", ") }
            out += line + "\n"
        }
        return out
    }

    /// `23.851G`, `0.925G`.
    static func giga(_ x: Int) -> String {
        let v = (Double(x) / 1e6).rounded() / 1e3
        var s = "\(v)"
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < 3 { s += String(repeating: "0", count: 3 - decimals) }
        }
        return s + "G"
    }

    static func shortAttributes(_ op: Op) -> String {
        switch op {
        case let .input(f, c): return "T=\(f) C=\(c)"
        case .framesFromChannels(let f): return "T=\(f)"
        case .conv2d(let c):
            var s = "k\(c.kernel) s\(c.stride) p\(c.padding) \(c.inChannels)->\(c.outChannels)"
            if c.groups != 1 { s += " g\(c.groups)" }
            if c.bias != nil { s += " +bias" }
            if c.relu { s += " relu" }
            return s
        case .batchNorm(let b): return "\(b.channels) eps=\(b.eps)"
        case .add(let r): return r ? "relu" : ""
        case let .avgPool2d(k, s, p): return "k\(k) s\(s) p\(p)"
        case .tam(let t): return "D=\(t.duration) b=\(t.blendingFrames) \(t.channels)"
        case let .selectFrames(p, parity): return "\(parity.rawValue) of \(p)"
        case .linear(let l): return "\(l.inFeatures)->\(l.outFeatures)"
        case .temporalMean(let f): return "over \(f)"
        case .relu, .resizeNearest, .duplicateFrames, .globalAvgPool: return ""
        }
    }
}

private func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, n - s.count))
    return left ? fill + s : s + fill
}
