import BLCore

extension Kernels {
    /// Widens `count` float16 (or, with `bfloat16`, bfloat16) values to float32, 8 lanes at a time,
    /// split over the context's threads when large. Bit-exact with `HalfConversion` (subnormals,
    /// infinities and NaN payloads included).
    ///
    ///     source [count] UInt16 (any alignment)  ->  output [count] Float
    package static func widenHalf(_ source: UnsafeRawPointer, count: Int, bfloat16: Bool,
                                 output: UnsafeMutablePointer<Float>, context: KernelContext) {
        let src = SharedPointer(UnsafeMutableRawPointer(mutating: source).assumingMemoryBound(to: UInt8.self))
        let dst = SharedPointer(output)
        // Chunks of whole 8-lane groups.
        let groups = (count + 7) / 8
        context.parallelChunks(groups, work: count * 4) { lo, hi in
            let start = lo * 8, end = min(count, hi * 8)
            widenHalfRange(UnsafeRawPointer(src.p), from: start, to: end, bfloat16: bfloat16, output: dst.p)
        }
    }

    /// Branch-free scalar loops over typed pointers, which the compiler vectorizes; odd addresses
    /// (never produced by the package writer) take the unaligned path.
    static func widenHalfRange(_ s: UnsafeRawPointer, from start: Int, to end: Int, bfloat16: Bool,
                               output o: UnsafeMutablePointer<Float>) {
        guard start < end else { return }
        if Int(bitPattern: s) % 2 != 0 {
            for i in start..<end {
                let h = s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
                o[i] = bfloat16 ? HalfConversion.bfloat16ToFloat(h) : HalfConversion.halfToFloat(h)
            }
            return
        }
        let h = s.assumingMemoryBound(to: UInt16.self)
        if bfloat16 {
            widenBFloat16(h + start, count: end - start, output: o + start)
        } else {
            widenFloat16(h + start, count: end - start, output: o + start)
        }
    }

    static func widenBFloat16(_ h: UnsafePointer<UInt16>, count n: Int, output o: UnsafeMutablePointer<Float>) {
        for i in 0..<n { o[i] = Float(bitPattern: UInt32(h[i]) &<< 16) }
    }

    /// float16 -> float32 by exponent rebias; subnormals renormalized through a float subtraction,
    /// infinities/NaN get the all-ones exponent (payload kept).
    static func widenFloat16(_ h: UnsafePointer<UInt16>, count n: Int, output o: UnsafeMutablePointer<Float>) {
        let expMask: UInt32 = 0x7c00 << 13, rebias: UInt32 = 112 << 23
        let magic = Float(bitPattern: 113 << 23)
        for i in 0..<n {
            let x = UInt32(h[i])
            var v = (x & 0x7fff) &<< 13
            let e = v & expMask
            v &+= rebias
            let special = v &+ rebias
            let sub = (Float(bitPattern: v &+ (1 << 23)) - magic).bitPattern
            v = e == expMask ? special : v
            v = e == 0 ? sub : v
            o[i] = Float(bitPattern: v | ((x & 0x8000) &<< 16))
        }
    }
}
