import BLCore
import CGemm

/// How the packed-GEMM path tiles a convolution: tiles of whole output rows of one frame, or of
/// several whole frames when planes are small (so each GEMM has at least about
/// `minGemmColumns` columns); rows split further when there are fewer tiles than twice the
/// workers. With fewer tiles than workers, workers split each tile's output channels.
struct GemmTiling: RowFrameTiling {
    var oh = 0, ow = 0, ohw = 0
    var framesPerTile = 1, rowsPerTile = 1, rowTilesPerFrame = 1, tileCount = 0
    var frames = 0

    init(_ p: Conv2DParams, frames: Int, height: Int, width: Int, context: KernelContext) throws {
        (oh, ow) = try p.outputSize(height: height, width: width)
        self.frames = frames
        ohw = try Check.product([oh, ow], in: "conv2d")
        let workers = context.threads
        var fb = 1
        if ohw < context.minGemmColumns && frames > 1 {
            fb = min(frames, (context.minGemmColumns + ohw - 1) / ohw, max(1, (frames + workers - 1) / workers))
            var groups = (frames + fb - 1) / fb
            if groups % workers != 0 && (groups + workers - 1) / workers * workers <= frames {
                groups = (groups + workers - 1) / workers * workers
            }
            fb = (frames + groups - 1) / groups
        }
        framesPerTile = fb
        if fb > 1 {
            rowsPerTile = oh
            tileCount = (frames + fb - 1) / fb
        } else {
            rowTilesPerFrame = 1
            if workers > 1 && frames < 2 * workers {
                rowTilesPerFrame = min(oh, (2 * workers + frames - 1) / max(frames, 1))
            }
            rowsPerTile = (oh + rowTilesPerFrame - 1) / rowTilesPerFrame
            rowTilesPerFrame = (oh + rowsPerTile - 1) / rowsPerTile
            tileCount = frames * rowTilesPerFrame
        }
        guard Int(Int32.max) > max(ohw * fb, p.outChannels) else {
            throw BLError(.invalidArgument, "conv2d(\(p)): GEMM dimension exceeds 32-bit range")
        }
    }

}

/// How the Winograd path splits a convolution's tiles: blocks of `blockTiles` taken whole by
/// each worker (V, the GEMMs and the output transform on one core, one scratch slot per worker)
/// when there are at least two blocks per worker; otherwise blocks as large as the scratch
/// budget allows, each run in three phases shared by the workers (input transform by channels,
/// GEMMs by position, output transform by output channels).
struct WinogradTiling {
    var tile = 4
    var tiles = 0
    var blockTiles = 0
    var blocks = 0
    var perWorker = false
    var slots = 1
    var slotFloats = 0
    var scratchCount: Int { slots * slotFloats }

    init(_ p: Conv2DParams, tile m: Int, frames: Int, height: Int, width: Int, context: KernelContext) throws {
        tile = m
        let th = (height + m - 1) / m, tw = (width + m - 1) / m
        tiles = try Check.product([frames, th, tw], in: "conv2d")
        let workers = context.threads
        let block = max(16, context.winogradBlockTiles)
        let K = p.outChannels, C = p.inChannels
        if tiles == 0 { return }
        if workers == 1 || (tiles + block - 1) / block >= 2 * workers {
            perWorker = workers > 1
            blockTiles = block
            slots = perWorker ? workers : 1
        } else {
            // One shared block when its scratch fits the budget, else the largest that does.
            let perTile = max(1, Int(cgemm_wino_scratch_floats(Int32(m), K, C, 48)) / 48)
            let fit = max(48, context.winogradScratchBudget / perTile / 48 * 48)
            blockTiles = min(tiles, fit)
        }
        blocks = (tiles + blockTiles - 1) / blockTiles
        slotFloats = Int(cgemm_wino_scratch_floats(Int32(m), K, C, min(blockTiles, tiles)))
        let inputFloats = try Check.product([frames, max(C, K), height, width], in: "conv2d")
        guard inputFloats < Int(Int32.max) else {
            throw BLError(.invalidArgument, "conv2d(\(p)): Winograd offsets exceed 32-bit range")
        }
    }
}

/// A failure inside a parallel loop, reported after it.
private final class FailureFlag: Sendable {
    private let failed = Locked(false)
    func set() { failed.withLock { $0 = true } }
    var isSet: Bool { failed.withLock { $0 } }
}

extension ConvWeights {
    /// The kernel these weights run with on frames of `height` x `width`: the path's name, and
    /// for the packed GEMM "GEMM direct" when its direct kernel runs, B not packed (see cgemm.h).
    package func kernelDescription(height: Int, width: Int) -> String {
        switch path {
        case .gemm where Self.runsDirect(params, height: height, width: width, mpad: mpad, kc: kc): return "GEMM direct"
        case .gemmBF16 where directPairs != nil
            && Self.runsDirectBF16(params, height: height, width: width, mpad: mpad, kc: kc):
            return "GEMM direct bf16"
        default: return path.description
        }
    }

    /// Whether `cgemm_conv` for convolution `p` on frames of `height` x `width`, A packed with
    /// `mpad` rows and depth slice `kc`, runs the direct kernel.
    static func runsDirect(_ p: Conv2DParams, height: Int, width: Int, mpad: Int, kc: Int) -> Bool {
        guard var src = directQuery(p, height: height, width: width) else { return false }
        return cgemm_conv_is_direct(mpad, kc, &src) == 1
    }

    /// The same for `cgemm_conv_bf16_direct` (A packed in channel pairs with depth slice `kc`).
    static func runsDirectBF16(_ p: Conv2DParams, height: Int, width: Int, mpad: Int, kc: Int) -> Bool {
        guard var src = directQuery(p, height: height, width: width) else { return false }
        return cgemm_conv_bf16_is_direct(mpad, kc, &src) == 1
    }

    /// The geometry of one output row of `p` on such frames (no data), for the kernels' choice.
    private static func directQuery(_ p: Conv2DParams, height: Int, width: Int) -> cgemm_src? {
        guard let (_, ow) = try? p.outputSize(height: height, width: width) else { return nil }
        return cgemm_src(x: nil, C: p.inChannels, H: height, W: width, kh: p.kernelH, kw: p.kernelW,
                         sh: p.strideH, sw: p.strideW, ph: p.padH, pw: p.padW, OW: ow,
                         f0: 0, fcount: 1, r0: 0, rows: 1)
    }
}

extension Kernels {
    /// Floats of scratch `conv2d` needs for these shapes and this context (0 when none). The
    /// raw-weight `conv2d` runs the path `ConvWeights.basePath(params, precision: .float32,
    /// winograd: .off, context:)` names.
    package static func conv2dScratchCount(_ params: Conv2DParams, frames: Int, height: Int, width: Int,
                                          context: KernelContext) throws -> Int {
        switch ConvWeights.basePath(params, precision: .float32, winograd: .off, context: context) {
        case .gemm, .gemmBF16:
            _ = try GemmTiling(params, frames: frames, height: height, width: width, context: context)
            return 0
        default:
            return try conv2dIm2colScratchCount(params, frames: frames, height: height, width: width, context: context)
        }
    }

    /// 2-D convolution with fused epilogue, float32 NCHW.
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
    /// Packs `weight` for this call (an engine prepares ``ConvWeights`` once instead) and runs
    /// `conv2d(weights:)`. `scratch` must hold `conv2dScratchCount(...)` floats for the same shapes
    /// and context (may be nil when that is 0). `output` must not overlap `input`, `residual` or
    /// `scratch`.
    package static func conv2d(_ input: UnsafePointer<Float>, frames: Int, height: Int, width: Int,
                              weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              params p: Conv2DParams,
                              residual: UnsafePointer<Float>? = nil, relu: Bool = false,
                              output: UnsafeMutablePointer<Float>,
                              scratch: UnsafeMutablePointer<Float>?, scratchCount: Int,
                              context: KernelContext) throws {
        let w = try ConvWeights.prepare(weight, owner: nil, params: p, context: context, keepFloat32: true)
        try conv2d(input, frames: frames, height: height, width: width, weights: w, bias: bias, residual: residual,
                   relu: relu, output: output, scratch: scratch, scratchCount: scratchCount, context: context)
    }

    /// Floats of scratch `conv2d(weights:)` needs for these shapes and this context.
    package static func conv2dScratchCount(_ w: ConvWeights, frames: Int, height: Int, width: Int,
                                          context: KernelContext) throws -> Int {
        switch w.path {
        case .gemm, .gemmBF16:
            _ = try GemmTiling(w.params, frames: frames, height: height, width: width, context: context)
            return 0
        case .winograd(let m):
            _ = try w.params.outputSize(height: height, width: width)
            return try WinogradTiling(w.params, tile: m, frames: frames, height: height, width: width,
                                      context: context).scratchCount
        case .blas, .grouped:
            return try conv2dIm2colScratchCount(w.params, frames: frames, height: height, width: width, context: context)
        }
    }

    /// `conv2d` with prepared weights: the path they were prepared for (see ``ConvWeights/Path``).
    package static func conv2d(_ input: UnsafePointer<Float>, frames: Int, height: Int, width: Int,
                              weights w: ConvWeights, bias: UnsafePointer<Float>?,
                              residual: UnsafePointer<Float>? = nil, relu: Bool = false,
                              output: UnsafeMutablePointer<Float>,
                              scratch: UnsafeMutablePointer<Float>?, scratchCount: Int,
                              context: KernelContext) throws {
        let need = try conv2dScratchCount(w, frames: frames, height: height, width: width, context: context)
        guard scratchCount >= need, need == 0 || scratch != nil else {
            throw BLError(.invalidArgument, "conv2d(\(w.params)): scratch of \(scratchCount) floats, \(need) needed")
        }
        if frames == 0 { return }
        switch w.path {
        case .gemm, .gemmBF16:
            try gemmConv(input, frames: frames, height: height, width: width, weights: w, bias: bias,
                         residual: residual, relu: relu, output: output, context: context)
        case .winograd(let m):
            try winogradConv(input, frames: frames, height: height, width: width, weights: w, tile: m, bias: bias,
                             residual: residual, relu: relu, output: output, scratch: scratch, context: context)
        case .blas, .grouped:
            guard let raw = w.raw else {
                throw BLError.invariant("conv2d(\(w.params)): no float32 weights for the \(w.path) path")
            }
            try conv2dIm2col(input, frames: frames, height: height, width: width, weight: raw, bias: bias,
                             params: w.params, residual: residual, relu: relu, output: output, scratch: scratch,
                             scratchCount: scratchCount, context: context)
        }
    }

    /// The packed GEMM path: tiles (see `GemmTiling`) taken by the workers one at a time, each
    /// a single-threaded `cgemm_conv` reading B straight from the input.
    static func gemmConv(_ input: UnsafePointer<Float>, frames: Int, height: Int, width: Int, weights w: ConvWeights,
                         bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool,
                         output: UnsafeMutablePointer<Float>, context: KernelContext) throws {
        let p = w.params
        let t = try GemmTiling(p, frames: frames, height: height, width: width, context: context)
        // A bf16 layer the direct kernel takes on these frames runs it (see ConvWeights).
        let pairsDirect = w.path == .gemmBF16 && w.directPairs != nil
            && ConvWeights.runsDirectBF16(p, height: height, width: width, mpad: w.mpad, kc: w.kc)
        guard let packed = pairsDirect ? w.directPairs : w.packed else {
            throw BLError.invariant("conv2d(\(p)): weights not packed")
        }
        let K = p.outChannels, depth = p.inChannels * p.kernelH * p.kernelW
        let xs = SharedPointer(input), os = SharedPointer(output)
        let bs = bias.map { SharedPointer($0) }, rs = residual.map { SharedPointer($0) }
        let ap = SharedPointer(packed.raw.assumingMemoryBound(to: UInt8.self))
        let bf16 = w.path == .gemmBF16, mpad = w.mpad, kc = w.kc
        let failed = FailureFlag()
        @Sendable func run(_ tile: ConvTile, _ mLo: Int, _ mHi: Int) {
            var src = cgemm_src(x: xs.p, C: p.inChannels, H: height, W: width, kh: p.kernelH, kw: p.kernelW,
                                sh: p.strideH, sw: p.strideW, ph: p.padH, pw: p.padW, OW: t.ow,
                                f0: tile.f0, fcount: tile.fCount, r0: tile.r0, rows: tile.rCount)
            var dst = cgemm_dst(y: os.p, residual: rs.map { UnsafePointer($0.p) }, bias: bs.map { UnsafePointer($0.p) },
                                fstride: K * t.ohw, mstride: t.ohw, col0: tile.r0 * t.ow, relu: relu ? 1 : 0)
            let a16 = UnsafeRawPointer(ap.p).assumingMemoryBound(to: UInt16.self)
            let rc = pairsDirect ? cgemm_conv_bf16_direct(mLo, mHi, a16, mpad, kc, &src, &dst)
                : bf16 ? cgemm_conv_bf16(mLo, mHi, depth, a16, mpad, kc, &src, &dst)
                : cgemm_conv(mLo, mHi, depth, UnsafeRawPointer(ap.p).assumingMemoryBound(to: Float.self), mpad, kc, &src, &dst)
            if rc != 0 { failed.set() }
        }
        let workers = context.threads
        let work = frames * K * t.ohw * depth
        if workers > 1 && t.tileCount >= workers {
            // Tiles handed out one at a time: a worker slowed by other load does not hold the others up.
            let next = TileCounter()
            context.parallelParts(workers, parts: workers, work: work) { _, _, _ in
                while let i = next.take(below: t.tileCount) { run(t.tile(i), 0, K) }
            }
        } else if workers > 1 && K >= 16 {
            // Few tiles: the workers split the output channels (in whole microkernel rows).
            let rowBlocks = (K + 7) / 8
            for i in 0..<t.tileCount {
                let tile = t.tile(i)
                context.parallelParts(rowBlocks, parts: workers, work: work / t.tileCount) { _, lo, hi in
                    run(tile, lo * 8, min(K, hi * 8))
                }
            }
        } else {
            for i in 0..<t.tileCount { run(t.tile(i), 0, K) }
        }
        if failed.isSet {
            throw BLError(.internal, "conv2d(\(p)): the GEMM kernel could not allocate its pack buffers")
        }
    }

    /// The Winograd path (see `WinogradTiling`).
    static func winogradConv(_ input: UnsafePointer<Float>, frames: Int, height: Int, width: Int, weights w: ConvWeights,
                             tile m: Int, bias: UnsafePointer<Float>?, residual: UnsafePointer<Float>?, relu: Bool,
                             output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?,
                             context: KernelContext) throws {
        let p = w.params
        let t = try WinogradTiling(p, tile: m, frames: frames, height: height, width: width, context: context)
        guard let packed = w.packed, let scratch else { throw BLError.invariant("conv2d(\(p)): Winograd weights or scratch missing") }
        if t.tiles == 0 { return }
        let K = p.outChannels, C = p.inChannels, kc = w.kc, mt = Int32(m), aa = (m + 2) * (m + 2)
        let xs = SharedPointer(input), os = SharedPointer(output), ss = SharedPointer(scratch)
        let us = SharedPointer(UnsafePointer(packed.floats))
        let bs = bias.map { SharedPointer($0) }, rs = residual.map { SharedPointer($0) }
        let failed = FailureFlag()
        let work = t.tiles * aa * K * C
        let workers = context.threads
        if t.perWorker || workers == 1 {
            let next = TileCounter()
            context.parallelParts(t.slots, parts: t.slots, work: work) { slot, _, _ in
                let sc = ss.p + slot * t.slotFloats
                while let b = next.take(below: t.blocks) {
                    let t0 = b * t.blockTiles, n = min(t.blockTiles, t.tiles - t0)
                    if cgemm_wino_conv(mt, us.p, K, C, kc, xs.p, height, width, t0, n, os.p,
                                       bs.map { UnsafePointer($0.p) }, rs.map { UnsafePointer($0.p) }, relu ? 1 : 0, sc) != 0 {
                        failed.set()
                    }
                }
            }
        } else {
            for b in 0..<t.blocks {
                let t0 = b * t.blockTiles, n = min(t.blockTiles, t.tiles - t0)
                let blockWork = n * aa * K * C
                context.parallelParts(C, parts: workers, work: blockWork) { _, lo, hi in
                    if cgemm_wino_input(mt, K, C, kc, xs.p, height, width, t0, n, lo, hi, ss.p) != 0 { failed.set() }
                }
                // GEMMs: positions split among the workers; with fewer positions per worker than
                // microkernel rows would give, also the rows.
                context.parallelParts(aa, parts: workers, work: blockWork) { _, lo, hi in
                    if cgemm_wino_gemm(mt, us.p, K, C, kc, height, width, t0, n, lo, hi, 0, K, ss.p) != 0 { failed.set() }
                }
                context.parallelParts(K, parts: workers, work: blockWork) { _, lo, hi in
                    if cgemm_wino_output(mt, K, C, height, width, t0, n, lo, hi, ss.p, os.p,
                                         bs.map { UnsafePointer($0.p) }, rs.map { UnsafePointer($0.p) }, relu ? 1 : 0) != 0 {
                        failed.set()
                    }
                }
            }
        }
        if failed.isSet {
            throw BLError(.internal, "conv2d(\(p)): the Winograd kernel failed (pack buffers or 32-bit offsets)")
        }
    }
}
