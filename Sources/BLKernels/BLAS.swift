import BLCore
#if canImport(COpenBLAS)
import COpenBLAS
#elseif canImport(Accelerate)
import Accelerate
#endif

/// The one door to the system BLAS: OpenBLAS on Linux, Accelerate on Darwin (where OpenBLAS is
/// not linked). Row-major single-precision GEMM and the library's thread setting.
package enum BLAS {
    /// `c[m, n] = a[m, k] x op(b)` (beta 0), row-major; `op(b)` is `b[k, n]`, or `b[n, k]`
    /// transposed when `transposeB`. Dimensions and leading dimensions must fit `Int32`.
    package static func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                              b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                              c: UnsafeMutablePointer<Float>, ldc: Int) {
        #if canImport(COpenBLAS) || canImport(Accelerate)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
        #else
        // No BLAS on this platform: the direct loop (slow, but the results are the same sums).
        for i in 0..<m {
            for j in 0..<n {
                var acc: Float = 0
                for p in 0..<k { acc += a[i * lda + p] * (transposeB ? b[j * ldb + p] : b[p * ldb + j]) }
                c[i * ldc + j] = acc
            }
        }
        #endif
    }

    /// Whether a thread count above 1 was ever set (then OpenBLAS's server is never stopped again:
    /// a call on another thread could be using it).
    private static let threadedUse = Locked(false)

    /// Threads the BLAS runs inside each call (OpenBLAS; Accelerate decides itself). Setting 1
    /// before any larger value was set also stops OpenBLAS's worker threads: started with the
    /// library and idle, they spin on `sched_yield` for about 0.1 s, taking a core from our own
    /// kernels (a third of a one-clip `run`'s weight preparation on two cores). A larger value
    /// starts them again.
    package static var threads: Int {
        get {
            #if canImport(COpenBLAS)
            return Int(openblas_get_num_threads())
            #else
            return 1
            #endif
        }
        set {
            #if canImport(COpenBLAS)
            threadedUse.withLock { threaded in
                if newValue <= 1 {
                    openblas_set_num_threads(1)
                    if !threaded { _ = blconvert_openblas_stop_server() }
                } else {
                    threaded = true
                    blconvert_openblas_start_server()
                    openblas_set_num_threads(Int32(clamping: newValue))
                }
            }
            #endif
        }
    }

    /// Whether OpenBLAS's worker threads are running (nil without them: Accelerate, or an OpenBLAS
    /// built without its thread server).
    package static var serverRunning: Bool? {
        #if canImport(COpenBLAS)
        let r = blconvert_openblas_server_running()
        return r < 0 ? nil : r == 1
        #else
        return nil
        #endif
    }

    /// The kernel family the BLAS runs, e.g. "Haswell" or "SkylakeX" ("Accelerate" on Darwin).
    package static var coreName: String {
        #if canImport(COpenBLAS)
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
        #elseif canImport(Accelerate)
        return "Accelerate"
        #else
        return "none"
        #endif
    }
}
