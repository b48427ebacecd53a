/// A small JSON value and writer (no Foundation), used for `--json` output, package metadata
/// and safetensors headers.
package indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    /// A number written verbatim (big integers).
    case rawNumber(String)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    package static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y || (x.isNaN && y.isNaN)
        case let (.rawNumber(x), .rawNumber(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    package subscript(key: String) -> JSON? {
        if case .object(let items) = self { return items.first { $0.0 == key }?.1 }
        return nil
    }

    package var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    package var intValue: Int? {
        switch self {
        case .int(let i): return Int(i)
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: return nil
        }
    }
    package var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
    package var arrayValue: [JSON]? { if case .array(let a) = self { return a }; return nil }
    package var objectValue: [(String, JSON)]? { if case .object(let o) = self { return o }; return nil }

    /// Serialises; `indent` > 0 pretty-prints.
    package func serialized(indent: Int = 0) -> String {
        var out = ""
        write(into: &out, indent: indent, level: 0)
        return out
    }

    private func write(into out: inout String, indent: Int, level: Int) {
        let nl = indent > 0 ? "\n" : ""
        let pad = String(repeating: " ", count: indent * (level + 1))
        let padEnd = String(repeating: " ", count: indent * level)
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isNaN { out += "NaN" } else if d.isInfinite { out += d > 0 ? "Infinity" : "-Infinity" }
            else if d == d.rounded() && abs(d) < 1e15 { out += String(Int64(d)) + ".0" }
            else { out += "\(d)" }
        case .rawNumber(let s): out += s
        case .string(let s): JSON.writeString(s, into: &out)
        case .array(let xs):
            if xs.isEmpty { out += "[]"; return }
            out += "[" + nl
            for (i, x) in xs.enumerated() {
                out += pad
                x.write(into: &out, indent: indent, level: level + 1)
                if i + 1 < xs.count { out += "," }
                out += nl
            }
            out += padEnd + "]"
        case .object(let items):
            if items.isEmpty { out += "{}"; return }
            out += "{" + nl
            for (i, (k, v)) in items.enumerated() {
                out += pad
                JSON.writeString(k, into: &out)
                out += indent > 0 ? ": " : ":"
                v.write(into: &out, indent: indent, level: level + 1)
                if i + 1 < items.count { out += "," }
                out += nl
            }
            out += padEnd + "}"
        }
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

extension Value {
    /// The JSON form of a non-tensor value (tensors appear as a short description).
    package var json: JSON {
        switch self {
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt(let s): return .rawNumber(s)
        case .float(let d): return .double(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .object([("bytes", .int(Int64(b.count)))])
        case .list(let xs), .tuple(let xs): return .array(xs.map { $0.json })
        case .dict(let items): return .object(items.map { ($0.key.keyText, $0.value.json) })
        case .tensor(let t):
            return .object([("tensor", .string(t.dtype.torchName)), ("shape", .array(t.shape.map { .int(Int64($0)) }))])
        case .object(let type, let args):
            return .object([("type", .string(type)), ("args", .array(args.map { $0.json }))])
        }
    }
}

/// Converts values to JSON for printing (`inspect`, `extract`'s metadata) walking each shared
/// value once: a pickle can reference one megabyte string (or one list) thousands of times through
/// its memo, and the value tree keeps that sharing (one storage). The first occurrence is written
/// in full; each later one as the string `"<shared: same as PATH>"`. Only long strings (1 KiB and
/// more) and containers of two or more values are tracked, by the identity of their storage.
package final class SharedValuePrinter {
    private struct Identity: Hashable { var kind: Int; var address: UInt; var count: Int }
    private var seen: [Identity: String] = [:]

    package init() {}

    /// The JSON form of `value` found at `path` (as `Value.json`, repeats abbreviated).
    package func json(_ value: Value, path: String) -> JSON {
        func join(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }
        if let id = identity(value) {
            if let first = seen[id] { return .string("<shared: same as \(first.isEmpty ? "(root)" : first)>") }
            seen[id] = path
        }
        switch value {
        case .list(let xs), .tuple(let xs):
            return .array(xs.enumerated().map { json($0.element, path: join(String($0.offset))) })
        case .dict(let items):
            return .object(items.map { ($0.key.keyText, json($0.value, path: join($0.key.keyText))) })
        case .object(let type, let args):
            return .object([("type", .string(type)), ("args", .array(args.enumerated().map { json($0.element, path: join(String($0.offset))) }))])
        default:
            return value.json
        }
    }

    private func identity(_ v: Value) -> Identity? {
        func of<T>(_ kind: Int, _ xs: [T]) -> Identity? {
            guard xs.count >= 2 else { return nil }
            return xs.withUnsafeBufferPointer { b in b.baseAddress.map { Identity(kind: kind, address: UInt(bitPattern: $0), count: xs.count) } }
        }
        switch v {
        case .string(let s):
            guard s.utf8.count >= 1024 else { return nil }
            return s.utf8.withContiguousStorageIfAvailable { b in
                b.baseAddress.map { Identity(kind: 0, address: UInt(bitPattern: $0), count: b.count) }
            } ?? nil
        case .list(let xs): return of(1, xs)
        case .tuple(let xs): return of(2, xs)
        case .dict(let items): return of(3, items)
        case .object(_, let args): return of(4, args)
        default: return nil
        }
    }
}
