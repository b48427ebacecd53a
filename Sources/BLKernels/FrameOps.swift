import BLCore

extension Kernels {
    /// Number of frames of one parity (0: even, 1: odd) in a clip of T frames.
    package static func parityFrameCount(framesPerClip T: Int, parity: Int) -> Int {
        (T - parity + 1) / 2
    }

    /// Selects the even (`parity` 0) or odd (`parity` 1) frames of every clip, keeping order:
    /// bLVNet's little-branch (`range(0, T, 2)`) and big-branch (`range(1, T, 2)`) frame lists.
    ///
    ///     input  [N*T, S]  (S = C*H*W floats per frame)
    ///     output [N*T', S],  T' = parityFrameCount(T, parity)
    ///     output[n*T' + j] = input[n*T + 2j + parity]
    package static func selectFrames(_ input: UnsafePointer<Float>, clips N: Int, framesPerClip T: Int,
                                    frameSize S: Int, parity: Int, output: UnsafeMutablePointer<Float>) throws {
        guard parity == 0 || parity == 1 else {
            throw BLError(.invalidArgument, "selectFrames: parity must be 0 or 1, found \(parity)")
        }
        try Check.positive([("frames per clip", T)], in: "selectFrames")
        try Check.nonNegative([("clips", N), ("frame size", S)], in: "selectFrames")
        _ = try Check.product([N, T, S], in: "selectFrames")
        let tp = parityFrameCount(framesPerClip: T, parity: parity)
        for n in 0..<N {
            for j in 0..<tp {
                (output + (n * tp + j) * S).update(from: input + (n * T + 2 * j + parity) * S, count: S)
            }
        }
    }

    /// Duplicates every frame: `[M, S] -> [2M, S]`, frame i to frames 2i and 2i+1
    /// (bLVNet's `x[range(0, n, 2)] = big; x[range(1, n, 2)] = big`).
    package static func duplicateFrames(_ input: UnsafePointer<Float>, frames M: Int, frameSize S: Int,
                                       output: UnsafeMutablePointer<Float>) throws {
        try Check.nonNegative([("frames", M), ("frame size", S)], in: "duplicateFrames")
        _ = try Check.product([2, M, S], in: "duplicateFrames")
        for i in 0..<M {
            (output + 2 * i * S).update(from: input + i * S, count: S)
            (output + (2 * i + 1) * S).update(from: input + i * S, count: S)
        }
    }

    /// Elementwise `output = act(a + b)` over `count` floats (act = ReLU when `relu`).
    /// bLVNet adds big-branch frame j of a clip to little-branch frame j; with both branches laid
    /// out `[N*T/2, C, H, W]` that is this plain add. `output` may be `a` or `b`.
    package static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, relu: Bool = false,
                           output: UnsafeMutablePointer<Float>, context: KernelContext) {
        guard count > 0 else { return }
        let aS = SharedPointer(a), bS = SharedPointer(b), oS = SharedPointer(output)
        context.parallelChunks(count, work: count) { lo, hi in
            let a = UnsafePointer(aS.p), b = UnsafePointer(bS.p), o = oS.p
            if relu {
                for i in lo..<hi { o[i] = max(a[i] + b[i], 0) }
            } else {
                for i in lo..<hi { o[i] = a[i] + b[i] }
            }
        }
    }

    /// Elementwise `output = max(input, 0)`; `output` may be `input`.
    package static func relu(_ input: UnsafePointer<Float>, count: Int, output: UnsafeMutablePointer<Float>,
                            context: KernelContext) {
        guard count > 0 else { return }
        let iS = SharedPointer(input), oS = SharedPointer(output)
        context.parallelChunks(count, work: count) { lo, hi in
            for i in lo..<hi { oS.p[i] = max(iS.p[i], 0) }
        }
    }
}
