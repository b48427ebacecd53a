import Foundation

/// Class rankings.
package enum Ranking {
    /// Indices of the `k` largest values, largest first; ties keep the lower index first (as a stable sort does).
    package static func topK<T: BinaryFloatingPoint>(_ values: ArraySlice<T>, _ k: Int) -> [Int] {
        let base = values.startIndex
        let idx = values.indices.sorted { a, b in
            values[a] != values[b] ? values[a] > values[b] : a < b
        }
        return idx.prefix(k).map { $0 - base }
    }

    /// Softmax in float64 (the maximum subtracted first).
    package static func softmax<T: BinaryFloatingPoint>(_ logits: ArraySlice<T>) -> [Double] {
        let m = Double(logits.max() ?? 0)
        let e = logits.map { exp(Double($0) - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}

