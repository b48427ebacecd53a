import BLCore

extension Kernels {
    /// Temporal aggregation module (bLVNet-TAM `TAM`): depthwise 1x1 blending of neighbouring
    /// frames within each clip, then ReLU.
    ///
    ///     input   [N*T, C, H, W]   (clip n, frame t at index n*T + t)
    ///     weights [b, C]           weights[i] is blending conv i (for b == 3: prev, curr, next)
    ///     output  [N*T, C, H, W]
    ///
    ///     output[n,t,c] = ReLU( sum_{i < b, 0 <= t+i-b/2 < T} weights[i,c] * input[n, t+i-b/2, c] )
    ///
    /// Terms that fall outside the clip are zero; clips never mix. `b / 2` is integer division.
    ///
    /// Two layouts spare bLVNet's frame copies around the stage TAMs:
    /// - `inputDuplicated`: `input` is `[N*T/2, C, H, W]` and stands for the clip in which every
    ///   frame appears twice (frame t of clip n is input frame `n*T/2 + t/2`; T must be even), as
    ///   `duplicateFrames` would make it.
    /// - `oddOutput`: even frames go to `output` `[N*T0, C, H, W]`, odd frames to `oddOutput`
    ///   `[N*T1, C, H, W]` (T0, T1 = `parityFrameCount(T, 0 / 1)`; frame t to index n*Tp + t/2),
    ///   as `selectFrames` with parity 0 and 1 would split it.
    ///
    /// With `inPlaceScratch` the split is written over the input: `output` must be `input` and
    /// `oddOutput` must be `input + N*T0*C*H*W` (the two selections fill the input's memory).
    /// Every output plane of channel c lands on a plane of channel c, so the workers take whole
    /// channels, each first copying its channel's N*T frames into its slot of the scratch
    /// (`tamInPlaceScratchCount` floats) and blending from there.
    package static func tam(_ input: UnsafePointer<Float>, clips N: Int, framesPerClip T: Int, channels C: Int,
                           height H: Int, width W: Int, weights: UnsafePointer<Float>, blending b: Int,
                           inputDuplicated: Bool = false,
                           output: UnsafeMutablePointer<Float>, oddOutput: UnsafeMutablePointer<Float>? = nil,
                           inPlaceScratch: UnsafeMutablePointer<Float>? = nil, scratchCount: Int = 0,
                           context: KernelContext) throws {
        try Check.positive([("frames per clip", T), ("channels", C), ("height", H), ("width", W),
                            ("blending frames", b)], in: "tam")
        try Check.nonNegative([("clips", N)], in: "tam")
        if inputDuplicated && T % 2 != 0 {
            throw BLError(.invalidArgument, "tam: duplicated input needs an even frame count, found \(T)")
        }
        let hw = try Check.product([H, W], in: "tam")
        let total = try Check.product([N, T, C, hw], in: "tam")
        let xs = SharedPointer(input), ws = SharedPointer(weights), os = SharedPointer(output)
        let odds = oddOutput.map { SharedPointer($0) }
        let t0 = parityFrameCount(framesPerClip: T, parity: 0), t1 = parityFrameCount(framesPerClip: T, parity: 1)

        /// Output plane (n, t, c) from the source planes `src(frame)` (frames as `input` numbers them).
        @Sendable func blend(n: Int, t: Int, c: Int, _ plane: (Int) -> UnsafePointer<Float>) {
            let d: UnsafeMutablePointer<Float>
            if let odds {
                d = t % 2 == 0 ? os.p + ((n * t0 + t / 2) * C + c) * hw : odds.p + ((n * t1 + t / 2) * C + c) * hw
            } else {
                d = os.p + ((n * T + t) * C + c) * hw
            }
            // Terms i in iLo..<iHi fall inside the clip (source frame t + i - b/2).
            let iLo = max(0, b / 2 - t), iHi = min(b, T - t + b / 2)
            let w = UnsafePointer(ws.p)
            func src(_ i: Int) -> UnsafePointer<Float> {
                let tt = t + i - b / 2
                return plane(inputDuplicated ? n * (T / 2) + tt / 2 : n * T + tt)
            }
            func wt(_ i: Int) -> Float { w[i * C + c] }
            switch iHi - iLo {
            case ...0:
                d.update(repeating: 0, count: hw)
            case 1:
                let a = src(iLo), wa = wt(iLo)
                for k in 0..<hw { d[k] = max(wa * a[k], 0) }
            case 2:
                let a = src(iLo), wa = wt(iLo), bb = src(iLo + 1), wb = wt(iLo + 1)
                for k in 0..<hw { d[k] = max(wa * a[k] + wb * bb[k], 0) }
            case 3:
                let a = src(iLo), wa = wt(iLo), bb = src(iLo + 1), wb = wt(iLo + 1)
                let cc = src(iLo + 2), wc = wt(iLo + 2)
                for k in 0..<hw { d[k] = max(wa * a[k] + wb * bb[k] + wc * cc[k], 0) }
            default:
                let a = src(iLo), wa = wt(iLo), bb = src(iLo + 1), wb = wt(iLo + 1)
                let cc = src(iLo + 2), wc = wt(iLo + 2)
                for k in 0..<hw { d[k] = wa * a[k] + wb * bb[k] + wc * cc[k] }
                for i in (iLo + 3)..<iHi {
                    let e = src(i), we = wt(i)
                    for k in 0..<hw { d[k] += we * e[k] }
                }
                for k in 0..<hw { d[k] = max(d[k], 0) }
            }
        }

        if let inPlaceScratch {
            let need = try tamInPlaceScratchCount(clips: N, framesPerClip: T, height: H, width: W, channels: C,
                                                  context: context)
            guard let odds, !inputDuplicated, UnsafePointer(output) == input, odds.p == output + N * t0 * C * hw else {
                throw BLError(.invalidArgument, "tam: an in-place split needs output == input and the odd frames right after the even ones")
            }
            guard scratchCount >= need else {
                throw BLError(.invalidArgument, "tam: in-place scratch of \(scratchCount) floats, \(need) needed")
            }
            let ss = SharedPointer(inPlaceScratch), frames = N * T
            let parts = min(max(1, context.threads), C)
            context.parallelParts(C, parts: parts, work: total * b) { part, lo, hi in
                let copy = ss.p + part * frames * hw
                for c in lo..<hi {
                    for f in 0..<frames { (copy + f * hw).update(from: xs.p + (f * C + c) * hw, count: hw) }
                    for f in 0..<frames { blend(n: f / T, t: f % T, c: c) { UnsafePointer(copy + $0 * hw) } }
                }
            }
            return
        }
        let rows = N * T * C
        context.parallelChunks(rows, work: rows * hw * b) { lo, hi in
            for row in lo..<hi {
                let c = row % C, nt = row / C
                blend(n: nt / T, t: nt % T, c: c) { UnsafePointer(xs.p) + ($0 * C + c) * hw }
            }
        }
    }

    /// Floats of scratch an in-place `tam` split needs: one copy of a channel's N*T frames per
    /// worker that takes channels.
    package static func tamInPlaceScratchCount(clips N: Int, framesPerClip T: Int, height H: Int, width W: Int,
                                               channels C: Int, context: KernelContext) throws -> Int {
        try Check.product([min(max(1, context.threads), max(1, C)), N, T, H, W], in: "tam")
    }

    /// Oracle for `tam` (Double accumulation), same shapes and semantics.
    package static func tamNaive(_ input: UnsafePointer<Float>, clips N: Int, framesPerClip T: Int, channels C: Int,
                                height H: Int, width W: Int, weights: UnsafePointer<Float>, blending b: Int,
                                output: UnsafeMutablePointer<Float>) {
        let hw = H * W
        for n in 0..<N {
            for t in 0..<T {
                for c in 0..<C {
                    for k in 0..<hw {
                        var acc = 0.0
                        for i in 0..<b {
                            let tt = t + i - b / 2
                            guard tt >= 0, tt < T else { continue }
                            acc += Double(weights[i * C + c]) * Double(input[((n * T + tt) * C + c) * hw + k])
                        }
                        output[((n * T + t) * C + c) * hw + k] = Float(max(acc, 0))
                    }
                }
            }
        }
    }
}
