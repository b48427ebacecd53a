import CGemm

/// The single-threaded row-major SGEMM behind the convolutions:
///
///     c[m, n] = sum_k a[m*lda + k] * b[k*ldb + n]      (beta = 0; M x N result, leading dimension ldc)
///
/// With `KernelContext.gemm == .auto` on a CPU with AVX-512 F and VL, for single-threaded GEMMs
/// (`.tiles` parallelism), it runs the package's own AVX-512 kernel (CGemm: packed panels, 8x48
/// register block), whatever kernels OpenBLAS chose when it loaded (`OPENBLAS_CORETYPE` is left
/// as the user set it); otherwise, or when that kernel declines (e.g. no memory for its pack
/// buffers), `cblas_sgemm`.
enum Gemm {
    /// Whether this CPU runs the AVX-512 kernel (AVX-512 F and VL; checked once).
    static let avx512: Bool = cgemm_available() != 0

    /// Whether `context` routes single-threaded GEMMs to the AVX-512 kernel.
    static func usesOwnKernel(_ context: KernelContext) -> Bool {
        context.gemm == .auto && avx512 && context.blasThreads == 1
    }

    /// `c = a x b` (see the type's comment). Dimensions must fit `Int32` (the callers check).
    static func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      c: UnsafeMutablePointer<Float>, ldc: Int, context: KernelContext) {
        if usesOwnKernel(context),
           cgemm_sgemm(m, n, k, a, lda, b, ldb, c, ldc) == 0 {
            return
        }
        BLAS.sgemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
    }
}

extension Kernels {
    /// What runs the convolution GEMMs under `context`, for reports: "AVX-512 (CGemm)" or
    /// "OpenBLAS <core>" (e.g. "OpenBLAS Haswell").
    package static func convolutionGemmName(_ context: KernelContext) -> String {
        Gemm.usesOwnKernel(context) ? "AVX-512 (CGemm)" : "OpenBLAS \(BLASRuntime.coreName)"
    }
}
