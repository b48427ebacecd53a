/// Arithmetic on numbers that come from files: every operation that could overflow throws a
/// format error naming what was being computed, instead of trapping.
///
/// `what` describes the quantity (`"offset of tensor 'x'"`, `"MACs of node 12"`); it is only
/// evaluated when the operation overflows.
package enum Checked {
    package static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.addingReportingOverflow(b)
        if o { throw overflow(what(), "\(a) + \(b)") }
        return r
    }

    package static func subtract(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.subtractingReportingOverflow(b)
        if o { throw overflow(what(), "\(a) - \(b)") }
        return r
    }

    package static func multiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        if o { throw overflow(what(), "\(a) * \(b)") }
        return r
    }

    /// The product of `factors` (1 for none).
    package static func product(_ factors: [Int], _ what: @autoclosure () -> String) throws -> Int {
        var r = 1
        for f in factors {
            let (m, o) = r.multipliedReportingOverflow(by: f)
            if o { throw overflow(what(), factors.map(String.init).joined(separator: " * ")) }
            r = m
        }
        return r
    }

    /// The sum of `terms` (0 for none).
    package static func sum(_ terms: [Int], _ what: @autoclosure () -> String) throws -> Int {
        var r = 0
        for t in terms {
            let (s, o) = r.addingReportingOverflow(t)
            if o { throw overflow(what(), "a sum of \(terms.count) terms") }
            r = s
        }
        return r
    }

    /// `v` as an `Int` when it is one exactly.
    package static func int<T: BinaryInteger>(_ v: T, _ what: @autoclosure () -> String) throws -> Int {
        guard let i = Int(exactly: v) else { throw BLError(.format, "\(what()) \(v) is out of range") }
        return i
    }

    /// `v` within `range`, else a format error naming the field and the bounds.
    package static func bounded(_ v: Int, _ range: ClosedRange<Int>, _ what: @autoclosure () -> String) throws -> Int {
        guard range.contains(v) else {
            throw BLError(.format, "\(what()) \(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    private static func overflow(_ what: String, _ expression: String) -> BLError {
        BLError(.format, "\(what) overflows (\(expression))")
    }
}
