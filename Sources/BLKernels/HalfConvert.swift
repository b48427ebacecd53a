import BLCore

extension Kernels {
    /// Widens `count` float16 (or, with `bfloat16`, bfloat16) values to float32, 8 lanes at a time,
    /// split over the context's threads when large. Bit-exact with `HalfConversion` (subnormals,
    /// infinities and NaN payloads included).
    ///
    ///     source [count] UInt16 (any alignment)  ->  output [count] Float
    public static func widenHalf(_ source: UnsafeRawPointer, count: Int, bfloat16: Bool,
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

    @inline(__always)
    static func widenHalfRange(_ s: UnsafeRawPointer, from start: Int, to end: Int, bfloat16: Bool,
                               output o: UnsafeMutablePointer<Float>) {
        var i = start
        if bfloat16 {
            while i + 8 <= end {
                let h = s.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self)
                let w = SIMD8<UInt32>(truncatingIfNeeded: h) &<< 16
                UnsafeMutableRawPointer(o + i).storeBytes(of: w, as: SIMD8<UInt32>.self)
                i += 8
            }
            while i < end {
                o[i] = HalfConversion.bfloat16ToFloat(s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                i += 1
            }
            return
        }
        let expMask = SIMD8<UInt32>(repeating: 0x7c00 << 13)
        let rebias = SIMD8<UInt32>(repeating: 112 << 23)
        let magic = SIMD8<Float>(repeating: Float(bitPattern: 113 << 23))
        while i + 8 <= end {
            let h = SIMD8<UInt32>(truncatingIfNeeded: s.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
            var v = (h & 0x7fff) &<< 13  // exponent and mantissa in float position
            let e = v & expMask
            v &+= rebias
            // Infinity / NaN: exponent all ones.
            v.replace(with: v &+ rebias, where: e .== expMask)
            // Zero / subnormal: renormalize through a float subtraction.
            let sub = unsafeBitCast(unsafeBitCast(v &+ (1 << 23), to: SIMD8<Float>.self) - magic, to: SIMD8<UInt32>.self)
            v.replace(with: sub, where: e .== 0)
            v |= (h & 0x8000) &<< 16
            UnsafeMutableRawPointer(o + i).storeBytes(of: v, as: SIMD8<UInt32>.self)
            i += 8
        }
        while i < end {
            o[i] = HalfConversion.halfToFloat(s.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            i += 1
        }
    }
}
