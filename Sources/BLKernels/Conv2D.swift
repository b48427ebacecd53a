import BLCore
import Foundation

/// Geometry of a 2-D convolution (PyTorch `nn.Conv2d` without dilation).
package struct Conv2DParams: Sendable, Equatable, CustomStringConvertible {
    /// C: input channels.
    package var inChannels: Int
    /// K: output channels.
    package var outChannels: Int
    package var kernelH: Int
    package var kernelW: Int
    package var strideH: Int
    package var strideW: Int
    package var padH: Int
    package var padW: Int
    /// Channel groups: weight is `[K, C/groups, kh, kw]`; output channel k reads input channels
    /// of group `k / (K/groups)`.
    package var groups: Int

    package init(inChannels: Int, outChannels: Int, kernel: (Int, Int),
                stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), groups: Int = 1) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        (kernelH, kernelW) = kernel
        (strideH, strideW) = stride
        (padH, padW) = padding
        self.groups = groups
    }

    package var description: String {
        "conv \(inChannels)->\(outChannels) k\(kernelH)x\(kernelW) s\(strideH)x\(strideW) p\(padH)x\(padW) g\(groups)"
    }

    /// Number of weight elements: `K * C/groups * kh * kw`.
    package var weightCount: Int { outChannels * (inChannels / max(groups, 1)) * kernelH * kernelW }

    /// Output plane size: `floor((H + 2*ph - kh) / sh) + 1` (and likewise for W), after checking
    /// every field. Throws when the kernel does not fit the padded input.
    package func outputSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
        let k = "conv2d(\(self))"
        try Check.positive([("in channels", inChannels), ("out channels", outChannels),
                            ("kernel height", kernelH), ("kernel width", kernelW),
                            ("stride height", strideH), ("stride width", strideW),
                            ("groups", groups), ("input height", height), ("input width", width)], in: k)
        try Check.nonNegative([("pad height", padH), ("pad width", padW)], in: k)
        guard inChannels % groups == 0, outChannels % groups == 0 else {
            throw BLError(.invalidArgument, "\(k): channels \(inChannels)->\(outChannels) not divisible by groups \(groups)")
        }
        let ph = height + 2 * padH - kernelH, pw = width + 2 * padW - kernelW
        guard ph >= 0, pw >= 0 else {
            throw BLError(.invalidArgument, "\(k): kernel larger than padded input \(height)x\(width)")
        }
        return (ph / strideH + 1, pw / strideW + 1)
    }

    var isPointwiseStride1: Bool {
        kernelH == 1 && kernelW == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0
    }
}

/// Hands out tile indices 0, 1, 2, ... to the workers of one convolution.
final class TileCounter: Sendable {
    private let next = Locked(0)

    func take(below limit: Int) -> Int? {
        next.withLock { value in
            guard value < limit else { return nil }
            value += 1
            return value - 1
        }
    }
}

/// One GEMM's worth of a convolution: output rows `r0..<r0+rCount` of frames `f0..<f0+fCount`
/// (several frames only with whole planes).
struct ConvTile: Sendable {
    var f0: Int, fCount: Int, r0: Int, rCount: Int
}

/// How `conv2d` tiles its work; derived only from the shapes and the context so that
/// `conv2dScratchCount` and `conv2d` agree.
struct ConvPlan: Sendable, RowFrameTiling {
    var frames = 0, oh = 0, ow = 0, ohw = 0
    /// C * kh * kw: the GEMM inner dimension.
    var ck = 0
    /// 1x1 stride-1 unpadded: GEMM straight on the NCHW input.
    var direct = false
    /// Frames per GEMM; > 1 means columns of several frames side by side and a GEMM result buffer.
    var framesPerTile = 1
    /// Output rows per GEMM when `framesPerTile == 1`, and row tiles per frame.
    var rowsPerTile = 1, rowTilesPerFrame = 1
    var tileCount = 0
    /// Scratch slots (one per worker when workers take whole tiles).
    var slots = 1
    var colCount = 0, tmpCount = 0
    var slotCount: Int { colCount + tmpCount }
    var scratchCount: Int { slots * slotCount }

    init(_ p: Conv2DParams, frames: Int, height: Int, width: Int, context: KernelContext) throws {
        self.frames = frames
        (oh, ow) = try p.outputSize(height: height, width: width)
        try Check.nonNegative([("frames", frames)], in: "conv2d")
        ohw = try Check.product([oh, ow], in: "conv2d")
        ck = try Check.product([p.inChannels, p.kernelH, p.kernelW], in: "conv2d")
        _ = try Check.product([frames, max(p.inChannels, p.outChannels), height * width + ohw], in: "conv2d")
        _ = try Check.product([ck, ohw, frames, context.threads], in: "conv2d")
        guard p.groups == 1 else { return }  // direct loops, no scratch
        direct = p.isPointwiseStride1
        let workers = context.convParallelism == .tiles ? context.threads : 1
        let budget = context.im2colBudget, outBudget = context.outputTileBudget
        let K = p.outChannels
        var fb = 1
        if ohw < context.minGemmColumns && frames > 1 {
            fb = min(frames, (context.minGemmColumns + ohw - 1) / ohw, max(1, budget / max(1, ck * ohw)),
                     (frames + workers - 1) / workers)
            // Tile count a multiple of the workers where possible, frames spread evenly.
            var groups = (frames + fb - 1) / fb
            if groups % workers != 0 && roundUp(groups, workers) <= frames { groups = roundUp(groups, workers) }
            fb = (frames + groups - 1) / groups
        }
        if fb > 1 {
            framesPerTile = fb
            rowsPerTile = oh
            tileCount = (frames + fb - 1) / fb
            colCount = ck * fb * ohw
            tmpCount = K * fb * ohw
        } else {
            // Rows per tile: im2col columns within `budget`, GEMM result within `outBudget`
            // (so the epilogue finds it in cache).
            var rowsMax = min(oh, max(1, outBudget / max(1, K * ow)))
            if !direct { rowsMax = min(rowsMax, max(1, budget / max(1, ck * ow))) }
            rowTilesPerFrame = (oh + rowsMax - 1) / rowsMax
            if (frames * rowTilesPerFrame) % workers != 0 {
                rowTilesPerFrame = min(oh, roundUp(rowTilesPerFrame, workers))
            }
            rowsPerTile = (oh + rowTilesPerFrame - 1) / rowTilesPerFrame
            rowTilesPerFrame = (oh + rowsPerTile - 1) / rowsPerTile
            tileCount = frames * rowTilesPerFrame
            colCount = direct ? 0 : ck * rowsPerTile * ow
        }
        slots = workers > 1 && tileCount >= workers ? workers : 1
        let gemmN = framesPerTile * rowsPerTile * ow
        guard ck <= Int(Int32.max), p.outChannels <= Int(Int32.max), gemmN <= Int(Int32.max),
              ohw <= Int(Int32.max) else {
            throw BLError(.invalidArgument, "conv2d(\(p)): GEMM dimension exceeds 32-bit BLAS range")
        }
    }

    func roundUp(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b * b }

}

/// A convolution cut into tiles of whole output rows of one frame, or of several whole frames.
protocol RowFrameTiling {
    var frames: Int { get }
    var oh: Int { get }
    var framesPerTile: Int { get }
    var rowsPerTile: Int { get }
    var rowTilesPerFrame: Int { get }
}

extension RowFrameTiling {
    /// Tile `i`: frames `f0..<f0+fCount`, output rows `r0..<r0+rCount`.
    func tile(_ i: Int) -> ConvTile {
        if framesPerTile > 1 {
            let f0 = i * framesPerTile
            return ConvTile(f0: f0, fCount: min(framesPerTile, frames - f0), r0: 0, rCount: oh)
        }
        let r0 = (i % rowTilesPerFrame) * rowsPerTile
        return ConvTile(f0: i / rowTilesPerFrame, fCount: 1, r0: r0, rCount: min(rowsPerTile, oh - r0))
    }
}

extension Kernels {
    /// Floats of scratch `conv2dIm2col` needs for these shapes and this context (0 when none).
    package static func conv2dIm2colScratchCount(_ params: Conv2DParams, frames: Int, height: Int, width: Int,
                                                context: KernelContext) throws -> Int {
        try ConvPlan(params, frames: frames, height: height, width: width, context: context).scratchCount
    }

    /// 2-D convolution through im2col tiles and a row-major SGEMM, float32 NCHW (the path of
    /// ``ConvWeights/Path/blas`` and ``ConvWeights/Path/grouped``, and of weights converted per
    /// use; `conv2d` describes the semantics).
    ///
    ///     input    [F, C, H, W]
    ///     weight   [K, C/groups, kh, kw]
    ///     bias     [K] or nil
    ///     residual [F, K, OH, OW] or nil
    ///     output   [F, K, OH, OW],  OH = floor((H + 2ph - kh)/sh) + 1, OW likewise
    ///
    ///     output[f,k,y,x] = act( bias[k] + sum_{c in group(k), i, j} weight[k, c', i, j]
    ///                                          * input[f, c, y*sh - ph + i, x*sw - pw + j]
    ///                            + residual[f,k,y,x] )      (out-of-image input reads as 0)
    ///     act = ReLU when `relu`, identity otherwise.
    ///
    /// groups == 1 runs as GEMM (`context.gemm`: the AVX-512 SGEMM or `cblas_sgemm`): 1x1 stride-1
    /// unpadded convolutions straight on NCHW (`[K,C] x [C, H*W]` per frame, no copy); other shapes through an im2col tile of bounded
    /// size (`context.im2colBudget` floats: a range of output rows of one frame). Planes smaller
    /// than `context.minGemmColumns` put several frames side by side in one GEMM, whose result the
    /// epilogue scatters back to NCHW. The epilogue (bias, residual, ReLU) runs on each tile right
    /// after its GEMM. With `.tiles` parallelism each worker takes whole tiles with its own scratch
    /// slot; with `.blas` OpenBLAS threads each GEMM. Other groups use direct loops (no scratch).
    /// `scratch` must hold `conv2dScratchCount(...)` floats for the same shapes and context (may be
    /// nil when that is 0). `output` must not overlap `input`, `residual` or `scratch`.
    package static func conv2dIm2col(_ input: UnsafePointer<Float>, frames: Int, height: Int, width: Int,
                                    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                    params p: Conv2DParams,
                                    residual: UnsafePointer<Float>? = nil, relu: Bool = false,
                                    output: UnsafeMutablePointer<Float>,
                                    scratch: UnsafeMutablePointer<Float>?, scratchCount: Int,
                                    context: KernelContext) throws {
        let plan = try ConvPlan(p, frames: frames, height: height, width: width, context: context)
        guard scratchCount >= plan.scratchCount, plan.scratchCount == 0 || scratch != nil else {
            throw BLError(.invalidArgument,
                          "conv2d(\(p)): scratch of \(scratchCount) floats, \(plan.scratchCount) needed")
        }
        if frames == 0 { return }
        if p.groups != 1 {
            groupedConv(input, frames: frames, height: height, width: width, weight: weight, bias: bias,
                        p: p, oh: plan.oh, ow: plan.ow, residual: residual, relu: relu, output: output,
                        context: context)
            return
        }
        context.ensureBLASThreads()
        let xs = SharedPointer(input), ws = SharedPointer(weight), os = SharedPointer(output)
        let bs = bias.map { SharedPointer($0) }, rs = residual.map { SharedPointer($0) }
        let K = p.outChannels
        let work = frames * K * plan.ohw * plan.ck
        // Scratch slots; with no scratch needed (1x1 stride 1, one frame per tile) nothing reads it.
        let base = scratch ?? output
        if plan.slots > 1 {
            // Workers take whole tiles: im2col, single-threaded GEMM and epilogue stay on one core.
            // Tiles are handed out one at a time, so a worker slowed by other load does not hold
            // the others up.
            let ss = SharedPointer(base)
            let next = TileCounter()
            context.parallelParts(plan.slots, parts: plan.slots, work: work) { part, _, _ in
                let col = ss.p + part * plan.slotCount
                while let i = next.take(below: plan.tileCount) {
                    let t = plan.tile(i)
                    let (b, ldb) = prepareTile(t, UnsafePointer(xs.p), height: height, width: width, p: p, plan: plan,
                                               col: col, context: context.serialized)
                    computeTile(t, b: b, ldb: ldb, mLo: 0, mHi: K, weight: UnsafePointer(ws.p),
                                bias: bs.map { UnsafePointer($0.p) }, residual: rs.map { UnsafePointer($0.p) },
                                relu: relu, output: os.p, tmp: col + plan.colCount, p: p, plan: plan,
                                context: context.serialized)
                }
            }
            return
        }
        let splitRows = context.convParallelism == .tiles && context.threads > 1
        for i in 0..<plan.tileCount {
            let t = plan.tile(i)
            let (b, ldb) = prepareTile(t, input, height: height, width: width, p: p, plan: plan,
                                       col: base, context: context)
            let tmp = base + plan.colCount
            if splitRows {
                // Few tiles: workers split the output channels of each GEMM.
                let bsh = SharedPointer(b), tmps = SharedPointer(tmp)
                context.parallelParts(K, parts: context.threads, work: work) { _, mLo, mHi in
                    computeTile(t, b: UnsafePointer(bsh.p), ldb: ldb, mLo: mLo, mHi: mHi, weight: UnsafePointer(ws.p),
                                bias: bs.map { UnsafePointer($0.p) }, residual: rs.map { UnsafePointer($0.p) },
                                relu: relu, output: os.p, tmp: tmps.p, p: p, plan: plan,
                                context: context.serialized)
                }
            } else {
                computeTile(t, b: b, ldb: ldb, mLo: 0, mHi: K, weight: weight, bias: bias, residual: residual,
                            relu: relu, output: output, tmp: tmp, p: p, plan: plan, context: context)
            }
        }
    }

    /// The GEMM right-hand side of a tile: the input itself (1x1 stride 1, one frame) or its
    /// im2col columns written to `col`. Returns the matrix and its leading dimension.
    static func prepareTile(_ t: ConvTile, _ input: UnsafePointer<Float>, height: Int, width: Int,
                            p: Conv2DParams, plan: ConvPlan, col: UnsafeMutablePointer<Float>,
                            context: KernelContext) -> (UnsafePointer<Float>, Int) {
        if plan.direct && t.fCount == 1 {
            return (input + t.f0 * p.inChannels * height * width + t.r0 * plan.ow, height * width)
        }
        im2col(input, channels: p.inChannels, height: height, width: width, p: p, oh: plan.oh, ow: plan.ow,
               firstFrame: t.f0, frameCount: t.fCount, firstRow: t.r0, rowCount: t.rCount, col: col,
               context: context)
        return (UnsafePointer(col), t.fCount * t.rCount * plan.ow)
    }

    /// GEMM and epilogue of output channels `mLo..<mHi` of a tile.
    ///
    ///     out[mLo..<mHi, tile columns] = weight[mLo..<mHi, ck] x b[ck, tile columns]
    ///
    /// One frame: written in place into `output` (leading dimension OH*OW). Several frames:
    /// through `tmp [K, fCount*OH*OW]`, scattered to the frames by the epilogue.
    static func computeTile(_ t: ConvTile, b: UnsafePointer<Float>, ldb: Int, mLo: Int, mHi: Int,
                            weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                            residual: UnsafePointer<Float>?, relu: Bool, output: UnsafeMutablePointer<Float>,
                            tmp: UnsafeMutablePointer<Float>, p: Conv2DParams, plan: ConvPlan,
                            context: KernelContext) {
        let K = p.outChannels, ohw = plan.ohw, ck = plan.ck, m = mHi - mLo
        guard m > 0 else { return }
        let n = t.fCount * t.rCount * plan.ow
        let a = weight + mLo * ck
        let bias = bias.map { $0 + mLo }
        if t.fCount > 1 {
            let c = tmp + mLo * n
            Gemm.sgemm(m: m, n: n, k: ck, a: a, lda: ck, b: b, ldb: ldb, c: c, ldc: n, context: context)
            for fi in 0..<t.fCount {
                let o = (t.f0 + fi) * K * ohw + mLo * ohw
                epilogue(src: c + fi * ohw, srcStride: n, dst: output + o, dstStride: ohw, count: ohw, channels: m,
                         bias: bias, residual: residual.map { $0 + o }, relu: relu, context: context)
            }
        } else {
            let o = t.f0 * K * ohw + t.r0 * plan.ow + mLo * ohw
            let dst = output + o
            Gemm.sgemm(m: m, n: n, k: ck, a: a, lda: ck, b: b, ldb: ldb, c: dst, ldc: ohw, context: context)
            epilogue(src: UnsafePointer(dst), srcStride: ohw, dst: dst, dstStride: ohw, count: n, channels: m,
                     bias: bias, residual: residual.map { $0 + o }, relu: relu, context: context)
        }
    }

    /// im2col of a tile: output rows `firstRow..<firstRow+rowCount` of frames
    /// `firstFrame..<firstFrame+frameCount`.
    ///
    ///     col [C*kh*kw, frameCount*rowCount*OW]
    ///     col[(c*kh + i)*kw + j, (fi*rowCount + y - firstRow)*OW + x]
    ///         = input[firstFrame+fi, c, y*sh - ph + i, x*sw - pw + j]   (0 outside the image)
    static func im2col(_ input: UnsafePointer<Float>, channels C: Int, height H: Int, width W: Int,
                       p: Conv2DParams, oh: Int, ow OW: Int,
                       firstFrame: Int, frameCount: Int, firstRow: Int, rowCount: Int,
                       col: UnsafeMutablePointer<Float>, context: KernelContext) {
        let kh = p.kernelH, kw = p.kernelW, sh = p.strideH, sw = p.strideW, ph = p.padH, pw = p.padW
        let n = frameCount * rowCount * OW
        let rows = C * kh * kw
        let xs = SharedPointer(input), cs = SharedPointer(col)
        context.parallelChunks(rows, work: rows * n) { lo, hi in
            let x = UnsafePointer(xs.p), col = cs.p
            for row in lo..<hi {
                let j = row % kw, i = (row / kw) % kh, c = row / (kw * kh)
                let off = j - pw
                var xLo = off >= 0 ? 0 : (-off + sw - 1) / sw
                var xHi = W - 1 - off >= 0 ? min(OW, (W - 1 - off) / sw + 1) : 0
                xLo = min(xLo, OW)
                xHi = max(xHi, xLo)
                let dRow = col + row * n
                for fi in 0..<frameCount {
                    let plane = x + ((firstFrame + fi) * C + c) * H * W
                    for y in firstRow..<(firstRow + rowCount) {
                        let d = dRow + (fi * rowCount + y - firstRow) * OW
                        let iy = y * sh - ph + i
                        if iy < 0 || iy >= H {
                            d.update(repeating: 0, count: OW)
                            continue
                        }
                        if xLo > 0 { d.update(repeating: 0, count: xLo) }
                        if xHi < OW { (d + xHi).update(repeating: 0, count: OW - xHi) }
                        let s = plane + iy * W + off
                        if sw == 1 {
                            (d + xLo).update(from: s + xLo, count: xHi - xLo)
                        } else {
                            var xx = xLo
                            if sw == 2 {
                                // Even lanes of 16 consecutive inputs, while all 16 lie in this row.
                                while xx + 8 <= xHi && 2 * xx + 15 + off <= W - 1 {
                                    let v = UnsafeRawPointer(s + 2 * xx).loadUnaligned(as: SIMD16<Float>.self)
                                    UnsafeMutableRawPointer(d + xx).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
                                    xx += 8
                                }
                            }
                            while xx < xHi {
                                d[xx] = s[xx * sw]
                                xx += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Conv epilogue over `channels` rows of `count` values:
    /// `dst[k*dstStride + i] = act(src[k*srcStride + i] + bias[k] + residual[k*dstStride + i])`.
    /// `src` may equal `dst` (same strides).
    static func epilogue(src: UnsafePointer<Float>, srcStride: Int,
                         dst: UnsafeMutablePointer<Float>, dstStride: Int, count n: Int, channels: Int,
                         bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool,
                         context: KernelContext) {
        if bias == nil && residual == nil && !relu && UnsafeMutablePointer(mutating: src) == dst { return }
        let ss = SharedPointer(src), ds = SharedPointer(dst)
        let bs = bias.map { SharedPointer($0) }, rs = residual.map { SharedPointer($0) }
        context.parallelChunks(channels, work: channels * n) { lo, hi in
            for k in lo..<hi {
                let s = UnsafePointer(ss.p + k * srcStride), d = ds.p + k * dstStride
                let b = bs.map { $0.p[k] } ?? 0
                if let rs {
                    let r = UnsafePointer(rs.p + k * dstStride)
                    if relu {
                        for i in 0..<n { d[i] = max(s[i] + b + r[i], 0) }
                    } else {
                        for i in 0..<n { d[i] = s[i] + b + r[i] }
                    }
                } else if relu {
                    for i in 0..<n { d[i] = max(s[i] + b, 0) }
                } else {
                    for i in 0..<n { d[i] = s[i] + b }
                }
            }
        }
    }

    /// Grouped / depthwise convolution by direct loops (float accumulation, one output plane at a time).
    static func groupedConv(_ input: UnsafePointer<Float>, frames: Int, height H: Int, width W: Int,
                            weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, p: Conv2DParams,
                            oh OH: Int, ow OW: Int, residual: UnsafePointer<Float>?, relu: Bool,
                            output: UnsafeMutablePointer<Float>, context: KernelContext) {
        let K = p.outChannels, C = p.inChannels, cg = C / p.groups, kg = K / p.groups
        let kh = p.kernelH, kw = p.kernelW, sh = p.strideH, sw = p.strideW, ph = p.padH, pw = p.padW
        let ohw = OH * OW
        let xs = SharedPointer(input), ws = SharedPointer(weight), os = SharedPointer(output)
        let bs = bias.map { SharedPointer($0) }, rs = residual.map { SharedPointer($0) }
        context.parallelChunks(frames * K, work: frames * K * ohw * cg * kh * kw) { lo, hi in
            for fk in lo..<hi {
                let f = fk / K, k = fk % K, g = k / kg
                let out = os.p + fk * ohw
                out.update(repeating: bs.map { $0.p[k] } ?? 0, count: ohw)
                for cc in 0..<cg {
                    let plane = UnsafePointer(xs.p) + (f * C + g * cg + cc) * H * W
                    for i in 0..<kh {
                        for j in 0..<kw {
                            let w = ws.p[((k * cg + cc) * kh + i) * kw + j]
                            let off = j - pw
                            let xLo = min(OW, off >= 0 ? 0 : (-off + sw - 1) / sw)
                            let xHi = max(xLo, W - 1 - off >= 0 ? min(OW, (W - 1 - off) / sw + 1) : 0)
                            for y in 0..<OH {
                                let iy = y * sh - ph + i
                                if iy < 0 || iy >= H { continue }
                                let s = plane + iy * W + off, d = out + y * OW
                                for x in xLo..<xHi { d[x] += w * s[x * sw] }
                            }
                        }
                    }
                }
                if let rs {
                    let r = UnsafePointer(rs.p) + fk * ohw
                    for i in 0..<ohw { out[i] += r[i] }
                }
                if relu {
                    for i in 0..<ohw { out[i] = max(out[i], 0) }
                }
            }
        }
    }

    /// Oracle for `conv2d`: direct loops, accumulation in Double, same semantics and shapes.
    package static func conv2dNaive(_ input: UnsafePointer<Float>, frames: Int, height H: Int, width W: Int,
                                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                   params p: Conv2DParams,
                                   residual: UnsafePointer<Float>? = nil, relu: Bool = false,
                                   output: UnsafeMutablePointer<Float>) throws {
        let (OH, OW) = try p.outputSize(height: H, width: W)
        let K = p.outChannels, C = p.inChannels, cg = C / p.groups, kg = K / p.groups
        for f in 0..<frames {
            for k in 0..<K {
                let g = k / kg
                for y in 0..<OH {
                    for x in 0..<OW {
                        var acc = Double(bias?[k] ?? 0)
                        for cc in 0..<cg {
                            let c = g * cg + cc
                            for i in 0..<p.kernelH {
                                let iy = y * p.strideH - p.padH + i
                                if iy < 0 || iy >= H { continue }
                                for j in 0..<p.kernelW {
                                    let ix = x * p.strideW - p.padW + j
                                    if ix < 0 || ix >= W { continue }
                                    let w = weight[((k * cg + cc) * p.kernelH + i) * p.kernelW + j]
                                    acc += Double(w) * Double(input[((f * C + c) * H + iy) * W + ix])
                                }
                            }
                        }
                        let o = ((f * K + k) * OH + y) * OW + x
                        if let residual { acc += Double(residual[o]) }
                        if relu { acc = max(acc, 0) }
                        output[o] = Float(acc)
                    }
                }
            }
        }
    }
}
