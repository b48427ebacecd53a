import BLCore

/// Pillow's `Image.resize(size, Image.BILINEAR)` on 8-bit images, reproduced to the byte.
///
/// Pillow resamples with a separable triangle filter whose support widens with the downscale
/// factor (so downscaling averages every covered source pixel: antialiasing). Per output axis:
/// - `scale = inSize / outSize`, `filterscale = max(scale, 1)`, `support = 1 * filterscale`;
/// - output pixel `i` has centre `c = (i + 0.5) * scale` and reads source pixels
///   `[Int(c - support + 0.5), Int(c + support + 0.5))` clamped to the image;
/// - weights `tri((j - c + 0.5) / filterscale)` are normalised to sum 1 (in double), then turned into
///   fixed point with 22 fractional bits, rounding half away from zero;
/// - each sample is `clamp((2^21 + sum(pixel * weight)) >> 22, 0, 255)` in 32-bit integers.
/// The horizontal pass runs first (only over the source rows the vertical pass reads), then the
/// vertical pass; a pass whose size does not change is skipped, and an unchanged size is a copy.
package enum PillowResample {
    static let precisionBits = 22

    /// Fixed-point filter taps of one axis: output `i` reads `count[i]` source samples from
    /// `first[i]`, with weights `weights[i * taps ..< i * taps + count[i]]`.
    struct Taps {
        var taps: Int
        var first: [Int]
        var count: [Int]
        var weights: [Int32]
    }

    /// The triangle (bilinear) kernel, support 1.
    @inline(__always)
    static func triangle(_ x: Double) -> Double {
        let a = x < 0 ? -x : x
        return a < 1 ? 1 - a : 0
    }

    /// Double-precision weights, as Pillow's `precompute_coeffs` for the box `[in0, in1)`
    /// (coordinates are single precision there, as in Pillow).
    /// Only the outputs in `outputs` (all when nil) are computed, at indices from 0: each output's
    /// weights depend on its own position alone, so a window of the result costs only its size.
    static func doubleTaps(inSize: Int, in0: Float, in1: Float, outSize: Int,
                           outputs: Range<Int>? = nil) -> (taps: Int, first: [Int], count: [Int], weights: [Double]) {
        let outputs = outputs ?? 0..<outSize
        let scale = Double(in1 - in0) / Double(outSize)
        let filterscale = max(scale, 1.0)
        let support = 1.0 * filterscale
        let taps = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outputs.count)
        var count = [Int](repeating: 0, count: outputs.count)
        var weights = [Double](repeating: 0, count: outputs.count * taps)
        let inverse = 1.0 / filterscale
        for (i, o) in outputs.enumerated() {
            let center = Double(in0) + (Double(o) + 0.5) * scale
            var lo = Int(center - support + 0.5)  // truncation toward zero, as C's (int)
            if lo < 0 { lo = 0 }
            var hi = Int(center + support + 0.5)
            if hi > inSize { hi = inSize }
            let n = max(hi - lo, 0)
            var total = 0.0
            for j in 0..<n {
                let w = triangle((Double(j + lo) - center + 0.5) * inverse)
                weights[i * taps + j] = w
                total += w
            }
            if total != 0 {
                for j in 0..<n { weights[i * taps + j] /= total }
            }
            first[i] = lo
            count[i] = n
        }
        return (taps, first, count, weights)
    }

    /// Weights in fixed point (`normalize_coeffs_8bpc`).
    static func taps(inSize: Int, outSize: Int, outputs: Range<Int>? = nil) -> Taps {
        let d = doubleTaps(inSize: inSize, in0: 0, in1: Float(inSize), outSize: outSize, outputs: outputs)
        let one = Double(1 << precisionBits)
        let fixed = d.weights.map { w -> Int32 in
            w < 0 ? Int32(-0.5 + w * one) : Int32(0.5 + w * one)
        }
        return Taps(taps: d.taps, first: d.first, count: d.count, weights: fixed)
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> Int32(precisionBits)
        return s <= 0 ? 0 : (s >= 255 ? 255 : UInt8(truncatingIfNeeded: s))
    }

    /// Resizes to `width` x `height` exactly as Pillow's `resize((width, height), BILINEAR)` does
    /// for an RGB image (whole-image box, no `reducing_gap`). A non-positive size, or an image whose
    /// `rgb` does not hold `width * height * 3` bytes, gives an empty (0 x 0) image.
    package static func resizeBilinear(_ img: Image8, width: Int, height: Int) -> Image8 {
        resizeBilinear(img, width: width, height: height, columns: 0..<max(width, 0), rows: 0..<max(height, 0))
    }

    /// The window `columns` x `rows` (clamped to the output) of `resizeBilinear(img, width, height)`,
    /// byte for byte, computed without the rest of the resized image: memory and time follow the
    /// window, not the scaled size (a 262144x16 frame scaled to a short side of 224 is 3.7 M
    /// pixels wide; its 224x224 centre crop needs only those pixels).
    package static func resizeBilinear(_ img: Image8, width: Int, height: Int, columns: Range<Int>, rows: Range<Int>) -> Image8 {
        if width <= 0 || height <= 0 || !img.isConsistent { return Image8(unchecked: 0, 0, []) }
        let cols = columns.clamped(to: 0..<width), rows = rows.clamped(to: 0..<height)
        if cols.isEmpty || rows.isEmpty { return Image8(unchecked: 0, 0, []) }
        if width == img.width && height == img.height {
            if cols == 0..<width && rows == 0..<height { return img }
            return img.cropped(left: cols.lowerBound, top: rows.lowerBound, width: cols.count, height: rows.count)
        }
        let needH = width != img.width
        let needV = height != img.height
        // Unscaled axes keep the window by cropping the source first.
        var source = img
        if !needH || !needV {
            let x = needH ? 0..<img.width : cols, y = needV ? 0..<img.height : rows
            source = img.cropped(left: x.lowerBound, top: y.lowerBound, width: x.count, height: y.count)
        }
        let vt = needV ? taps(inSize: img.height, outSize: height, outputs: rows) : nil
        if needH {
            // Only the source rows the vertical pass reads are filtered horizontally.
            let rowRange = vt.map { $0.first[0]..<($0.first[rows.count - 1] + $0.count[rows.count - 1]) } ?? 0..<source.height
            let ht = taps(inSize: img.width, outSize: width, outputs: cols)
            source = horizontal(source, taps: ht, width: cols.count, rows: rowRange)
            if let vt {
                let shifted = Taps(taps: vt.taps, first: vt.first.map { $0 - rowRange.lowerBound }, count: vt.count, weights: vt.weights)
                return vertical(source, taps: shifted, height: rows.count)
            }
            return source
        }
        if let vt { return vertical(source, taps: vt, height: rows.count) }
        return source
    }

    /// [rows.count, width, 3] from [img.height, img.width, 3]: each output row filters one source row.
    static func horizontal(_ img: Image8, taps t: Taps, width: Int, rows: Range<Int>) -> Image8 {
        let inW = img.width
        var out = [UInt8](repeating: 0, count: rows.count * width * 3)
        let half = Int32(1) << Int32(precisionBits - 1)
        out.withUnsafeMutableBufferPointer { dst in
            img.rgb.withUnsafeBufferPointer { src in
                t.weights.withUnsafeBufferPointer { k in
                    for (oy, y) in rows.enumerated() {
                        let srow = y * inW * 3
                        let drow = oy * width * 3
                        for x in 0..<width {
                            let lo = t.first[x], n = t.count[x], kb = x * t.taps
                            var s0 = half, s1 = half, s2 = half
                            var p = srow + lo * 3
                            for j in 0..<n {
                                let w = k[kb + j]
                                s0 &+= Int32(src[p]) &* w
                                s1 &+= Int32(src[p + 1]) &* w
                                s2 &+= Int32(src[p + 2]) &* w
                                p += 3
                            }
                            dst[drow + x * 3] = clip8(s0)
                            dst[drow + x * 3 + 1] = clip8(s1)
                            dst[drow + x * 3 + 2] = clip8(s2)
                        }
                    }
                }
            }
        }
        return Image8(unchecked: width, rows.count, out)
    }

    /// [height, img.width, 3] from [img.height, img.width, 3]: each output row mixes source rows.
    static func vertical(_ img: Image8, taps t: Taps, height: Int) -> Image8 {
        let rowLen = img.width * 3
        var out = [UInt8](repeating: 0, count: height * rowLen)
        let half = Int32(1) << Int32(precisionBits - 1)
        var acc = [Int32](repeating: 0, count: rowLen)
        out.withUnsafeMutableBufferPointer { dst in
            img.rgb.withUnsafeBufferPointer { src in
                t.weights.withUnsafeBufferPointer { k in
                    acc.withUnsafeMutableBufferPointer { a in
                        for y in 0..<height {
                            let lo = t.first[y], n = t.count[y], kb = y * t.taps
                            for i in 0..<rowLen { a[i] = half }
                            // Integer sums are exact, so accumulating row by row equals Pillow's per-pixel order.
                            guard let ap = a.baseAddress, let sp0 = src.baseAddress else { return }
                            for j in 0..<n {
                                let w = k[kb + j]
                                let sp = sp0 + (lo + j) * rowLen
                                for i in 0..<rowLen { ap[i] &+= Int32(truncatingIfNeeded: sp[i]) &* w }
                            }
                            let d = y * rowLen
                            for i in 0..<rowLen { dst[d + i] = clip8(a[i]) }
                        }
                    }
                }
            }
        }
        return Image8(unchecked: img.width, height, out)
    }
}
