import BLCore
import CGemm
import Foundation

/// The machine's measured arithmetic peak, for reports of achieved fractions.
package struct MachinePeak: Sendable, Equatable {
    /// GFLOP/s of one core while it runs (thread CPU time), float32 FMA and bfloat16 `vdpbf16ps`
    /// (0 when the CPU lacks it).
    package var fmaPerCore: Double
    package var bf16PerCore: Double
    /// GFLOP/s all `threads` delivered together by the wall clock (below `threads x per core` when
    /// other work shares the cores).
    package var fmaWall: Double
    package var bf16Wall: Double
    package var threads: Int

    /// The float32 (or bfloat16) peak of `threads` cores.
    package func peak(_ precision: ComputePrecision) -> Double {
        Double(threads) * (precision == .float32 ? fmaPerCore : bf16PerCore)
    }

    /// Runs independent FMA (then `vdpbf16ps`) chains on `threads` threads at once for about
    /// `seconds` each. 0 everywhere without the AVX-512 kernels.
    package static func measure(threads: Int, seconds: Double = 0.25) -> MachinePeak {
        func run(_ f: @escaping @Sendable (Double, UnsafeMutablePointer<Double>?) -> Double) -> (Double, Double) {
            let results = Locked([(Double, Double)]())
            let t0 = MonotonicClock.seconds()
            DispatchQueue.concurrentPerform(iterations: max(1, threads)) { _ in
                var flops = 0.0
                let best = f(seconds, &flops)
                results.withLock { $0.append((best, flops)) }
            }
            let wall = MonotonicClock.seconds() - t0
            let r = results.withLock { $0 }
            let perCore = r.map(\.0).max() ?? 0
            let total = r.reduce(0) { $0 + $1.1 }
            return (perCore, wall > 0 ? total / wall / 1e9 : 0)
        }
        let (f, fw) = run { cgemm_peak_fma_gflops($0, $1) }
        let (b, bw) = ComputePrecision.bfloat16Available ? run { cgemm_peak_bf16_gflops($0, $1) } : (0, 0)
        return MachinePeak(fmaPerCore: f, bf16PerCore: b, fmaWall: fw, bf16Wall: bw, threads: max(1, threads))
    }
}
