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
            openblas_set_num_threads(Int32(clamping: newValue))
            #endif
        }
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
