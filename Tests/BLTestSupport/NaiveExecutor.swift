import BLCore
import BLGraph
import BLKernels

/// A straightforward executor for the same graphs: every op through the kernels' direct-loop oracles
/// or plain loops accumulating in Double, one fresh array per node, no fusion, no sharing.
package enum NaiveExecutor {
    package static func run(_ g: Graph, weights: [String: Tensor], input: Tensor) throws -> [[Float]] {
        let dims = try g.inferShapes(batch: input.shape[0], height: input.shape[2], width: input.shape[3])
        var values = [[Float]]()
        func w(_ name: String) -> [Float] { weights[name]!.floats() }
        for node in g.nodes {
            let d = node.inputs.first.map { dims[$0] } ?? []
            let x = node.inputs.first.map { values[$0] } ?? []
            let count = dims[node.id].reduce(1, *)
            var out = [Float](repeating: 0, count: count)
            switch node.op {
            case .input:
                out = input.floats()
            case .framesFromChannels:
                out = x
            case .conv2d(let c):
                let p = Conv2DParams(inChannels: c.inChannels, outChannels: c.outChannels, kernel: (c.kernel, c.kernel),
                                     stride: (c.stride, c.stride), padding: (c.padding, c.padding), groups: c.groups)
                let wt = w(c.weight), b = c.bias.map { w($0) }
                try x.withUnsafeBufferPointer { xp in
                    try wt.withUnsafeBufferPointer { wp in
                        try out.withUnsafeMutableBufferPointer { op in
                            if let b {
                                try b.withUnsafeBufferPointer { bp in
                                    try Kernels.conv2dNaive(xp.baseAddress!, frames: d[0], height: d[2], width: d[3],
                                                            weight: wp.baseAddress!, bias: bp.baseAddress!, params: p,
                                                            relu: c.relu, output: op.baseAddress!)
                                }
                            } else {
                                try Kernels.conv2dNaive(xp.baseAddress!, frames: d[0], height: d[2], width: d[3],
                                                        weight: wp.baseAddress!, bias: nil, params: p,
                                                        relu: c.relu, output: op.baseAddress!)
                            }
                        }
                    }
                }
            case .batchNorm(let bn):
                let gw = weights[bn.weight]!.doubles(), gb = weights[bn.bias]!.doubles()
                let m = weights[bn.runningMean]!.doubles(), v = weights[bn.runningVar]!.doubles()
                let hw = d[2] * d[3]
                for i in 0..<count {
                    let c = (i / hw) % d[1]
                    out[i] = Float((Double(x[i]) - m[c]) / (v[c] + bn.eps).squareRoot() * gw[c] + gb[c])
                }
            case .relu:
                for i in 0..<count { out[i] = max(x[i], 0) }
            case .add(let relu):
                let y = values[node.inputs[1]]
                for i in 0..<count {
                    let s = Double(x[i]) + Double(y[i])
                    out[i] = Float(relu ? max(s, 0) : s)
                }
            case let .avgPool2d(k, s, p):
                x.withUnsafeBufferPointer { xp in
                    out.withUnsafeMutableBufferPointer { op in
                        Kernels.avgPoolNaive(xp.baseAddress!, planes: d[0] * d[1], height: d[2], width: d[3],
                                             kernel: k, stride: s, padding: p, output: op.baseAddress!)
                    }
                }
            case .resizeNearest:
                let o = dims[node.id]
                x.withUnsafeBufferPointer { xp in
                    out.withUnsafeMutableBufferPointer { op in
                        Kernels.resizeNearestNaive(xp.baseAddress!, planes: d[0] * d[1], inHeight: d[2], inWidth: d[3],
                                                   outHeight: o[2], outWidth: o[3], output: op.baseAddress!)
                    }
                }
            case .tam(let t):
                let packed = t.weights.flatMap { w($0) }
                x.withUnsafeBufferPointer { xp in
                    packed.withUnsafeBufferPointer { wp in
                        out.withUnsafeMutableBufferPointer { op in
                            Kernels.tamNaive(xp.baseAddress!, clips: d[0] / t.duration, framesPerClip: t.duration,
                                             channels: d[1], height: d[2], width: d[3], weights: wp.baseAddress!,
                                             blending: t.weights.count, output: op.baseAddress!)
                        }
                    }
                }
            case let .selectFrames(period, parity):
                let s = d[1] * d[2] * d[3], half = period / 2
                for n in 0..<(d[0] / period) {
                    for j in 0..<half {
                        let src = (n * period + 2 * j + (parity == .big ? 1 : 0)) * s
                        for e in 0..<s { out[(n * half + j) * s + e] = x[src + e] }
                    }
                }
            case .duplicateFrames:
                let s = d[1] * d[2] * d[3]
                for i in 0..<d[0] {
                    for e in 0..<s {
                        out[2 * i * s + e] = x[i * s + e]
                        out[(2 * i + 1) * s + e] = x[i * s + e]
                    }
                }
            case .globalAvgPool:
                x.withUnsafeBufferPointer { xp in
                    out.withUnsafeMutableBufferPointer { op in
                        Kernels.globalAvgPoolNaive(xp.baseAddress!, planes: d[0] * d[1], height: d[2], width: d[3],
                                                   output: op.baseAddress!)
                    }
                }
            case .linear(let l):
                let wt = w(l.weight), b = w(l.bias)
                x.withUnsafeBufferPointer { xp in
                    wt.withUnsafeBufferPointer { wp in
                        b.withUnsafeBufferPointer { bp in
                            out.withUnsafeMutableBufferPointer { op in
                                Kernels.linearNaive(xp.baseAddress!, rows: d[0], inFeatures: l.inFeatures,
                                                    outFeatures: l.outFeatures, weight: wp.baseAddress!,
                                                    bias: bp.baseAddress!, output: op.baseAddress!)
                            }
                        }
                    }
                }
            case .temporalMean(let f):
                let k = d[1]
                for n in 0..<(d[0] / f) {
                    for c in 0..<k {
                        var s = 0.0
                        for t in 0..<f { s += Double(x[(n * f + t) * k + c]) }
                        out[n * k + c] = Float(s / Double(f))
                    }
                }
            }
            values.append(out)
        }
        return values
    }
}

/// max|a - b| / max|b|.
package func engineRelativeError(_ a: [Float], _ b: [Float]) -> Double {
    guard a.count == b.count else { return .infinity }
    var num = 0.0, den = 0.0
    for (x, y) in zip(a, b) {
        num = max(num, abs(Double(x) - Double(y)))
        den = max(den, abs(Double(y)))
    }
    return den > 0 ? num / den : num
}

/// A small graph using every op, on odd sizes, with random weights.
