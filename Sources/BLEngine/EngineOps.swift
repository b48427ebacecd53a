import BLCore
import BLKernels
import Foundation

/// A raw pointer the parallel loop bodies may capture; iterations write disjoint elements.
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
    init(_ p: UnsafePointer<T>) { self.p = UnsafeMutablePointer(mutating: p) }
}

/// The few ops the engine computes itself (no kernel of `BLKernels` matches them).
enum EngineOps {
    /// Runs `body(lo, hi)` over disjoint chunks of `0..<count`, on up to `context.threads` threads
    /// when `work` reaches `context.minParallelElements`.
    static func parallel(_ count: Int, work: Int, context: KernelContext, _ body: @Sendable (Int, Int) -> Void) {
        let parts = min(context.threads, count)
        if parts <= 1 || work < context.minParallelElements {
            if count > 0 { body(0, count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = count * part / parts, hi = count * (part + 1) / parts
            if lo < hi { body(lo, hi) }
        }
    }

    /// Inference batch norm folded to a per-channel affine map; `output` may be `input`.
    ///
    ///     input/output [M, C, H, W] as `planes = M*C` planes of `planeSize = H*W`
    ///     output[m, c, :] = input[m, c, :] * scale[c] + shift[c]
    static func scaleShift(_ input: UnsafePointer<Float>, planes: Int, channels: Int, planeSize: Int,
                           scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                           output: UnsafeMutablePointer<Float>, context: KernelContext) {
        let x = SendablePointer(input), o = SendablePointer(output)
        let sc = SendablePointer(scale), sh = SendablePointer(shift)
        parallel(planes, work: planes * planeSize, context: context) { lo, hi in
            for plane in lo..<hi {
                let c = plane % channels
                let a = sc.p[c], b = sh.p[c]
                let src = x.p + plane * planeSize, dst = o.p + plane * planeSize
                for i in 0..<planeSize { dst[i] = src[i] * a + b }
            }
        }
    }

    /// Average pooling for any square window, `count_include_pad=True`, `ceil_mode=False`
    /// (divisor always `kernel*kernel`). Float accumulation per window.
    ///
    ///     input  [P, H, W] planes
    ///     output [P, OH, OW],  OH = (H + 2*padding - kernel)/stride + 1, OW likewise
    static func avgPool(_ input: UnsafePointer<Float>, planes: Int, height H: Int, width W: Int,
                        kernel k: Int, stride s: Int, padding p: Int, outHeight OH: Int, outWidth OW: Int,
                        output: UnsafeMutablePointer<Float>, context: KernelContext) {
        let x = SendablePointer(input), o = SendablePointer(output)
        let inv = 1 / Float(k * k)
        parallel(planes, work: planes * OH * OW * k * k, context: context) { lo, hi in
            for plane in lo..<hi {
                let src = x.p + plane * H * W, dst = o.p + plane * OH * OW
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
}
