import BLCore
/// How far an output is from its reference, measured as the parity criterion states it:
/// `max|out - ref| / max|ref|` plus the usual companions.
package struct Agreement: Sendable, Equatable {
    package var maxAbsError: Double
    /// max |out - ref| / max |ref| over the compared values.
    package var maxRelError: Double
    package var cosine: Double
    package var count: Int
    package var nonFinite: Int

    package init(maxAbsError: Double, maxRelError: Double, cosine: Double, count: Int, nonFinite: Int) {
        self.maxAbsError = maxAbsError
        self.maxRelError = maxRelError
        self.cosine = cosine
        self.count = count
        self.nonFinite = nonFinite
    }

    /// Compares the first `ref.count` values of `out` (callers check that the sizes agree).
    package static func measure(_ out: UnsafeBufferPointer<Float>, _ ref: [Double]) -> Agreement {
        let n = min(out.count, ref.count)
        var maxAbs = 0.0, maxRef = 0.0, dot = 0.0, na = 0.0, nb = 0.0
        var nonFinite = 0
        for i in 0..<n {
            let a = Double(out[i]), r = ref[i]
            if !a.isFinite { nonFinite += 1; continue }
            let d = abs(a - r)
            if d > maxAbs { maxAbs = d }
            if abs(r) > maxRef { maxRef = abs(r) }
            dot += a * r; na += a * a; nb += r * r
        }
        let rel = maxRef > 0 ? maxAbs / maxRef : (maxAbs == 0 ? 0 : .infinity)
        let cos = (na > 0 && nb > 0) ? dot / (na.squareRoot() * nb.squareRoot()) : (na == nb ? 1 : 0)
        return Agreement(maxAbsError: nonFinite > 0 ? .infinity : maxAbs,
                         maxRelError: nonFinite > 0 ? .infinity : rel,
                         cosine: cos, count: ref.count, nonFinite: nonFinite)
    }

    package static func measure(_ out: [Float], _ ref: [Double]) -> Agreement {
        out.withUnsafeBufferPointer { measure($0, ref) }
    }

    /// Passes when every difference is within `atol + rtol * max|ref|`, and nothing is NaN or infinite.
    package func passes(rtol: Double, atol: Double, refScale: Double) -> Bool {
        nonFinite == 0 && maxAbsError <= atol + rtol * refScale
    }
}
