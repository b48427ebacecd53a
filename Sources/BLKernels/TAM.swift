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
    public static func tam(_ input: UnsafePointer<Float>, clips N: Int, framesPerClip T: Int, channels C: Int,
                           height H: Int, width W: Int, weights: UnsafePointer<Float>, blending b: Int,
                           output: UnsafeMutablePointer<Float>, context: KernelContext) throws {
        try Check.positive([("frames per clip", T), ("channels", C), ("height", H), ("width", W),
                            ("blending frames", b)], in: "tam")
        try Check.nonNegative([("clips", N)], in: "tam")
        let hw = try Check.product([H, W], in: "tam")
        _ = try Check.product([N, T, C, hw], in: "tam")
        let xs = SharedPointer(input), ws = SharedPointer(weights), os = SharedPointer(output)
        let rows = N * T * C
        context.parallelChunks(rows, work: rows * hw * b) { lo, hi in
            let x = UnsafePointer(xs.p), w = UnsafePointer(ws.p)
            for row in lo..<hi {
                let c = row % C, nt = row / C, t = nt % T
                let d = os.p + row * hw
                var first = true
                for i in 0..<b {
                    let tt = t + i - b / 2
                    if tt < 0 || tt >= T { continue }
                    let wi = w[i * C + c]
                    let s = x + ((nt + i - b / 2) * C + c) * hw
                    if first {
                        for k in 0..<hw { d[k] = wi * s[k] }
                        first = false
                    } else {
                        for k in 0..<hw { d[k] += wi * s[k] }
                    }
                }
                if first {
                    d.update(repeating: 0, count: hw)
                } else {
                    for k in 0..<hw { d[k] = max(d[k], 0) }
                }
            }
        }
    }

    /// Oracle for `tam` (Double accumulation), same shapes and semantics.
    public static func tamNaive(_ input: UnsafePointer<Float>, clips N: Int, framesPerClip T: Int, channels C: Int,
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
