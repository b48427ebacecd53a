import BLCore
import Foundation

/// The default of `KernelContext.minChainPlane`: 784 pixels (28x28), chosen by alternated
/// profiles of R50 (planes of 14x14 gained nothing); `BLCONVERT_CHAIN=off` turns chains off and
/// `BLCONVERT_CHAIN=N` sets the smallest plane, for comparing.
package enum ConvChainSwitch {
    package static let environmentVariable = "BLCONVERT_CHAIN"
    package static let standardPlane = 784

    package static let fromEnvironment: Int = {
        guard let v = ProcessInfo.processInfo.environment[environmentVariable]?.lowercased() else { return standardPlane }
        if v == "off" { return Int.max }
        return Int(v).map { max(1, $0) } ?? standardPlane
    }()
}

extension ConvWeights {
    /// Whether a chain may run these weights: ungrouped, on a packed kernel (GEMM, bf16 GEMM or
    /// Winograd), which runs a single frame on one thread.
    package var runsInChain: Bool {
        guard params.groups == 1 else { return false }
        switch path {
        case .gemm, .gemmBF16, .winograd: return true
        case .blas, .grouped: return false
        }
    }
}

/// One convolution of a chain run frame by frame (see `Kernels.convChain`).
package struct ChainConv: @unchecked Sendable {
    package let weights: ConvWeights
    package let bias: UnsafePointer<Float>?
    /// ReLU after this convolution (for the last one: after the residual is added).
    package let relu: Bool

    package init(weights: ConvWeights, bias: UnsafePointer<Float>?, relu: Bool) {
        self.weights = weights
        self.bias = bias
        self.relu = relu
    }
}

/// A convolution of another value whose result is the residual of a chain's last convolution
/// (a downsample), computed frame by frame with the chain: `act(conv(side) + chain)`.
package struct ChainTail: @unchecked Sendable {
    /// Its weights, bias and the chain's final ReLU.
    package let conv: ChainConv
    /// `[frames, C, height, width]`, C the tail's input channels.
    package let input: UnsafePointer<Float>
    package let height: Int
    package let width: Int

    package init(conv: ChainConv, input: UnsafePointer<Float>, height: Int, width: Int) {
        self.conv = conv
        self.input = input
        self.height = height
        self.width = width
    }
}

/// The frame-wise run of a chain of convolutions: the output plane of each, and the floats one
/// worker needs (every intermediate value of one frame, then the largest single-threaded
/// convolution scratch of one frame).
package struct ConvChainTiling: Sendable {
    /// Input (channels, height, width) of each convolution, then the chain's output.
    package let planes: [(channels: Int, height: Int, width: Int)]
    /// Floats of each intermediate value of one frame (64-byte aligned; with a tail, the last
    /// convolution's output too), then of conv scratch.
    let intermediateFloats: [Int]
    let convScratchFloats: Int
    let workers: Int
    /// Elements of one frame of the tail's input (0 without a tail).
    let tailFrame: Int
    package var workerFloats: Int { intermediateFloats.reduce(0, +) + convScratchFloats }
    package var scratchCount: Int { workers * workerFloats }

    /// `tail`: the tail convolution and its input's plane, when the chain has one.
    package init(_ convs: [ChainConv], frames: Int, height: Int, width: Int,
                 tail: (conv: ChainConv, height: Int, width: Int)? = nil, context: KernelContext) throws {
        guard convs.count >= 2 else { throw BLError(.invalidArgument, "convChain: needs two convolutions or more, found \(convs.count)") }
        let serial = context.serialized
        func check(_ c: ChainConv, _ name: String) throws {
            guard c.weights.runsInChain else {
                throw BLError(.invalidArgument, "convChain: \(name) runs \(c.weights.path) with \(c.weights.params.groups) group(s), not an ungrouped packed kernel")
            }
        }
        var planes = [(channels: Int, height: Int, width: Int)]()
        var h = height, w = width, scratch = 0
        for (i, c) in convs.enumerated() {
            let p = c.weights.params
            if i > 0, case let given = convs[i - 1].weights.params.outChannels, given != p.inChannels {
                throw BLError(.invalidArgument, "convChain: convolution \(i) takes \(p.inChannels) channels, convolution \(i - 1) gives \(given)")
            }
            try check(c, "convolution \(i)")
            planes.append((p.inChannels, h, w))
            scratch = max(scratch, try Kernels.conv2dScratchCount(c.weights, frames: 1, height: h, width: w, context: serial))
            (h, w) = try p.outputSize(height: h, width: w)
        }
        let out = (channels: convs[convs.count - 1].weights.params.outChannels, height: h, width: w)
        planes.append(out)
        self.planes = planes
        var inner = Array(planes[1..<(planes.count - 1)])
        if let tail {
            let p = tail.conv.weights.params
            try check(tail.conv, "the tail convolution")
            let (th, tw) = try p.outputSize(height: tail.height, width: tail.width)
            guard p.outChannels == out.channels, th == out.height, tw == out.width else {
                throw BLError(.invalidArgument, "convChain: the tail convolution gives \(p.outChannels)x\(th)x\(tw), the chain \(out.channels)x\(out.height)x\(out.width)")
            }
            scratch = max(scratch, try Kernels.conv2dScratchCount(tail.conv.weights, frames: 1, height: tail.height,
                                                                  width: tail.width, context: serial))
            tailFrame = try Check.product([p.inChannels, tail.height, tail.width], in: "convChain")
            inner.append(out)
        } else {
            tailFrame = 0
        }
        intermediateFloats = try inner.map {
            (try Check.product([$0.channels, $0.height, $0.width], in: "convChain") + 15) & ~15
        }
        convScratchFloats = (scratch + 15) & ~15
        workers = max(1, min(context.threads, frames))
    }
}

extension Kernels {
    /// Runs convolutions `convs` one after another, frame by frame: each worker takes a whole
    /// frame and runs every convolution of the chain on it single-threaded, the intermediate
    /// values staying in its own scratch (in its core's caches) instead of going through memory
    /// for all frames. The last convolution adds `residual` (laid out as `output`) before its
    /// ReLU. `input` [frames, C, H, W]; `output` [frames, K, OH, OW]; `scratch` holds
    /// `ConvChainTiling.scratchCount` floats and overlaps neither.
    /// With `tail` (instead of `residual`), the last convolution's result is the residual of the
    /// tail convolution of the tail's input, whose ReLU ends the chain. With `threadSeconds` (one
    /// entry per convolution, the tail last), each convolution's time summed over the workers is
    /// added to its entry (for profiles).
    package static func convChain(_ input: UnsafePointer<Float>, frames: Int, height: Int, width: Int,
                                  convs: [ChainConv], residual: UnsafePointer<Float>?, tail: ChainTail? = nil,
                                  output: UnsafeMutablePointer<Float>,
                                  scratch: UnsafeMutablePointer<Float>?, scratchCount: Int,
                                  threadSeconds: Locked<[Double]>? = nil,
                                  context: KernelContext) throws {
        let t = try ConvChainTiling(convs, frames: frames, height: height, width: width,
                                    tail: tail.map { ($0.conv, $0.height, $0.width) }, context: context)
        guard scratchCount >= t.scratchCount, let scratch else {
            throw BLError(.invalidArgument, "convChain: scratch of \(scratchCount) floats, \(t.scratchCount) needed")
        }
        guard tail == nil || residual == nil else {
            throw BLError(.invalidArgument, "convChain: a chain with a tail convolution takes no other residual")
        }
        let steps = convs + (tail.map { [$0.conv] } ?? [])
        let tailInput = tail.map { SharedPointer($0.input) }
        if frames == 0 { return }
        context.ensureBLASThreads()
        let serial = context.serialized
        let xs = SharedPointer(input), os = SharedPointer(output), ss = SharedPointer(scratch)
        let rs = residual.map { SharedPointer($0) }
        let inFrame = t.planes[0].channels * t.planes[0].height * t.planes[0].width
        let outPlane = t.planes[t.planes.count - 1]
        let outFrame = outPlane.channels * outPlane.height * outPlane.width
        let next = TileCounter()
        let failure = Locked<BLError?>(nil)
        @Sendable func work(_ worker: Int) {
            let mine = ss.p + worker * t.workerFloats
            let convScratch = t.convScratchFloats > 0 ? mine + t.intermediateFloats.reduce(0, +) : nil
            var seconds = [Double](repeating: 0, count: threadSeconds == nil ? 0 : steps.count)
            defer { if let threadSeconds { threadSeconds.withLock { for i in seconds.indices { $0[i] += seconds[i] } } } }
            while let f = next.take(below: frames) {
                var src = UnsafePointer(xs.p + f * inFrame)
                var slot = mine
                do {
                    for (i, c) in steps.enumerated() {
                        let last = i == steps.count - 1
                        let dst = last ? os.p + f * outFrame : slot
                        // The tail reads its own input, and the chain's last result as its residual.
                        let isTail = tail != nil && last
                        let (h, w) = isTail ? (tail?.height ?? 0, tail?.width ?? 0) : (t.planes[i].height, t.planes[i].width)
                        let from = isTail ? UnsafePointer((tailInput?.p ?? xs.p) + f * t.tailFrame) : src
                        let res = !last ? nil : isTail ? src : rs.map { UnsafePointer($0.p + f * outFrame) }
                        let start = seconds.isEmpty ? 0 : MonotonicClock.seconds()
                        try Kernels.conv2d(from, frames: 1, height: h, width: w, weights: c.weights, bias: c.bias,
                                           residual: res, relu: c.relu, output: dst, scratch: convScratch,
                                           scratchCount: t.convScratchFloats, context: serial)
                        if !seconds.isEmpty { seconds[i] += MonotonicClock.seconds() - start }
                        if !last {
                            src = UnsafePointer(slot)
                            slot += t.intermediateFloats[i]
                        }
                    }
                } catch {
                    let e = error as? BLError ?? BLError(.internal, "convChain: \(error)")
                    failure.withLock { if $0 == nil { $0 = e } }
                    return
                }
            }
        }
        context.parallelParts(t.workers, parts: t.workers, work: Int.max) { worker, _, _ in work(worker) }
        if let e = failure.withLock({ $0 }) { throw e }
    }
}
