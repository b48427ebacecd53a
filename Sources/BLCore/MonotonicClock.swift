/// The one clock of the package: seconds from an arbitrary origin that only moves forward
/// (`CLOCK_MONOTONIC`), for durations, deadlines and timings.
package enum MonotonicClock {
    /// Seconds since an arbitrary fixed origin.
    package static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Seconds `body` took, with its result.
    package static func measure<R>(_ body: () throws -> R) rethrows -> (result: R, seconds: Double) {
        let start = seconds()
        let r = try body()
        return (r, seconds() - start)
    }
}
