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

    /// Whether `stopIdleThreads()` stopped OpenBLAS's server (then it is started again before a
    /// thread count above 1 takes effect).
    private static let serverStopped = Locked(false)

    /// Threads the BLAS runs inside each call (OpenBLAS; Accelerate decides itself).
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
            let n = Int32(clamping: max(1, newValue))
            serverStopped.withLock { stopped in
                // Only a change: OpenBLAS 0.3.21's setter starts a stopped server again even for 1.
                guard openblas_get_num_threads() != n else { return }
                if n > 1 && stopped {
                    // Raising the count on a stopped server would start some threads twice.
                    blconvert_openblas_start_server()
                    stopped = false
                }
                openblas_set_num_threads(n)
            }
            #endif
        }
    }

    /// For a process that runs OpenBLAS single-threaded only, before its first BLAS call: sets 1
    /// thread and stops OpenBLAS's worker threads. They start with the library and, idle, spin on
    /// `sched_yield` for about 0.1 s (2^28 TSC cycles) before sleeping, taking a core from our own
    /// kernels: a third of the weight preparation's CPU time of a one-clip `run` on two cores.
    /// Not for a library to call: another thread of the host process may be inside a threaded
    /// OpenBLAS call. Setting `threads` above 1 later starts them again.
    package static func stopIdleThreads() {
        #if canImport(COpenBLAS)
        serverStopped.withLock { stopped in
            openblas_set_num_threads(1)
            if blconvert_openblas_stop_server() == 1 { stopped = true }
        }
        #endif
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
