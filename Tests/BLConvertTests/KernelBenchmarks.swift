import COpenBLAS
import Foundation
import Testing
import BLTestSupport
@testable import BLKernels

/// Kernel timings (report only, nothing is asserted about speed); skipped unless `BLCONVERT_BENCH=1`:
/// `BLCONVERT_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter KernelBenchmarks`
/// Options (environment): `BLCONVERT_BENCH_THREADS`, `BLCONVERT_BENCH_MODE=blas`,
/// `BLCONVERT_BENCH_CLOCK=cpu`, `BLCONVERT_BENCH_REPS`, `BLCONVERT_BENCH_PLAIN=1` (bias-only epilogue),
/// `BLCONVERT_BENCH_BUDGET` / `_OUTBUDGET` / `_MINCOLS` (KernelContext tiling fields).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["BLCONVERT_BENCH"] == "1"))
struct KernelBenchmarks {
    /// `BLCONVERT_BENCH_CLOCK=cpu`: process CPU time instead of wall time. With one thread this is
    /// the compute time even on a loaded machine (time spent descheduled is not counted).
    static let cpuClock = ProcessInfo.processInfo.environment["BLCONVERT_BENCH_CLOCK"] == "cpu"

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(cpuClock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Best time of `a` and of `b` over `reps` runs each, all runs of `a` first. (Not interleaved:
    /// after a multi-threaded SGEMM, OpenBLAS's idle threads keep spinning for a while and would
    /// slow whatever runs next.)
    static func bestSeconds(reps: Int, _ a: () throws -> Void, _ b: () throws -> Void) rethrows -> (Double, Double) {
        func best(_ f: () throws -> Void) rethrows -> Double {
            try f()  // warm-up
            var t = Double.infinity
            for _ in 0..<reps {
                let t0 = now()
                try f()
                t = min(t, now() - t0)
            }
            return t
        }
        let ta = try best(a)
        let tb = try best(b)
        usleep(300_000)  // let OpenBLAS's threads go idle
        return (ta, tb)
    }

    @Test func conv2dResNet50Shapes() throws {
        let env = ProcessInfo.processInfo.environment
        let threads = Int(env["BLCONVERT_BENCH_THREADS"] ?? "") ?? ProcessInfo.processInfo.activeProcessorCount
        var ctx = KernelContext(threads: threads)
        if let b = Int(env["BLCONVERT_BENCH_BUDGET"] ?? "") { ctx.im2colBudget = b }
        if let m = Int(env["BLCONVERT_BENCH_MINCOLS"] ?? "") { ctx.minGemmColumns = m }
        if let o = Int(env["BLCONVERT_BENCH_OUTBUDGET"] ?? "") { ctx.outputTileBudget = o }
        if env["BLCONVERT_BENCH_MODE"] == "blas" { ctx.convParallelism = .blas }
        ctx.activate()
        let plain = env["BLCONVERT_BENCH_PLAIN"] == "1"  // no residual / ReLU epilogue
        let frames = 8
        let reps = Int(env["BLCONVERT_BENCH_REPS"] ?? "") ?? 7
        let shapes: [(String, Int, Conv2DParams)] = [
            ("conv1 7x7 3->64 s2 @224", 224, Conv2DParams(inChannels: 3, outChannels: 64, kernel: (7, 7), stride: (2, 2), padding: (3, 3))),
            ("3x3 64->64 @56", 56, Conv2DParams(inChannels: 64, outChannels: 64, kernel: (3, 3), padding: (1, 1))),
            ("1x1 64->256 @56", 56, Conv2DParams(inChannels: 64, outChannels: 256, kernel: (1, 1))),
            ("1x1 256->64 @56", 56, Conv2DParams(inChannels: 256, outChannels: 64, kernel: (1, 1))),
            ("3x3 128->128 s2 @56", 56, Conv2DParams(inChannels: 128, outChannels: 128, kernel: (3, 3), stride: (2, 2), padding: (1, 1))),
            ("3x3 128->128 @28", 28, Conv2DParams(inChannels: 128, outChannels: 128, kernel: (3, 3), padding: (1, 1))),
            ("1x1 512->128 @28", 28, Conv2DParams(inChannels: 512, outChannels: 128, kernel: (1, 1))),
            ("1x1 128->512 @28", 28, Conv2DParams(inChannels: 128, outChannels: 512, kernel: (1, 1))),
            ("3x3 256->256 @14", 14, Conv2DParams(inChannels: 256, outChannels: 256, kernel: (3, 3), padding: (1, 1))),
            ("1x1 1024->256 @14", 14, Conv2DParams(inChannels: 1024, outChannels: 256, kernel: (1, 1))),
            ("1x1 256->1024 @14", 14, Conv2DParams(inChannels: 256, outChannels: 1024, kernel: (1, 1))),
            ("3x3 512->512 @7", 7, Conv2DParams(inChannels: 512, outChannels: 512, kernel: (3, 3), padding: (1, 1))),
            ("1x1 2048->512 @7", 7, Conv2DParams(inChannels: 2048, outChannels: 512, kernel: (1, 1))),
        ]
        var rng = KernelRNG(5)
        var lines = ["threads \(threads) (\(ctx.convParallelism)), \(Self.cpuClock ? "CPU" : "wall") time, epilogue \(plain ? "bias only" : "bias+residual+ReLU"), im2col budget \(ctx.im2colBudget), output tile budget \(ctx.outputTileBudget), min GEMM columns \(ctx.minGemmColumns), \(frames) frames",
                     "shape                        conv ms  GFLOP/s | one SGEMM ms GFLOP/s | conv/GEMM  scratch MB"]
        var totalConv = 0.0, totalGemm = 0.0
        for (name, hw, p) in shapes {
            let (oh, ow) = try p.outputSize(height: hw, width: hw)
            let x = rng.array(frames * p.inChannels * hw * hw), w = rng.array(p.weightCount), b = rng.array(p.outChannels)
            let res = rng.array(frames * p.outChannels * oh * ow)
            var out = [Float](repeating: 0, count: res.count)
            let need = try Kernels.conv2dScratchCount(p, frames: frames, height: hw, width: hw, context: ctx)
            var scratch = [Float](repeating: 0, count: max(need, 1))
            let flops = 2.0 * Double(p.weightCount) * Double(oh * ow * frames)
            let m = p.outChannels, k = p.inChannels * p.kernelH * p.kernelW, n = frames * oh * ow
            let bMat = rng.array(k * n)
            var cMat = [Float](repeating: 0, count: m * n)
            let (tConv, tGemm) = try Self.bestSeconds(reps: reps, {
                try Kernels.conv2d(x, frames: frames, height: hw, width: hw, weight: w, bias: b, params: p,
                                   residual: plain ? nil : res, relu: !plain, output: &out, scratch: &scratch, scratchCount: need,
                                   context: ctx)
            }, {
                openblas_set_num_threads(Int32(threads))
                defer { ctx.activate() }
                // Ideal: one SGEMM [K, C*kh*kw] x [C*kh*kw, F*OH*OW] on ready-made columns.
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                            1, w, Int32(k), bMat, Int32(n), 0, &cMat, Int32(n))
            })
            totalConv += tConv
            totalGemm += tGemm
            lines.append(name.padding(toLength: 26, withPad: " ", startingAt: 0) + String(format: " %9.2f %8.1f | %12.2f %7.1f | %8.2f  %9.2f",
                                tConv * 1e3, flops / tConv / 1e9, tGemm * 1e3, flops / tGemm / 1e9, tConv / tGemm,
                                Double(need * 4) / 1e6))
        }
        lines.append(String(format: "total                        %9.2f          | %12.2f", totalConv * 1e3, totalGemm * 1e3))
        print(lines.joined(separator: "\n"))
        #expect(totalConv > 0)
    }

    /// Every convolution of bLVNet-TAM-50 (alpha 2, beta 4, f8x2: one clip of 16 frames at 224x224),
    /// from the reference architecture: conv1 on 16 frames, everything else on the 8 big or 8 little
    /// frames. (frames, C, K, kernel, stride, input size, count); padding is kernel/2.
    /// 71 convolutions, 23.776 G multiply-accumulates (with the linear layer, 0.003 G, and the TAM
    /// blends, 0.072 G: the 23.851 G of the whole model).
    static let blvnet50Convolutions: [(Int, Int, Int, Int, Int, Int, Int)] = [
        (16, 3, 64, 7, 2, 224, 1),
        (8, 64, 64, 3, 2, 112, 1),
        (8, 64, 32, 3, 1, 112, 1),
        (8, 32, 32, 3, 2, 112, 1),
        (8, 32, 64, 1, 1, 56, 1),
        (8, 64, 64, 1, 1, 56, 2),
        (8, 64, 64, 3, 2, 56, 2),
        (8, 64, 256, 1, 1, 28, 5),
        (8, 256, 64, 1, 1, 28, 2),
        (8, 64, 64, 3, 1, 28, 2),
        (8, 64, 32, 1, 1, 56, 1),
        (8, 32, 32, 3, 1, 56, 1),
        (8, 32, 128, 1, 1, 56, 1),
        (8, 64, 128, 1, 1, 56, 1),
        (8, 128, 256, 1, 1, 56, 1),
        (8, 256, 64, 1, 1, 56, 1),
        (8, 256, 128, 1, 1, 28, 1),
        (8, 128, 128, 3, 2, 28, 2),
        (8, 128, 512, 1, 1, 14, 5),
        (8, 256, 512, 1, 1, 14, 1),
        (8, 512, 128, 1, 1, 14, 3),
        (8, 128, 128, 3, 1, 14, 3),
        (8, 256, 512, 1, 1, 28, 1),
        (8, 512, 128, 1, 1, 28, 1),
        (8, 512, 256, 1, 1, 14, 1),
        (8, 256, 256, 3, 2, 14, 1),
        (8, 256, 1024, 1, 1, 7, 5),
        (8, 512, 1024, 1, 1, 7, 1),
        (8, 1024, 256, 1, 1, 7, 4),
        (8, 256, 256, 3, 1, 7, 4),
        (8, 512, 1024, 1, 1, 14, 1),
        (8, 1024, 256, 1, 1, 14, 1),
        (8, 256, 256, 3, 1, 14, 1),
        (8, 256, 1024, 1, 1, 14, 1),
        (8, 1024, 512, 1, 1, 14, 1),
        (8, 512, 512, 3, 2, 14, 1),
        (8, 512, 2048, 1, 1, 7, 3),
        (8, 1024, 2048, 1, 1, 7, 1),
        (8, 2048, 512, 1, 1, 7, 2),
        (8, 512, 512, 3, 1, 7, 2),
    ]

    @Test func blvnet50ClipConvolutions() throws {
        let env = ProcessInfo.processInfo.environment
        let threads = Int(env["BLCONVERT_BENCH_THREADS"] ?? "") ?? ProcessInfo.processInfo.activeProcessorCount
        var ctx = KernelContext(threads: threads)
        if env["BLCONVERT_BENCH_MODE"] == "blas" { ctx.convParallelism = .blas }
        let reps = Int(env["BLCONVERT_BENCH_REPS"] ?? "") ?? 3
        func best(_ f: () throws -> Void) rethrows -> Double {
            try f()
            var t = Double.infinity
            for _ in 0..<reps {
                let t0 = Self.now()
                try f()
                t = min(t, Self.now() - t0)
            }
            return t
        }
        // All convolutions first, then all bare SGEMMs (OpenBLAS's threads spin for a while after
        // a multi-threaded call and would slow the kernels' own workers).
        var tConv: [Double] = [], tGemm: [Double] = []
        ctx.activate()
        for (frames, c, k, ks, s, hw, _) in Self.blvnet50Convolutions {
            var rng = KernelRNG(UInt64(c * 7 + k))
            let p = Conv2DParams(inChannels: c, outChannels: k, kernel: (ks, ks), stride: (s, s), padding: (ks / 2, ks / 2))
            let (oh, ow) = try p.outputSize(height: hw, width: hw)
            let x = rng.array(frames * c * hw * hw), w = rng.array(p.weightCount), b = rng.array(k)
            var out = [Float](repeating: 0, count: frames * k * oh * ow)
            let need = try Kernels.conv2dScratchCount(p, frames: frames, height: hw, width: hw, context: ctx)
            var scratch = [Float](repeating: 0, count: max(need, 1))
            tConv.append(try best {
                try Kernels.conv2d(x, frames: frames, height: hw, width: hw, weight: w, bias: b, params: p,
                                   relu: true, output: &out, scratch: &scratch, scratchCount: need, context: ctx)
            })
        }
        openblas_set_num_threads(Int32(threads))
        for (frames, c, k, ks, s, hw, _) in Self.blvnet50Convolutions {
            var rng = KernelRNG(UInt64(c * 7 + k))
            let oh = (hw + 2 * (ks / 2) - ks) / s + 1
            let gk = c * ks * ks, gn = frames * oh * oh
            let w = rng.array(k * gk), bMat = rng.array(gk * gn)
            var cMat = [Float](repeating: 0, count: k * gn)
            tGemm.append(best {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(k), Int32(gn), Int32(gk),
                            1, w, Int32(gk), bMat, Int32(gn), 0, &cMat, Int32(gn))
            })
        }
        ctx.activate()
        var macs = 0.0, tConvSum = 0.0, tGemmSum = 0.0, count = 0
        for (i, (frames, c, k, ks, s, hw, n)) in Self.blvnet50Convolutions.enumerated() {
            let oh = (hw + 2 * (ks / 2) - ks) / s + 1
            if env["BLCONVERT_BENCH_DETAIL"] == "1" {
                print(String(format: "  %2d x F%-2d %4d->%-4d k%d s%d @%-3d  conv %7.2f ms  SGEMM %7.2f ms  ratio %.2f",
                             n, frames, c, k, ks, s, hw, tConv[i] * 1e3, tGemm[i] * 1e3, tConv[i] / tGemm[i]))
            }
            macs += Double(n * k * c * ks * ks * oh * oh * frames)
            tConvSum += Double(n) * tConv[i]
            tGemmSum += Double(n) * tGemm[i]
            count += n
        }
        print(String(format: "bLVNet-TAM-50 f8x2 clip at 224: %d convolutions, %.3f G MAC; conv2d %.1f ms (%.1f GFLOP/s), "
                     + "bare SGEMM %.1f ms (%.1f GFLOP/s), ratio %.2f  [threads %d, %@, %@ time]",
                     count, macs / 1e9, tConvSum * 1e3, 2 * macs / tConvSum / 1e9, tGemmSum * 1e3,
                     2 * macs / tGemmSum / 1e9, tConvSum / tGemmSum, threads, "\(ctx.convParallelism)" as NSString,
                     (Self.cpuClock ? "CPU" : "wall") as NSString))
        #expect(count == 71)
        #expect(abs(macs / 1e9 - 23.776) < 0.001)
    }

    /// The memory-bound kernels on bLVNet-TAM-50 clip shapes (report only).
    @Test func elementwiseKernels() throws {
        let ctx = KernelContext()
        var rng = KernelRNG(3)
        func ms(_ body: () throws -> Void) rethrows -> Double {
            var best = Double.infinity
            for _ in 0..<8 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            return best
        }
        var lines: [String] = []
        // TAM on the layer-0 input: 16 frames, 64 x 112 x 112.
        let x = rng.array(16 * 64 * 112 * 112), wts = rng.array(3 * 64)
        var y = [Float](repeating: 0, count: x.count)
        lines.append(String(format: "tam [16,64,112,112] b3:              %7.2f ms", try ms {
            try Kernels.tam(x, clips: 1, framesPerClip: 16, channels: 64, height: 112, width: 112, weights: wts,
                            blending: 3, output: &y, context: ctx)
        }))
        lines.append(String(format: "selectFrames odd [16,64,112,112]:    %7.2f ms", try ms {
            try Kernels.selectFrames(x, clips: 1, framesPerClip: 16, frameSize: 64 * 112 * 112, parity: 1, output: &y)
        }))
        lines.append(String(format: "duplicateFrames [8,64,56,56]:        %7.2f ms", try ms {
            try Kernels.duplicateFrames(x, frames: 8, frameSize: 64 * 56 * 56, output: &y)
        }))
        lines.append(String(format: "avgPool3x3s2p1 [8,256,56,56]:        %7.2f ms", try ms {
            try Kernels.avgPool3x3s2p1(x, planes: 8 * 256, height: 56, width: 56, output: &y, context: ctx)
        }))
        let little = rng.array(8 * 256 * 56 * 56)
        lines.append(String(format: "resizeNearest+add+relu 28->56 [8,256]: %5.2f ms", try ms {
            try Kernels.resizeNearest(x, planes: 8 * 256, inHeight: 28, inWidth: 28, outHeight: 56, outWidth: 56,
                                      addend: little, relu: true, output: &y, context: ctx)
        }))
        lines.append(String(format: "add+relu [8,256,56,56]:              %7.2f ms", ms {
            Kernels.add(x, little, count: little.count, relu: true, output: &y, context: ctx)
        }))
        lines.append(String(format: "globalAvgPool [8,2048,7,7]:          %7.2f ms", try ms {
            try Kernels.globalAvgPool(x, planes: 8 * 2048, height: 7, width: 7, output: &y, context: ctx)
        }))
        print(lines.joined(separator: "\n"))
        #expect(lines.count == 7)
    }

    /// Small convolutions back to back: how much the worker hand-off costs.
    @Test func smallConvolutionScaling() throws {
        var rng = KernelRNG(17)
        var lines: [String] = []
        for (c, k, ks, hw) in [(256, 1024, 1, 7), (1024, 256, 1, 7), (128, 128, 3, 14), (64, 256, 1, 28)] {
            let p = Conv2DParams(inChannels: c, outChannels: k, kernel: (ks, ks), padding: (ks / 2, ks / 2))
            let frames = 8
            let x = rng.array(frames * c * hw * hw), w = rng.array(p.weightCount), b = rng.array(k)
            var out = [Float](repeating: 0, count: frames * k * hw * hw)
            var line = "\(p) @\(hw):"
            for ctx in [KernelContext(threads: 1), KernelContext(threads: 2),
                        KernelContext(threads: 2, convParallelism: .blas)] {
                let need = try Kernels.conv2dScratchCount(p, frames: frames, height: hw, width: hw, context: ctx)
                var scratch = [Float](repeating: 0, count: max(need, 1))
                ctx.activate()
                let (t, _) = try Self.bestSeconds(reps: 50, {
                    try Kernels.conv2d(x, frames: frames, height: hw, width: hw, weight: w, bias: b, params: p,
                                       relu: true, output: &out, scratch: &scratch, scratchCount: need, context: ctx)
                }, {})
                line += String(format: "  %d thr %@ %.3f ms", ctx.threads, "\(ctx.convParallelism)" as NSString, t * 1e3)
            }
            lines.append(line)
        }
        print(lines.joined(separator: "\n"))
        #expect(lines.count == 4)
    }
}
