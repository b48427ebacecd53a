import Foundation

/// Which OpenBLAS kernels the process runs.
///
/// OpenBLAS (a `DYNAMIC_ARCH` build) picks its kernels once, when the library loads, from the CPU
/// or from the `OPENBLAS_CORETYPE` environment variable. On an AVX-512 machine the AVX2 "Haswell"
/// kernels (e.g. forced by `OPENBLAS_CORETYPE=Haswell`) make the convolutions of a bLVNet-TAM-50
/// clip about 1.5x slower than the SkylakeX/Cooperlake ones (0.245 s vs 0.16 s per clip, 2 threads,
/// AMD EPYC Zen 5). The choice cannot change after loading: benchmarks report it and advise.
package enum BLASRuntime {
    /// The kernel family OpenBLAS runs, e.g. "Haswell" or "SkylakeX".
    package static var coreName: String { BLAS.coreName }

    /// Stops OpenBLAS's idle spinning worker threads; see `BLAS.stopIdleThreads()` (the command
    /// line calls this first: it never runs OpenBLAS threaded).
    package static func stopIdleThreads() { BLAS.stopIdleThreads() }

    /// "running" or "stopped" (OpenBLAS's worker threads), "none" without them.
    package static var serverState: String {
        switch BLAS.serverRunning {
        case .some(true): return "running"
        case .some(false): return "stopped"
        case .none: return "none"
        }
    }

    /// The environment variable that overrides OpenBLAS's choice (read only when it loads).
    package static let coreTypeVariable = "OPENBLAS_CORETYPE"

    /// The kernel family to ask for instead of the current one, or nil when the current one is
    /// right or the user chose one: "SKYLAKEX" when OpenBLAS runs AVX2-only kernels (Haswell, Zen)
    /// on a CPU whose flags include AVX-512 F, CD, BW, DQ and VL.
    ///
    /// - Parameters:
    ///   - environment: the process environment (a set `OPENBLAS_CORETYPE`, even empty, is respected).
    ///   - cpuFlags: the CPU's feature flags (default: read from `/proc/cpuinfo`).
    package static func preferredCoreType(environment: [String: String] = ProcessInfo.processInfo.environment,
                                         core: String = coreName,
                                         cpuFlags: Set<String>? = nil) -> String? {
        if environment[coreTypeVariable] != nil { return nil }
        guard ["haswell", "zen"].contains(core.lowercased()) else { return nil }
        return avx512Available(cpuFlags: cpuFlags) ? "SKYLAKEX" : nil
    }

    /// The `flags` line of `/proc/cpuinfo` (empty when unreadable, e.g. not on Linux).
    package static func cpuInfoFlags() -> Set<String> {
        // /proc files report size 0: read them line by line.
        guard let f = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, f) > 0, let l = line {
            let text = String(cString: l)
            guard text.hasPrefix("flags"), let colon = text.firstIndex(of: ":") else { continue }
            return Set(text[text.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
                .map(String.init))
        }
        return []
    }

    /// A one-line advice when OpenBLAS runs AVX2-only kernels on an AVX-512 CPU, else nil (also
    /// nil when the convolutions run the package's AVX-512 SGEMM, i.e. `gemm == .auto` on such a CPU).
    package static func kernelAdvice(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        kernelAdvice(environment: environment, gemm: .fromEnvironment)
    }

    /// `kernelAdvice(environment:)` for convolutions that run `gemm`.
    package static func kernelAdvice(environment: [String: String], gemm: KernelContext.GemmBackend) -> String? {
        if gemm == .auto && Gemm.avx512 { return nil }
        let core = coreName
        guard ["haswell", "zen"].contains(core.lowercased()), avx512Available() else { return nil }
        if let set = environment[coreTypeVariable] {
            return "OpenBLAS runs \(core) (AVX2) kernels because \(coreTypeVariable)=\(set) is set, but this CPU has AVX-512: where your OpenBLAS build supports this CPU, unsetting it (or OPENBLAS_CORETYPE=SKYLAKEX) gives about 1.5x faster convolutions; check with blconvert verify"
        }
        return "OpenBLAS runs \(core) (AVX2) kernels on an AVX-512 CPU: \(coreTypeVariable)=SKYLAKEX gives about 1.5x faster convolutions"
    }

    /// Whether the CPU flags include AVX-512 F, CD, BW, DQ and VL (what OpenBLAS's SkylakeX kernels use).
    package static func avx512Available(cpuFlags: Set<String>? = nil) -> Bool {
        let needed: Set<String> = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        return needed.isSubset(of: cpuFlags ?? cpuInfoFlags())
    }
}
