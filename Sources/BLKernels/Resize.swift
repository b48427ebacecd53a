import BLCore

extension Kernels {
    /// Source index of output index `dst` for PyTorch `interpolate(mode='nearest')` given an
    /// output size (no scale factor), as ATen's `nearest_idx` computes it:
    /// same size -> `dst`; exactly double -> `dst >> 1`; otherwise, in float32,
    /// `scale = Float(input) / Float(output)` and `min(Int(floorf(Float(dst) * scale)), input - 1)`.
    @inlinable
    package static func nearestSourceIndex(_ dst: Int, input: Int, output: Int) -> Int {
        if output == input { return dst }
        if output == 2 * input { return dst >> 1 }
        let scale = Float(input) / Float(output)
        return min(Int((Float(dst) * scale).rounded(.down)), input - 1)
    }

    /// Nearest-neighbour resize, PyTorch `F.interpolate(x, size=(Ho, Wo))` (mode 'nearest'),
    /// optionally fused with "add then ReLU" as bLVNet's merge does (`relu(resize(big) + little)`).
    ///
    ///     input  [F, C, Hi, Wi]
    ///     addend [F, C, Ho, Wo] or nil
    ///     output [F, C, Ho, Wo]
    ///     output[p, y, x] = act(input[p, sy(y), sx(x)] + addend[p, y, x])
    ///     sy = nearestSourceIndex(y, Hi, Ho), sx likewise; act = ReLU when `relu`.
    ///
    /// `output` may be the same buffer as `addend` (each element is read before it is written);
    /// it must not overlap `input`.
    package static func resizeNearest(_ input: UnsafePointer<Float>, planes P: Int, inHeight Hi: Int, inWidth Wi: Int,
                                     outHeight Ho: Int, outWidth Wo: Int, addend: UnsafePointer<Float>? = nil,
                                     relu: Bool = false, output: UnsafeMutablePointer<Float>,
                                     context: KernelContext) throws {
        try Check.positive([("input height", Hi), ("input width", Wi), ("output height", Ho),
                            ("output width", Wo)], in: "resizeNearest")
        try Check.nonNegative([("planes (F*C)", P)], in: "resizeNearest")
        _ = try Check.product([P, max(Hi * Wi, Ho * Wo)], in: "resizeNearest")
        let xs = SharedPointer(input), os = SharedPointer(output), adds = addend.map { SharedPointer($0) }
        try withUnsafeTemporaryAllocation(of: Int.self, capacity: Ho + Wo) { table in
            guard let t = table.baseAddress else {
                throw BLError(.invalidArgument, "resizeNearest: empty index table")
            }
            for y in 0..<Ho { t[y] = nearestSourceIndex(y, input: Hi, output: Ho) }
            for x in 0..<Wo { t[Ho + x] = nearestSourceIndex(x, input: Wi, output: Wo) }
            let ts = SharedPointer(t)
            context.parallelChunks(P, work: P * Ho * Wo) { lo, hi in
                let sy = UnsafePointer(ts.p), sx = UnsafePointer(ts.p + Ho)
                for p in lo..<hi {
                    let src = UnsafePointer(xs.p) + p * Hi * Wi
                    for y in 0..<Ho {
                        let s = src + sy[y] * Wi
                        let o = p * Ho * Wo + y * Wo
                        let d = os.p + o
                        if let adds {
                            let a = UnsafePointer(adds.p) + o
                            if relu {
                                for x in 0..<Wo { d[x] = max(s[sx[x]] + a[x], 0) }
                            } else {
                                for x in 0..<Wo { d[x] = s[sx[x]] + a[x] }
                            }
                        } else if relu {
                            for x in 0..<Wo { d[x] = max(s[sx[x]], 0) }
                        } else {
                            for x in 0..<Wo { d[x] = s[sx[x]] }
                        }
                    }
                }
            }
        }
    }

    /// Oracle for `resizeNearest`: per element, index from `nearestSourceIndex`, add, ReLU.
    package static func resizeNearestNaive(_ input: UnsafePointer<Float>, planes P: Int, inHeight Hi: Int, inWidth Wi: Int,
                                          outHeight Ho: Int, outWidth Wo: Int, addend: UnsafePointer<Float>? = nil,
                                          relu: Bool = false, output: UnsafeMutablePointer<Float>) {
        for p in 0..<P {
            for y in 0..<Ho {
                for x in 0..<Wo {
                    let sy = nearestSourceIndex(y, input: Hi, output: Ho)
                    let sx = nearestSourceIndex(x, input: Wi, output: Wo)
                    let o = (p * Ho + y) * Wo + x
                    var v = input[(p * Hi + sy) * Wi + sx]
                    if let addend { v += addend[o] }
                    output[o] = relu ? max(v, 0) : v
                }
            }
        }
    }
}
