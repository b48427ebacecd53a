import BLCore

extension Kernels {
    /// Fully connected layer through `cblas_sgemm`.
    ///
    ///     input  [F, In]
    ///     weight [Out, In]   (PyTorch `nn.Linear.weight`)
    ///     bias   [Out] or nil
    ///     output [F, Out],  output[f, o] = bias[o] + sum_i input[f, i] * weight[o, i]
    package static func linear(_ input: UnsafePointer<Float>, rows F: Int, inFeatures In: Int, outFeatures Out: Int,
                              weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              output: UnsafeMutablePointer<Float>) throws {
        try Check.positive([("in features", In), ("out features", Out)], in: "linear")
        try Check.nonNegative([("rows", F)], in: "linear")
        guard F <= Int(Int32.max), In <= Int(Int32.max), Out <= Int(Int32.max) else {
            throw BLError(.invalidArgument, "linear: dimension exceeds 32-bit BLAS range")
        }
        if F == 0 { return }
        BLAS.sgemm(m: F, n: Out, k: In, a: input, lda: In, b: weight, ldb: In, transposeB: true, c: output, ldc: Out)
        if let bias {
            for f in 0..<F {
                let d = output + f * Out
                for o in 0..<Out { d[o] += bias[o] }
            }
        }
    }

    /// Oracle for `linear` (Double accumulation).
    package static func linearNaive(_ input: UnsafePointer<Float>, rows F: Int, inFeatures In: Int, outFeatures Out: Int,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                   output: UnsafeMutablePointer<Float>) {
        for f in 0..<F {
            for o in 0..<Out {
                var acc = Double(bias?[o] ?? 0)
                for i in 0..<In { acc += Double(input[f * In + i]) * Double(weight[o * In + i]) }
                output[f * Out + o] = Float(acc)
            }
        }
    }

    /// Mean over the frames of each clip (the video-level consensus of per-frame scores).
    ///
    ///     input  [N*T, K]  ->  output [N, K],  output[n, k] = (1/T) * sum_t input[n*T + t, k]
    package static func temporalMean(_ input: UnsafePointer<Float>, clips N: Int, framesPerClip T: Int, features K: Int,
                                    output: UnsafeMutablePointer<Float>) throws {
        try Check.positive([("frames per clip", T)], in: "temporalMean")
        try Check.nonNegative([("clips", N), ("features", K)], in: "temporalMean")
        _ = try Check.product([N, T, K], in: "temporalMean")
        for n in 0..<N {
            for k in 0..<K {
                var s = 0.0
                for t in 0..<T { s += Double(input[(n * T + t) * K + k]) }
                output[n * K + k] = Float(s / Double(T))
            }
        }
    }
}
