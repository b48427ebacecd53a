// The C library of the platform, imported once for every module of the package: each module
// imports BLCore, which re-exports Glibc (Linux) or Darwin (macOS) from here.
#if canImport(Glibc)
@_exported import Glibc
#elseif canImport(Musl)
@_exported import Musl
#elseif canImport(Darwin)
@_exported import Darwin
#endif

/// Process-level facts the commands and benchmarks report.
package enum ProcessUsage {
    private static func usage() -> rusage {
        var u = rusage()
        #if canImport(Glibc)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        #else
        getrusage(RUSAGE_SELF, &u)
        #endif
        return u
    }

    /// Peak resident set size of this process, in bytes (`ru_maxrss` is in KiB on Linux, bytes on Darwin).
    package static func peakResidentBytes() -> Int {
        #if os(Linux)
        return Int(usage().ru_maxrss) * 1024
        #else
        return Int(usage().ru_maxrss)
        #endif
    }

    /// CPU seconds (user + system) this process has used.
    package static func cpuSeconds() -> Double {
        let u = usage()
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return s(u.ru_utime) + s(u.ru_stime)
    }
}
