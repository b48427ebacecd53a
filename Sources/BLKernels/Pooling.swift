import BLCore

extension Kernels {
    /// Output plane size of `avgPool3x3s2p1`: `floor((H + 2 - 3)/2) + 1` = `(H - 1)/2 + 1`.
    package static func avgPool3x3s2p1OutputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height - 1) / 2 + 1, (width - 1) / 2 + 1)
    }

    /// `nn.AvgPool2d(3, stride=2, padding=1)` (count_include_pad=True, ceil_mode=False): every
    /// window sum is divided by 9, padding included.
    ///
    ///     input  [F, C, H, W]
    ///     output [F, C, OH, OW],  OH = (H - 1)/2 + 1, OW = (W - 1)/2 + 1
    ///     output[p, y, x] = (1/9) * sum_{i,j in 0..<3, inside} input[p, 2y - 1 + i, 2x - 1 + j]
    package static func avgPool3x3s2p1(_ input: UnsafePointer<Float>, planes P: Int, height H: Int, width W: Int,
                                      output: UnsafeMutablePointer<Float>, context: KernelContext) throws {
        try Check.positive([("height", H), ("width", W)], in: "avgPool3x3s2p1")
        try Check.nonNegative([("planes (F*C)", P)], in: "avgPool3x3s2p1")
        _ = try Check.product([P, H, W], in: "avgPool3x3s2p1")
        let (OH, OW) = avgPool3x3s2p1OutputSize(height: H, width: W)
        let xs = SharedPointer(input), os = SharedPointer(output)
        context.parallelChunks(P, work: P * H * W) { lo, hi in
            // Separable: sum the (up to) three input rows of an output row, then three columns.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: W + 2) { buffer in
                guard let row = buffer.baseAddress else { return }
                row[0] = 0  // left padding column; row[1...W] holds the column sums
                row[W + 1] = 0
                let r = row + 1
                for plane in lo..<hi {
                    let x = UnsafePointer(xs.p) + plane * H * W, o = os.p + plane * OH * OW
                    for y in 0..<OH {
                        let y0 = 2 * y - 1
                        let a = x + max(y0, 0) * W, m = x + (y0 + 1) * W
                        if y0 >= 0 && y0 + 2 < H {
                            let c = m + W
                            for k in 0..<W { r[k] = a[k] + m[k] + c[k] }
                        } else if y0 >= 0 {
                            for k in 0..<W { r[k] = a[k] + m[k] }
                        } else if y0 + 2 < H {
                            let c = m + W
                            for k in 0..<W { r[k] = m[k] + c[k] }
                        } else {
                            for k in 0..<W { r[k] = m[k] }
                        }
                        let d = o + y * OW
                        // Output x covers padded-row entries 2x, 2x+1, 2x+2 (row[0] and row[W+1] are 0).
                        for xx in 0..<OW { d[xx] = (row[2 * xx] + row[2 * xx + 1] + row[2 * xx + 2]) / 9 }
                    }
                }
            }
        }
    }

    /// Oracle for `avgPool3x3s2p1` (Double accumulation, division by 9).
    package static func avgPool3x3s2p1Naive(_ input: UnsafePointer<Float>, planes P: Int, height H: Int, width W: Int,
                                           output: UnsafeMutablePointer<Float>) {
        let OH = (H + 2 - 3) / 2 + 1, OW = (W + 2 - 3) / 2 + 1
        for p in 0..<P {
            for y in 0..<OH {
                for x in 0..<OW {
                    var s = 0.0
                    for i in 0..<3 {
                        for j in 0..<3 {
                            let iy = 2 * y - 1 + i, ix = 2 * x - 1 + j
                            if iy >= 0 && iy < H && ix >= 0 && ix < W {
                                s += Double(input[(p * H + iy) * W + ix])
                            }
                        }
                    }
                    output[(p * OH + y) * OW + x] = Float(s / 9)
                }
            }
        }
    }

    /// Global average pooling (`AdaptiveAvgPool2d(1)` then flatten).
    ///
    ///     input  [F, C, H, W]  ->  output [F, C],  output[p] = mean over the H*W plane p
    package static func globalAvgPool(_ input: UnsafePointer<Float>, planes P: Int, height H: Int, width W: Int,
                                     output: UnsafeMutablePointer<Float>, context: KernelContext) throws {
        try Check.positive([("height", H), ("width", W)], in: "globalAvgPool")
        try Check.nonNegative([("planes (F*C)", P)], in: "globalAvgPool")
        let hw = try Check.product([H, W], in: "globalAvgPool")
        _ = try Check.product([P, hw], in: "globalAvgPool")
        let xs = SharedPointer(input), os = SharedPointer(output)
        context.parallelChunks(P, work: P * hw) { lo, hi in
            for p in lo..<hi {
                let x = UnsafePointer(xs.p) + p * hw
                // Eight float lanes, then a Double total: vectorizes and stays accurate.
                var lanes = SIMD8<Float>()
                var k = 0
                while k + 8 <= hw {
                    lanes += SIMD8<Float>(x[k], x[k + 1], x[k + 2], x[k + 3], x[k + 4], x[k + 5], x[k + 6], x[k + 7])
                    k += 8
                }
                var s = 0.0
                for l in 0..<8 { s += Double(lanes[l]) }
                while k < hw { s += Double(x[k]); k += 1 }
                os.p[p] = Float(s / Double(hw))
            }
        }
    }

    /// Oracle for `globalAvgPool` (Double accumulation).
    package static func globalAvgPoolNaive(_ input: UnsafePointer<Float>, planes P: Int, height H: Int, width W: Int,
                                          output: UnsafeMutablePointer<Float>) {
        let hw = H * W
        for p in 0..<P {
            var s = 0.0
            for k in 0..<hw { s += Double(input[p * hw + k]) }
            output[p] = Float(s / Double(hw))
        }
    }
}

extension Kernels {
    /// Output size of a square average pooling window (`ceil_mode=False`).
    package static func avgPoolOutputSize(height: Int, width: Int, kernel k: Int, stride s: Int, padding p: Int) -> (height: Int, width: Int) {
        ((height + 2 * p - k) / s + 1, (width + 2 * p - k) / s + 1)
    }

    /// `nn.AvgPool2d(k, stride=s, padding=p)` for any square window, `count_include_pad=True`,
    /// `ceil_mode=False`: every window sum is divided by `k*k`. Float accumulation per window.
    ///
    ///     input  [P, H, W] planes
    ///     output [P, OH, OW],  OH = (H + 2p - k)/s + 1, OW likewise
    ///     output[q, y, x] = (1/k^2) * sum_{i,j in 0..<k, inside} input[q, s*y - p + i, s*x - p + j]
    package static func avgPool(_ input: UnsafePointer<Float>, planes P: Int, height H: Int, width W: Int,
                                kernel k: Int, stride s: Int, padding p: Int, outHeight OH: Int, outWidth OW: Int,
                                output: UnsafeMutablePointer<Float>, context: KernelContext) throws {
        try Check.positive([("height", H), ("width", W), ("kernel", k), ("stride", s)], in: "avgPool")
        try Check.nonNegative([("planes", P), ("padding", p)], in: "avgPool")
        let expected = avgPoolOutputSize(height: H, width: W, kernel: k, stride: s, padding: p)
        guard p * 2 <= k, expected == (OH, OW), OH > 0, OW > 0 else {
            throw BLError(.invalidArgument, "avgPool: a \(k)x\(k)/\(s) window with padding \(p) over \(H)x\(W) gives \(expected.height)x\(expected.width), not \(OH)x\(OW)")
        }
        _ = try Check.product([P, H, W, k, k], in: "avgPool")
        let x = SharedPointer(input), o = SharedPointer(output)
        let inv = 1 / Float(k * k)
        context.parallelChunks(P, work: P * OH * OW * k * k) { lo, hi in
            for plane in lo..<hi {
                let src = UnsafePointer(x.p) + plane * H * W, dst = o.p + plane * OH * OW
                for y in 0..<OH {
                    let y0 = max(y * s - p, 0), y1 = min(y * s - p + k, H)
                    for xx in 0..<OW {
                        let x0 = max(xx * s - p, 0), x1 = min(xx * s - p + k, W)
                        var acc: Float = 0
                        if y0 < y1 && x0 < x1 {
                            for iy in y0..<y1 {
                                for ix in x0..<x1 { acc += src[iy * W + ix] }
                            }
                        }
                        dst[y * OW + xx] = acc * inv
                    }
                }
            }
        }
    }

    /// Oracle for `avgPool`: every window element visited with its padding test, Double accumulation.
    package static func avgPoolNaive(_ input: UnsafePointer<Float>, planes P: Int, height H: Int, width W: Int,
                                     kernel k: Int, stride s: Int, padding p: Int,
                                     output: UnsafeMutablePointer<Float>) {
        let (OH, OW) = avgPoolOutputSize(height: H, width: W, kernel: k, stride: s, padding: p)
        for q in 0..<P {
            for y in 0..<OH {
                for x in 0..<OW {
                    var acc = 0.0
                    for i in 0..<k {
                        for j in 0..<k {
                            let iy = s * y - p + i, ix = s * x - p + j
                            if iy >= 0 && iy < H && ix >= 0 && ix < W { acc += Double(input[(q * H + iy) * W + ix]) }
                        }
                    }
                    output[(q * OH + y) * OW + x] = Float(acc / Double(k * k))
                }
            }
        }
    }

    /// Inference BatchNorm as a per-channel affine map (`output` may be `input`).
    ///
    ///     input/output [M, C, H, W] as `planes = M*C` planes of `planeSize = H*W`
    ///     output[m, c, :] = input[m, c, :] * scale[c] + shift[c]
    package static func scaleShift(_ input: UnsafePointer<Float>, planes: Int, channels: Int, planeSize: Int,
                                   scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                                   output: UnsafeMutablePointer<Float>, context: KernelContext) throws {
        try Check.positive([("channels", channels)], in: "scaleShift")
        try Check.nonNegative([("planes", planes), ("planeSize", planeSize)], in: "scaleShift")
        guard planes % channels == 0 else {
            throw BLError(.invalidArgument, "scaleShift: \(planes) planes are not a whole number of \(channels)-channel frames")
        }
        _ = try Check.product([planes, planeSize], in: "scaleShift")
        let x = SharedPointer(input), o = SharedPointer(output)
        let sc = SharedPointer(scale), sh = SharedPointer(shift)
        context.parallelChunks(planes, work: planes * planeSize) { lo, hi in
            for plane in lo..<hi {
                let c = plane % channels
                let a = sc.p[c], b = sh.p[c]
                let src = UnsafePointer(x.p) + plane * planeSize, dst = o.p + plane * planeSize
                for i in 0..<planeSize { dst[i] = src[i] * a + b }
            }
        }
    }

    /// Oracle for `scaleShift`: one fused multiply-add per element in Double, rounded once.
    package static func scaleShiftNaive(_ input: UnsafePointer<Float>, planes: Int, channels: Int, planeSize: Int,
                                        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                                        output: UnsafeMutablePointer<Float>) {
        for plane in 0..<planes {
            let c = plane % channels
            for i in 0..<planeSize {
                let v = Double(input[plane * planeSize + i]) * Double(scale[c]) + Double(shift[c])
                output[plane * planeSize + i] = Float(v)
            }
        }
    }
}
