import Testing
import BLTestSupport
@testable import BLConvert
import Foundation
import BLCore
import BLGraph
import BLCheckpoint
import BLSafetensors
@testable import BLVNet

// MARK: - The reference state dict, enumerated from the PyTorch module structure

/// Hyper-parameters as the reference `bLVNet_TAM` constructor takes them.
struct ReferenceSpec {
    var blocks: [Int]
    var alpha: Int
    var beta: Int
    var blending = 3
    var classes: Int
    var inputChannels = 3
    var dropout = true
}

/// `bLVNet_TAM(...).state_dict()` names and shapes (num_batches_tracked is 0-d), written from the
/// reference classes (`Bottleneck`, `bLModule._make_layer`, `bLVNet_TAM_BACKBONE`), independent of
/// the graph builder.
func referenceStateDict(_ s: ReferenceSpec) -> [(String, [Int])] {
    var out = [(String, [Int])]()
    func conv(_ n: String, _ o: Int, _ i: Int, _ k: Int) { out.append((n + ".weight", [o, i, k, k])) }
    func bn(_ n: String, _ c: Int) {
        for f in ["weight", "bias", "running_mean", "running_var"] { out.append(("\(n).\(f)", [c])) }
        out.append(("\(n).num_batches_tracked", []))
    }
    func tam(_ n: String, _ c: Int) {
        if s.blending == 3 {
            for f in ["prev", "next", "curr"] { out.append(("\(n).\(f).weight", [c, 1, 1, 1])) }
        } else {
            for i in 0..<s.blending { out.append(("\(n).blending_layers.\(i).weight", [c, 1, 1, 1])) }
        }
    }
    func bottleneck(_ n: String, _ inplanes: Int, _ planes: Int, _ downsample: [String], tamOn: Bool) {
        conv(n + ".conv1", planes / 4, inplanes, 1); bn(n + ".bn1", planes / 4)
        conv(n + ".conv2", planes / 4, planes / 4, 3); bn(n + ".bn2", planes / 4)
        conv(n + ".conv3", planes, planes / 4, 1); bn(n + ".bn3", planes)
        for (i, kind) in downsample.enumerated() {
            if kind == "conv" { conv("\(n).downsample.\(i)", planes, inplanes, 1) }
            if kind == "bn" { bn("\(n).downsample.\(i)", planes) }
        }
        if tamOn { tam(n + ".tam", inplanes) }
    }
    func makeLayer(_ n: String, _ inplanes: Int, _ planes: Int, _ blocks: Int, _ stride: Int, tamOn: Bool = false) {
        var ds = [String]()
        if stride != 1 { ds.append("pool") }
        if inplanes != planes { ds += ["conv", "bn"] }
        bottleneck(n + ".0", inplanes, planes, ds, tamOn: tamOn)
        if blocks > 1 { for i in 1..<blocks { bottleneck("\(n).\(i)", planes, planes, [], tamOn: tamOn) } }
    }
    let p = "baseline_model."
    let a = s.alpha
    conv(p + "conv1", 64, s.inputChannels, 7); bn(p + "bn1", 64)
    conv(p + "b_conv0", 64, 64, 3); bn(p + "bn_b0", 64)
    conv(p + "l_conv0", 64 / a, 64, 3); bn(p + "bn_l0", 64 / a)
    conv(p + "l_conv1", 64 / a, 64 / a, 3); bn(p + "bn_l1", 64 / a)
    conv(p + "l_conv2", 64, 64 / a, 1); bn(p + "bn_l2", 64)
    conv(p + "bl_init", 64, 64, 1); bn(p + "bn_bl_init", 64)
    tam(p + "tam", 64)
    let widths = [64, 256, 512, 1024, 2048]
    for k in 0..<3 {
        let n = "\(p)layer\(k + 1)"
        let (i, o) = (widths[k], widths[k + 1])
        makeLayer(n + ".big", i, o, s.blocks[k] - 1, 2)
        makeLayer(n + ".little", i, o / a, max(1, s.blocks[k] / s.beta - 1), 1)
        conv(n + ".little_e.0", o, o / a, 1); bn(n + ".little_e.1", o)
        makeLayer(n + ".fusion", o, o, 1, k < 2 ? 2 : 1)
        tam(n + ".tam", i)
    }
    makeLayer(p + "layer4", 1024, 2048, s.blocks[3], 2, tamOn: true)
    let fc = s.dropout ? "new_fc" : p + "fc"
    out.append((fc + ".weight", [s.classes, 2048]))
    out.append((fc + ".bias", [s.classes]))
    return out
}

/// Tensors for a state dict: random values with plausible scales (random BatchNorm statistics with
/// positive variances), or, with `values: false`, one shared zero element viewed with zero strides
/// (cheap for the large configurations).
func synthesize(_ entries: [(String, [Int])], seed: UInt64 = 1, values: Bool = true) throws -> [(name: String, tensor: Tensor)] {
    var rng = SeededRandom(state: seed)
    let zero = try Tensor.fromFloats([0], shape: [1])
    return try entries.map { name, shape in
        if name.hasSuffix("num_batches_tracked") {
            let t = try Tensor.make(dtype: .int64, shape: []) { $0.storeBytes(of: Int64(7), as: Int64.self) }
            return (name, t)
        }
        if !values {
            return (name, try Tensor(dtype: .float32, shape: shape, strides: shape.map { _ in 0 }, storage: zero.storage))
        }
        let n = shape.reduce(1, *)
        var v = [Float](repeating: 0, count: n)
        let fanIn = shape.count == 4 ? shape[1] * shape[2] * shape[3] : (shape.count == 2 ? shape[1] : 1)
        let bound = (3.0 / Double(fanIn)).squareRoot()
        for i in 0..<n {
            let x: Double
            if name.hasSuffix("running_var") { x = rng.uniform(0.5, 2.0) }
            else if name.hasSuffix("running_mean") || name.hasSuffix(".bias") { x = rng.uniform(-0.2, 0.2) }
            else if shape.count == 1 { x = rng.uniform(0.6, 1.4) }                       // BN weight
            else if shape.count == 4 && shape[1] == 1 && shape[2] == 1 { x = rng.uniform(0.1, 0.6) }  // TAM
            else { x = rng.uniform(-bound, bound) * 1.6 }
            v[i] = Float(x)
        }
        return (name, try Tensor.fromFloats(v, shape: shape))
    }
}

// MARK: - A naive executor (double precision, direct loops) for checking graphs

struct Activation {
    var shape: [Int]
    var data: [Double]
}

/// Runs every node of `g` directly from the op documentation; returns every node's output.
func naiveExecute(_ g: Graph, weights: [String: Tensor], input: Activation) throws -> [Activation] {
    var cache = [String: [Double]]()
    func w(_ name: String) throws -> [Double] {
        if let v = cache[name] { return v }
        guard let t = weights[name] else { throw BLError(.mismatch, "no weight \(name)") }
        let v = t.doubles()
        cache[name] = v
        return v
    }
    var outs = [Activation]()
    for node in g.nodes {
        let ins = node.inputs.map { outs[$0] }
        var r: Activation
        switch node.op {
        case .input:
            r = input
        case .framesFromChannels(let t):
            let s = ins[0].shape
            r = Activation(shape: [s[0] * t, s[1] / t, s[2], s[3]], data: ins[0].data)
        case .conv2d(let c):
            let x = ins[0]
            let (m, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let ho = (h + 2 * c.padding - c.kernel) / c.stride + 1, wo = (wd + 2 * c.padding - c.kernel) / c.stride + 1
            let wt = try w(c.weight)
            let bias = try c.bias.map { try w($0) }
            let cinG = cin / c.groups, coutG = c.outChannels / c.groups, k = c.kernel
            var out = [Double](repeating: 0, count: m * c.outChannels * ho * wo)
            x.data.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    for mi in 0..<m {
                        for o in 0..<c.outChannels {
                            let obase = (mi * c.outChannels + o) * ho * wo
                            if let bias { for i in 0..<(ho * wo) { op[obase + i] = bias[o] } }
                            let grp = o / coutG
                            for ic in 0..<cinG {
                                let ch = grp * cinG + ic
                                let ibase = (mi * cin + ch) * h * wd
                                for ky in 0..<k {
                                    for kx in 0..<k {
                                        let wv = wt[((o * cinG + ic) * k + ky) * k + kx]
                                        for y in 0..<ho {
                                            let iy = y * c.stride - c.padding + ky
                                            if iy < 0 || iy >= h { continue }
                                            for xx in 0..<wo {
                                                let ix = xx * c.stride - c.padding + kx
                                                if ix < 0 || ix >= wd { continue }
                                                op[obase + y * wo + xx] += wv * xp[ibase + iy * wd + ix]
                                            }
                                        }
                                    }
                                }
                            }
                            if c.relu { for i in 0..<(ho * wo) { op[obase + i] = max(0, op[obase + i]) } }
                        }
                    }
                }
            }
            r = Activation(shape: [m, c.outChannels, ho, wo], data: out)
        case .batchNorm(let b):
            let x = ins[0]
            let (g0, b0, mu, v) = (try w(b.weight), try w(b.bias), try w(b.runningMean), try w(b.runningVar))
            let hw = x.shape[2] * x.shape[3], c = x.shape[1]
            var out = x.data
            for i in 0..<out.count {
                let ch = (i / hw) % c
                out[i] = (out[i] - mu[ch]) / (v[ch] + b.eps).squareRoot() * g0[ch] + b0[ch]
            }
            r = Activation(shape: x.shape, data: out)
        case .relu:
            r = Activation(shape: ins[0].shape, data: ins[0].data.map { max(0, $0) })
        case .add(let relu):
            var out = ins[0].data
            for i in 0..<out.count { out[i] += ins[1].data[i]; if relu { out[i] = max(0, out[i]) } }
            r = Activation(shape: ins[0].shape, data: out)
        case let .avgPool2d(k, s, p):
            let x = ins[0]
            let (m, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let ho = (h + 2 * p - k) / s + 1, wo = (wd + 2 * p - k) / s + 1
            var out = [Double](repeating: 0, count: m * c * ho * wo)
            for plane in 0..<(m * c) {
                for y in 0..<ho {
                    for xx in 0..<wo {
                        var sum = 0.0
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let iy = y * s - p + ky, ix = xx * s - p + kx
                                if iy >= 0 && iy < h && ix >= 0 && ix < wd { sum += x.data[plane * h * wd + iy * wd + ix] }
                            }
                        }
                        out[plane * ho * wo + y * wo + xx] = sum / Double(k * k)
                    }
                }
            }
            r = Activation(shape: [m, c, ho, wo], data: out)
        case .resizeNearest:
            let x = ins[0]
            let (m, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
            let (ho, wo) = (ins[1].shape[2], ins[1].shape[3])
            func src(_ d: Int, _ i: Int, _ o: Int) -> Int {
                if o == i { return d }
                if o == 2 * i { return d >> 1 }
                return min(Int((Float(d) * (Float(i) / Float(o))).rounded(.down)), i - 1)
            }
            var out = [Double](repeating: 0, count: m * c * ho * wo)
            for plane in 0..<(m * c) {
                for y in 0..<ho { for xx in 0..<wo {
                    out[plane * ho * wo + y * wo + xx] = x.data[plane * h * wd + src(y, h, ho) * wd + src(xx, wd, wo)]
                } }
            }
            r = Activation(shape: [m, c, ho, wo], data: out)
        case .tam(let t):
            let x = ins[0]
            let (m, c) = (x.shape[0], x.shape[1])
            let hw = x.shape[2] * x.shape[3]
            let b = t.weights.count
            let ws = try t.weights.map { try w($0) }
            var out = [Double](repeating: 0, count: x.data.count)
            for row in 0..<m {
                let (clip, f) = (row / t.duration, row % t.duration)
                for i in 0..<b {
                    let sf = f + i - b / 2
                    if sf < 0 || sf >= t.duration { continue }
                    let srow = clip * t.duration + sf
                    for ch in 0..<c {
                        for j in 0..<hw { out[(row * c + ch) * hw + j] += ws[i][ch] * x.data[(srow * c + ch) * hw + j] }
                    }
                }
            }
            r = Activation(shape: x.shape, data: out.map { max(0, $0) })
        case let .selectFrames(period, parity):
            let x = ins[0]
            let per = x.data.count / x.shape[0]
            var out = [Double]()
            for row in 0..<(x.shape[0] / 2) {
                let src = (row / (period / 2)) * period + 2 * (row % (period / 2)) + (parity == .big ? 1 : 0)
                out += x.data[(src * per)..<((src + 1) * per)]
            }
            r = Activation(shape: [x.shape[0] / 2] + x.shape.dropFirst(), data: out)
        case .duplicateFrames:
            let x = ins[0]
            let per = x.data.count / x.shape[0]
            var out = [Double]()
            for row in 0..<x.shape[0] { let s = x.data[(row * per)..<((row + 1) * per)]; out += s; out += s }
            r = Activation(shape: [x.shape[0] * 2] + x.shape.dropFirst(), data: out)
        case .globalAvgPool:
            let x = ins[0]
            let hw = x.shape[2] * x.shape[3]
            var out = [Double]()
            for plane in 0..<(x.shape[0] * x.shape[1]) { out.append(x.data[(plane * hw)..<((plane + 1) * hw)].reduce(0, +) / Double(hw)) }
            r = Activation(shape: [x.shape[0], x.shape[1], 1, 1], data: out)
        case .linear(let l):
            let x = ins[0]
            let (wt, bias) = (try w(l.weight), try w(l.bias))
            var out = [Double]()
            for row in 0..<x.shape[0] {
                for o in 0..<l.outFeatures {
                    var s = bias[o]
                    for f in 0..<l.inFeatures { s += wt[o * l.inFeatures + f] * x.data[row * l.inFeatures + f] }
                    out.append(s)
                }
            }
            r = Activation(shape: [x.shape[0], l.outFeatures], data: out)
        case .temporalMean(let frames):
            let x = ins[0]
            let f = x.shape[1]
            var out = [Double](repeating: 0, count: x.shape[0] / frames * f)
            for row in 0..<x.shape[0] { for j in 0..<f { out[(row / frames) * f + j] += x.data[row * f + j] / Double(frames) } }
            r = Activation(shape: [x.shape[0] / frames, f], data: out)
        }
        outs.append(r)
    }
    return outs
}

/// max |a - b| / max |b|.
func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    var d = 0.0, m = 0.0
    for i in a.indices { d = max(d, abs(a[i] - b[i])); m = max(m, abs(b[i])) }
    return m > 0 ? d / m : d
}

// MARK: - Tests

@Suite struct MappingTests {
    static let specs: [(String, ReferenceSpec, Int)] = [
        ("mini-a2b4", ReferenceSpec(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, classes: 10), 8),
        ("mini-a4b2-blend5-fc", ReferenceSpec(blocks: [3, 2, 2, 1], alpha: 4, beta: 2, blending: 5, classes: 7, dropout: false), 6),
        ("r50", ReferenceSpec(blocks: [3, 4, 6, 3], alpha: 2, beta: 4, classes: 174), 16),
        ("r101-flow", ReferenceSpec(blocks: [4, 8, 18, 3], alpha: 2, beta: 4, classes: 400, inputChannels: 10), 16),
        ("deep-little-beta1", ReferenceSpec(blocks: [4, 5, 3, 2], alpha: 1, beta: 1, blending: 1, classes: 3), 4),
    ]

    @Test(arguments: specs.indices)
    func graphWeightsAreTheReferenceStateDict(_ i: Int) throws {
        let (label, spec, frames) = Self.specs[i]
        let reference = referenceStateDict(spec)
        let imported = try BLVNetImporter.importModel(tensors: try synthesize(reference, values: false), frames: frames)
        var declared = Dictionary(uniqueKeysWithValues: imported.graph.weights.map { ($0.name, $0.shape) })
        for n in imported.graph.nodes {
            if case .batchNorm(let b) = n.op { declared[String(b.weight.dropLast(7)) + ".num_batches_tracked"] = [] }
        }
        let expected = Dictionary(uniqueKeysWithValues: reference)
        #expect(declared == expected, "\(label)")
        let c = imported.config
        #expect(c.blocks == (spec.blocks[0] == 1 ? [2] + spec.blocks.dropFirst() : spec.blocks), "\(label)")
        #expect(c.alpha == spec.alpha && c.blendingFrames == spec.blending && c.numClasses == spec.classes)
        #expect(c.inputChannels == spec.inputChannels && c.frames == frames)
        #expect(c.head == (spec.dropout ? .dropoutNewFC : .fc))
        #expect(c.littleBlocks == spec.blocks.prefix(3).map { max(1, $0 / spec.beta - 1) })
        #expect(try imported.graph.inferShapes(height: 64, width: 48).count == imported.graph.nodes.count)
    }

    @Test func prefixesAndTrainingCheckpoints() throws {
        let spec = ReferenceSpec(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, classes: 10)
        let plain = try synthesize(referenceStateDict(spec), values: false)
        let expected = try BLVNetImporter.importModel(tensors: plain, frames: 8).config
        // DataParallel's `module.`
        let dp = plain.map { (name: "module." + $0.name, tensor: $0.tensor) }
        #expect(try BLVNetImporter.importModel(tensors: dp, frames: 8).config == expected)
        // A training checkpoint: state_dict.module.* plus training state that is not weights.
        var train = plain.map { (name: "state_dict.module." + $0.name, tensor: $0.tensor) }
        let scalar = try Tensor.fromFloats([0.5], shape: [])
        train.append((name: "best_top1", tensor: scalar))
        train.append((name: "optimizer.state.0.momentum_buffer", tensor: scalar))
        let t = try CheckpointImport.importModel(tensors: train, arch: "st2stv2-bLVNet-TAM-50-a2-b4-f4x2-cosine-bs64-e50",
                                                 path: "model.pth.tar")
        #expect(t.config == BLVNetConfig(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, frames: 8, numClasses: 10))
        // A bare backbone with `fc` (no `baseline_model.`).
        let fcSpec = ReferenceSpec(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, classes: 10, dropout: false)
        let bare = try synthesize(referenceStateDict(fcSpec), values: false).map {
            (name: String($0.name.dropFirst("baseline_model.".count)), tensor: $0.tensor)
        }
        let b = try BLVNetImporter.importModel(tensors: bare, frames: 8)
        #expect(b.config.head == .fc)
        #expect(b.weights["baseline_model.fc.weight"]?.shape == [10, 2048])
    }

    @Test func framesFromNamesAndErrors() throws {
        let spec = ReferenceSpec(blocks: [3, 4, 6, 3], alpha: 2, beta: 4, classes: 174)
        let tensors = try synthesize(referenceStateDict(spec), values: false)
        let named = try CheckpointImport.importModel(tensors: tensors, path: "/x/st2stv2-bLVNet-TAM-50-a2-b4-f8x2.pth.tar")
        #expect(named.config == BLVNetConfig(blocks: [3, 4, 6, 3], alpha: 2, beta: 4, frames: 16, numClasses: 174))
        #expect(named.config.depth == 50)
        #expect(try CheckpointImport.importModel(tensors: tensors, frames: 24, path: "a-f8x2.pth").config.frames == 24)
        #expect(try CheckpointImport.importModel(tensors: tensors, frames: 16, path: "r50-a2b4-f8x2-ssv2/model.pth.tar").config.beta == 4)
        // T comes from the file's own name, never from the folders above it.
        #expect(throws: BLError.self) { _ = try CheckpointImport.importModel(tensors: tensors, path: "r50-a2b4-f8x2-ssv2/model.pth.tar") }
        // A beta the little branches contradict is not reported.
        #expect(try CheckpointImport.importModel(tensors: tensors, path: "x-a2-b1-f8x2.pth").config.beta == nil)
        #expect {
            _ = try CheckpointImport.importModel(tensors: tensors, path: "model.pth.tar")
        } throws: { e in
            let m = "\(e)"
            return (e as? BLError)?.kind == .invalidArgument && m.contains("--frames") && m.contains("f8x2")
        }
        #expect {
            _ = try BLVNetImporter.importModel(tensors: tensors, frames: 15)
        } throws: { e in "\(e)".contains("T = 15 must be even") }
        #expect(throws: BLError.self) { _ = try CheckpointImport.importModel(tensors: tensors, path: "clip-f7x3.pth") }
    }

    @Test func strictChecksListEveryProblemInOneError() throws {
        let spec = ReferenceSpec(blocks: [2, 2, 2, 1], alpha: 2, beta: 4, classes: 10)
        var tensors = try synthesize(referenceStateDict(spec), values: false).map { (name: "module." + $0.name, tensor: $0.tensor) }
        let zero = tensors[0].tensor.storage
        tensors.removeAll { $0.name == "module.baseline_model.layer2.big.0.bn2.running_var" }
        if let i = tensors.firstIndex(where: { $0.name == "module.baseline_model.layer1.tam.next.weight" }) {
            tensors[i].name = "module.baseline_model.layer1.tam.nxt.weight"
        }
        if let i = tensors.firstIndex(where: { $0.name == "module.baseline_model.layer3.fusion.0.conv2.weight" }) {
            tensors[i].tensor = try Tensor(dtype: .float32, shape: [256, 256, 1, 1], strides: [0, 0, 0, 0], storage: zero)
        }
        #expect {
            _ = try BLVNetImporter.importModel(tensors: tensors, frames: 8)
        } throws: { e in
            let m = "\(e)"
            return (e as? BLError)?.kind == .mismatch
                && m.contains("missing (2): module.baseline_model.layer1.tam.next.weight [64, 1, 1, 1], module.baseline_model.layer2.big.0.bn2.running_var [128]")
                && m.contains("unexpected (1): module.baseline_model.layer1.tam.nxt.weight [64, 1, 1, 1]")
                && m.contains("mis-shaped (1): module.baseline_model.layer3.fusion.0.conv2.weight: expected [256, 256, 3, 3], found [256, 256, 1, 1]")
        }
        // An extra tensor alone is an error too; num_batches_tracked of known BatchNorms is not.
        var extra = try synthesize(referenceStateDict(spec), values: false)
        extra.append((name: "baseline_model.fc.weight", tensor: extra[0].tensor))
        #expect {
            _ = try BLVNetImporter.importModel(tensors: extra, frames: 8)
        } throws: { e in "\(e)".contains("unexpected (1): baseline_model.fc.weight") && !"\(e)".contains("missing") }
        // Not a bLVNet at all.
        #expect {
            _ = try BLVNetImporter.importModel(tensors: [(name: "0.weight", tensor: extra[0].tensor)], frames: 8)
        } throws: { e in "\(e)".contains("not a bLVNet-TAM state dict") }
    }

    /// BatchNorm folding and ReLU fusion keep every output: the unfused and the optimized graph of a
    /// small random network agree at every remaining tap and at the logits.
    @Test func foldingAndFusionKeepOutputs() throws {
        let spec = ReferenceSpec(blocks: [3, 2, 2, 2], alpha: 2, beta: 1, blending: 5, classes: 6)
        let imported = try BLVNetImporter.importModel(tensors: try synthesize(referenceStateDict(spec), seed: 42), frames: 4)
        let (fused, fusedWeights) = try GraphPasses.optimize(imported.graph, weights: imported.weights)
        // No BatchNorm and no ReLU after a conv or add remains; the fused graph is much shorter.
        #expect(!fused.nodes.contains { if case .batchNorm = $0.op { return true }; return false })
        let relus = fused.nodes.filter { $0.op == .relu }.count
        #expect(relus == 2)  // kept after bn1 and bn_bl_init, whose taps are pre-ReLU
        #expect(fused.nodes.count < imported.graph.nodes.count / 2 + 20)
        #expect(fused.tap("baseline_model.conv1") == nil && fused.tap("baseline_model.bn1") != nil)
        try fused.checkWeights(fusedWeights.mapValues { $0.shape })

        var rng = SeededRandom(state: 7)
        let (h, w) = (29, 35)
        let input = Activation(shape: [2, 4 * 3, h, w], data: (0..<(2 * 12 * h * w)).map { _ in rng.uniform(-1, 1) })
        let a = try naiveExecute(imported.graph, weights: imported.weights, input: input)
        let b = try naiveExecute(fused, weights: fusedWeights, input: input)
        let logits = a[imported.graph.output].data
        #expect(a[imported.graph.output].shape == [2, 6])
        #expect(relativeError(b[fused.output].data, logits) < 1e-6)
        #expect(logits.contains { abs($0) > 1e-3 })
        for tap in fused.taps {
            let ref = try #require(imported.graph.tap(tap.module))
            #expect(a[ref].shape == b[tap.node].shape, "\(tap.module)")
            #expect(relativeError(b[tap.node].data, a[ref].data) < 1e-6, "\(tap.module)")
        }
        // Without preserving taps every ReLU fuses and the pre-ReLU taps go.
        let all = GraphPasses.fuseReLU(fused, preservingTaps: false)
        #expect(all.nodes.filter { $0.op == .relu }.isEmpty)
        #expect(all.tap("baseline_model.bn1") == nil && all.tap("baseline_model.layer4") != nil)
        let c = try naiveExecute(all, weights: fusedWeights, input: input)
        #expect(relativeError(c[all.output].data, logits) < 1e-6)
    }

    @Test func foldingMathOnOneConvolution() throws {
        // conv 2->2 1x1 with bias, then BatchNorm: fold by hand.
        var g = Graph()
        let x0 = g.add(.input(frames: 2, channels: 2), [])
        let x1 = g.add(.framesFromChannels(frames: 2), [x0])
        let conv = Op.conv2d(Conv2D(inChannels: 2, outChannels: 2, kernel: 1, weight: "c.weight", bias: "c.bias"))
        g.declareWeights(of: conv)
        let c = g.add(conv, [x1])
        let bn = Op.batchNorm(BatchNorm(channels: 2, module: "bn", eps: 1e-5))
        g.declareWeights(of: bn)
        g.output = g.add(bn, [c])
        let weights: [String: Tensor] = [
            "c.weight": try Tensor.fromFloats([1, 2, 3, 4], shape: [2, 2, 1, 1]),
            "c.bias": try Tensor.fromFloats([0.5, -1], shape: [2]),
            "bn.weight": try Tensor.fromFloats([2, 3], shape: [2]),
            "bn.bias": try Tensor.fromFloats([0.25, 0], shape: [2]),
            "bn.running_mean": try Tensor.fromFloats([1, -2], shape: [2]),
            "bn.running_var": try Tensor.fromFloats([4, 0.25], shape: [2]),
        ]
        let (f, fw) = try GraphPasses.foldBatchNorm(g, weights: weights)
        #expect(f.nodes.count == 3)
        let s0 = 2 / (4 + 1e-5).squareRoot(), s1 = 3 / (0.25 + 1e-5).squareRoot()
        let wf = try #require(fw["c.weight"]).floats()
        #expect(wf == [Float(1 * s0), Float(2 * s0), Float(3 * s1), Float(4 * s1)])
        #expect(try #require(fw["c.bias"]).floats() == [Float((0.5 - 1) * s0 + 0.25), Float((-1 + 2) * s1)])
        #expect(fw["bn.weight"] == nil)
    }
}

// MARK: - Real checkpoints (bundled mini case; shared cases when present)

/// The configuration a case's manifest.json states.
func manifestConfig(_ manifestPath: String) throws -> BLVNetConfig {
    let m = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: manifestPath))))
    let c = try #require(m["config"])
    let blocks = try #require(c["blocks"]?.arrayValue).compactMap(\.intValue)
    let dropout = c["dropout"]?.doubleValue ?? 0
    return BLVNetConfig(blocks: blocks, alpha: try #require(c["alpha"]?.intValue), beta: try #require(c["beta"]?.intValue),
                        frames: try #require(c["frames"]?.intValue), blendingFrames: try #require(c["blending_frames"]?.intValue),
                        numClasses: try #require(c["num_classes"]?.intValue), inputChannels: try #require(c["input_channels"]?.intValue),
                        head: dropout > 0 ? .dropoutNewFC : .fc)
}

/// Runs `graph` on a clip file's input with the naive executor and returns (logits error against
/// `logits_f64`, worst error at a recorded activation).
func clipErrors(_ graph: Graph, _ weights: [String: Tensor], clip: String) throws -> (logits: Double, acts: Double, compared: Int) {
    let c = try SafetensorsFile.load(path: clip)
    let x = try #require(c.tensor("input"))
    let outs = try naiveExecute(graph, weights: weights, input: Activation(shape: x.shape, data: x.doubles()))
    let logits = relativeError(outs[graph.output].data, try #require(c.tensor("logits_f64")).doubles())
    var worst = 0.0, compared = 0
    for t in graph.taps {
        guard let r = c.tensor("act." + t.module) else { continue }
        #expect(r.shape == outs[t.node].shape, "\(t.module)")
        worst = max(worst, relativeError(outs[t.node].data, r.doubles()))
        compared += 1
    }
    return (logits, worst, compared)
}

@Suite struct RealCheckpointMappingTests {
    @Test func miniConfigurationEqualsTheManifest() throws {
        let expected = try manifestConfig(TestData.fixture("mini-a2b4-f4x2/manifest.json"))
        var configs = [BLVNetConfig]()
        var weightSets = [[String: Tensor]]()
        for file in ["model.pth.tar", "model_nested.h5"] {
            let path = TestData.fixture("mini-a2b4-f4x2/" + file)
            let model = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: path), frames: 8)
            configs.append(model.config)
            weightSets.append(model.weights)
        }
        #expect(configs.allSatisfy { $0 == expected })
        #expect(weightSets[0].count == weightSets[1].count)
        for (name, t) in weightSets[0] { #expect(weightSets[1][name]?.floats() == t.floats(), "\(name)") }
    }

    /// The unfused graph run in double reproduces PyTorch's float64 logits; the optimized graph
    /// (float32 folded weights) stays within float rounding; every recorded activation matches.
    @Test func miniGraphReproducesTheReference() throws {
        let model = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: TestData.fixture("mini-a2b4-f4x2/model.pth.tar")), frames: 8)
        let clip = TestData.fixture("mini-a2b4-f4x2/clip2.safetensors")
        let plain = try clipErrors(model.graph, model.weights, clip: clip)
        #expect(plain.logits < 1e-9)
        #expect(plain.acts < 1e-5 && plain.compared == 9)
        let (g, w) = try GraphPasses.optimize(model.graph, weights: model.weights)
        let fused = try clipErrors(g, w, clip: clip)
        #expect(fused.logits < 1e-5)
        #expect(fused.acts < 1e-5 && fused.compared == 8)
    }

    /// A training checkpoint of another network: its state dict is read (not best_top1 or the
    /// optimizer state) and refused with the file named.
    @Test func otherNetworksAreRefusedWithTheFileNamed() throws {
        let path = TestData.fixture("parsers/train_zip.pth.tar")
        #expect {
            _ = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: path), frames: 8)
        } throws: { e in
            let m = "\(e)"
            return m.contains("train_zip.pth.tar") && m.contains("not a bLVNet-TAM state dict") && !m.contains("optimizer")
        }
    }

    @Test(.enabled(if: TestData.hasShared)) func sharedCasesConfigurationAndParity() throws {
        let a4 = TestData.shared("mini-a4b2-f3x2-blend5-fc/model.pth")
        let r50 = TestData.shared("r50-a2b4-f8x2-ssv2/model.pth.tar")
        let dir = (a4 as NSString).deletingLastPathComponent
        let model = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: a4), frames: 6)
        #expect(model.config == (try manifestConfig(dir + "/manifest.json")))
        let (g, w) = try GraphPasses.optimize(model.graph, weights: model.weights)
        let e = try clipErrors(g, w, clip: dir + "/clip0.safetensors")
        #expect(e.logits < 1e-5 && e.acts < 1e-5 && e.compared == 8)
        let big = try CheckpointImport.importModel(checkpoint: try Checkpoint.open(path: r50), frames: 16)
        #expect(big.config == (try manifestConfig((r50 as NSString).deletingLastPathComponent + "/manifest.json")))
        let cost = try big.graph.cost(height: 224, width: 224)
        #expect((Double(cost.totalMACs) / 1e6).rounded() == 23851)
        #expect((Double(cost.parameters) / 1e4).rounded() == 2502)
    }
}
