import BLCore
import BLGraph

/// Builds the graph of the reference `bLVNet_TAM` (eval mode) for a configuration, with weights
/// named as the reference module's state dict (`baseline_model.layer1.big.0.conv1.weight`,
/// `new_fc.weight`). BatchNorm and ReLU are separate nodes; see `BLVNetPasses` to fuse them.
package enum BLVNetGraph {
    /// Prefix of the backbone's names inside `bLVNet_TAM`.
    package static let backbone = "baseline_model."

    package static func build(_ config: BLVNetConfig) throws -> Graph {
        try check(config)
        var b = Builder(config: config)
        return try b.build()
    }

    static func check(_ c: BLVNetConfig) throws {
        var problems = [String]()
        if c.blocks.count != 4 || c.blocks.contains(where: { $0 < 1 }) { problems.append("blocks \(c.blocks) must be 4 positive counts") }
        if c.littleBlocks.count != 3 || c.littleBlocks.contains(where: { $0 < 1 }) { problems.append("little blocks \(c.littleBlocks) must be 3 positive counts") }
        if c.alpha < 1 || 64 % c.alpha != 0 { problems.append("alpha \(c.alpha) must divide 64") }
        if c.frames < 2 || c.frames % 2 != 0 { problems.append("frames \(c.frames) must be even (big and little frames alternate); pass --frames") }
        if c.blendingFrames < 1 { problems.append("blending frames \(c.blendingFrames) must be positive") }
        if c.numClasses < 1 { problems.append("classes \(c.numClasses) must be positive") }
        if c.inputChannels < 1 { problems.append("input channels \(c.inputChannels) must be positive") }
        if !problems.isEmpty { throw BLError(.invalidArgument, "invalid bLVNet-TAM configuration: " + problems.joined(separator: "; ")) }
    }

    /// Reference module names whose outputs the graph marks as taps (`act.<name>` in clip files).
    package static let tapModules = ["conv1", "bn1", "tam", "bn_bl_init", "layer1", "layer2", "layer3", "layer4", "gappool"]
        .map { backbone + $0 }

    struct Builder {
        let config: BLVNetConfig
        var g = Graph()
        let p = BLVNetGraph.backbone

        init(config: BLVNetConfig) { self.config = config }

        mutating func node(_ op: Op, _ inputs: [Int], _ origin: String?) -> Int {
            g.declareWeights(of: op)
            return g.add(op, inputs, origin: origin)
        }

        mutating func tap(_ module: String, _ id: Int) {
            g.taps.append(Tap(module: module, node: id))
        }

        mutating func conv(_ x: Int, _ m: String, _ cin: Int, _ cout: Int, k: Int, s: Int = 1, pad: Int = 0) -> Int {
            node(.conv2d(Conv2D(inChannels: cin, outChannels: cout, kernel: k, stride: s, padding: pad,
                                weight: m + ".weight")), [x], m)
        }

        mutating func bn(_ x: Int, _ m: String, _ c: Int) -> Int {
            node(.batchNorm(BatchNorm(channels: c, module: m)), [x], m)
        }

        mutating func relu(_ x: Int, _ origin: String) -> Int {
            node(.relu, [x], origin)
        }

        mutating func tam(_ x: Int, _ m: String, duration: Int, channels: Int) -> Int {
            let b = config.blendingFrames
            let names = b == 3 ? ["prev", "curr", "next"].map { "\(m).\($0).weight" }
                               : (0..<b).map { "\(m).blending_layers.\($0).weight" }
            return node(.tam(TAM(duration: duration, channels: channels, weights: names)), [x], m)
        }

        /// The reference `Bottleneck` (expansion 4). `pool`/`projection` describe its downsample
        /// Sequential (AvgPool2d first when present, then 1x1 conv + BN).
        mutating func bottleneck(_ x: Int, _ m: String, inplanes: Int, planes: Int, stride: Int,
                                 pool: Bool, projection: Bool, lastReLU: Bool, tamDuration: Int? = nil) -> Int {
            let mid = planes / 4
            var y = x
            if let d = tamDuration { y = tam(x, m + ".tam", duration: d, channels: inplanes) }
            var o = conv(y, m + ".conv1", inplanes, mid, k: 1)
            o = bn(o, m + ".bn1", mid)
            o = relu(o, m + ".relu")
            o = conv(o, m + ".conv2", mid, mid, k: 3, s: stride, pad: 1)
            o = bn(o, m + ".bn2", mid)
            o = relu(o, m + ".relu")
            o = conv(o, m + ".conv3", mid, planes, k: 1)
            o = bn(o, m + ".bn3", planes)
            var residual = x
            if pool || projection {
                var d = y
                var index = 0
                if pool {
                    d = node(.avgPool2d(kernel: 3, stride: 2, padding: 1), [d], m + ".downsample.0")
                    index = 1
                }
                if projection {
                    d = conv(d, "\(m).downsample.\(index)", inplanes, planes, k: 1)
                    d = bn(d, "\(m).downsample.\(index + 1)", planes)
                }
                residual = d
            }
            var out = node(.add(relu: false), [o, residual], m)
            if lastReLU { out = relu(out, m + ".relu") }
            return out
        }

        /// `bLModule._make_layer`: `count` blocks, the first with `stride`; with two or more blocks
        /// the last one's final ReLU follows `lastReLU`.
        mutating func makeLayer(_ x: Int, _ m: String, inplanes: Int, planes: Int, count: Int, stride: Int, lastReLU: Bool) -> Int {
            var y = bottleneck(x, m + ".0", inplanes: inplanes, planes: planes, stride: stride,
                               pool: stride != 1, projection: inplanes != planes, lastReLU: true)
            if count >= 2 {
                for i in 1..<count {
                    y = bottleneck(y, "\(m).\(i)", inplanes: planes, planes: planes, stride: 1, pool: false,
                                   projection: false, lastReLU: i == count - 1 ? lastReLU : true)
                }
            }
            return y
        }

        mutating func blModule(_ x: Int, stage k: Int, inChannels: Int, outChannels: Int, stride: Int) -> Int {
            let m = "\(p)layer\(k + 1)"
            let t = config.frames
            let xt = tam(x, m + ".tam", duration: t, channels: inChannels)
            let bigIn = node(.selectFrames(period: t, parity: .big), [xt], nil)
            let big = makeLayer(bigIn, m + ".big", inplanes: inChannels, planes: outChannels,
                                count: config.bigBlocks[k], stride: 2, lastReLU: false)
            let littleIn = node(.selectFrames(period: t, parity: .little), [xt], nil)
            var little = makeLayer(littleIn, m + ".little", inplanes: inChannels, planes: outChannels / config.alpha,
                                   count: config.littleBlocks[k], stride: 1, lastReLU: true)
            little = conv(little, m + ".little_e.0", outChannels / config.alpha, outChannels, k: 1)
            little = bn(little, m + ".little_e.1", outChannels)
            let resized = node(.resizeNearest, [big, little], m)
            var y = node(.add(relu: false), [resized, little], m)
            y = relu(y, m + ".relu")
            y = bottleneck(y, m + ".fusion.0", inplanes: outChannels, planes: outChannels, stride: stride,
                           pool: stride != 1, projection: false, lastReLU: true)
            let out = node(.duplicateFrames, [y], m)
            tap(m, out)
            return out
        }

        mutating func build() throws -> Graph {
            let c = config
            let t = c.frames
            let x0 = node(.input(frames: t, channels: c.inputChannels), [], nil)
            let x1 = node(.framesFromChannels(frames: t), [x0], nil)
            // Stem.
            var x = conv(x1, p + "conv1", c.inputChannels, 64, k: 7, s: 2, pad: 3)
            tap(p + "conv1", x)
            x = bn(x, p + "bn1", 64)
            tap(p + "bn1", x)
            x = relu(x, p + "relu")
            // Layer 0 (`_forward_bL_layer0`).
            let xt = tam(x, p + "tam", duration: t, channels: 64)
            tap(p + "tam", xt)
            var bx = node(.selectFrames(period: t, parity: .big), [xt], nil)
            bx = conv(bx, p + "b_conv0", 64, 64, k: 3, s: 2, pad: 1)
            bx = bn(bx, p + "bn_b0", 64)
            let la = 64 / c.alpha
            var lx = node(.selectFrames(period: t, parity: .little), [xt], nil)
            lx = conv(lx, p + "l_conv0", 64, la, k: 3, s: 1, pad: 1)
            lx = bn(lx, p + "bn_l0", la)
            lx = relu(lx, p + "relu")
            lx = conv(lx, p + "l_conv1", la, la, k: 3, s: 2, pad: 1)
            lx = bn(lx, p + "bn_l1", la)
            lx = relu(lx, p + "relu")
            lx = conv(lx, p + "l_conv2", la, 64, k: 1)
            lx = bn(lx, p + "bn_l2", 64)
            var y = node(.add(relu: false), [bx, lx], nil)
            y = relu(y, p + "relu")
            y = conv(y, p + "bl_init", 64, 64, k: 1)
            y = bn(y, p + "bn_bl_init", 64)
            tap(p + "bn_bl_init", y)
            y = relu(y, p + "relu")
            x = node(.duplicateFrames, [y], nil)
            // bL stages.
            let ch = BLVNetConfig.stageChannels
            x = blModule(x, stage: 0, inChannels: 64, outChannels: ch[0], stride: 2)
            x = blModule(x, stage: 1, inChannels: ch[0], outChannels: ch[1], stride: 2)
            x = blModule(x, stage: 2, inChannels: ch[1], outChannels: ch[2], stride: 1)
            // layer4 on the big frames, each block with its own TAM over T/2 frames.
            x = node(.selectFrames(period: t, parity: .big), [x], nil)
            for i in 0..<c.blocks[3] {
                let first = i == 0
                x = bottleneck(x, "\(p)layer4.\(i)", inplanes: first ? ch[2] : ch[3], planes: ch[3], stride: first ? 2 : 1,
                               pool: first, projection: first, lastReLU: true, tamDuration: t / 2)
            }
            tap(p + "layer4", x)
            x = node(.globalAvgPool, [x], p + "gappool")
            tap(p + "gappool", x)
            let fc = c.head == .fc ? p + "fc" : "new_fc"
            x = node(.linear(Linear(inFeatures: ch[3], outFeatures: c.numClasses, weight: fc + ".weight", bias: fc + ".bias")), [x], fc)
            x = node(.temporalMean(frames: t / 2), [x], nil)
            g.output = x
            try g.validateStructure()
            return g
        }
    }
}
