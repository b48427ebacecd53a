import BLCore

extension JSON {
    /// The same value with NaN and infinities as the strings "NaN", "Infinity" and "-Infinity",
    /// which strict JSON parsers (jq, browsers) accept; the numbers themselves are not JSON.
    var strict: JSON {
        switch self {
        case .double(let d) where !d.isFinite:
            return .string(d.isNaN ? "NaN" : d > 0 ? "Infinity" : "-Infinity")
        case .array(let xs): return .array(xs.map(\.strict))
        case .object(let items): return .object(items.map { ($0.0, $0.1.strict) })
        default: return self
        }
    }

    /// What `--json` prints: strict JSON, indented.
    var strictJSONText: String { strict.serialized(indent: 2) }
}
