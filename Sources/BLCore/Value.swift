/// The typed tree of everything a checkpoint holds: tensors and the plain values around them
/// (epochs, architecture names, optimizer state). Readers build it; nothing in it is executable.
package indirect enum Value: Sendable {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer outside Int64, as its decimal digits (with a leading "-" when negative).
    case bigInt(String)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case list([Value])
    case tuple([Value])
    /// Insertion-ordered, like Python's dict.
    case dict([(key: Value, value: Value)])
    case tensor(Tensor)
    /// A recognised non-tensor object recorded by name with its arguments
    /// (`torch.Size`, `torch.device`, `torch.dtype`, `builtins.set`, ...).
    case object(type: String, args: [Value])

    package var typeName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .tensor: return "tensor"
        case .object(let t, _): return t
        }
    }

    /// The text used when a value is a dict key in a dotted path.
    package var keyText: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bigInt(let s): return s
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .float(let d): return String(d)
        default: return "<\(typeName)>"
        }
    }

    package subscript(key: String) -> Value? {
        if case .dict(let items) = self {
            for (k, v) in items { if case .string(let s) = k, s == key { return v } }
        }
        return nil
    }

    package var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    package var intValue: Int64? { if case .int(let i) = self { return i }; return nil }
}

/// A named entry after flattening: `state_dict.module.conv1.weight`, `epoch`, `nested.a.b.0`.
package struct FlatEntry: Sendable {
    package var path: String
    package var value: Value

    package init(path: String, value: Value) {
        self.path = path
        self.value = value
    }
}

extension Value {
    /// Walks the tree and returns every tensor and every non-container leaf with its dotted path.
    /// Dicts contribute their keys, lists and tuples their indices. Empty containers are leaves.
    package func flattened(prefix: String = "") -> (tensors: [(path: String, tensor: Tensor)], others: [FlatEntry]) {
        var tensors: [(path: String, tensor: Tensor)] = []
        var others: [FlatEntry] = []
        func join(_ a: String, _ b: String) -> String { a.isEmpty ? b : "\(a).\(b)" }
        func walk(_ v: Value, _ path: String) {
            switch v {
            case .tensor(let t): tensors.append((path, t))
            case .dict(let items) where !items.isEmpty:
                for (k, x) in items { walk(x, join(path, k.keyText)) }
            case .list(let xs) where !xs.isEmpty && xs.contains(where: { $0.containsTensor }):
                for (i, x) in xs.enumerated() { walk(x, join(path, String(i))) }
            case .tuple(let xs) where !xs.isEmpty && xs.contains(where: { $0.containsTensor }):
                for (i, x) in xs.enumerated() { walk(x, join(path, String(i))) }
            default: others.append(FlatEntry(path: path, value: v))
            }
        }
        walk(self, prefix)
        return (tensors, others)
    }

    package var containsTensor: Bool {
        switch self {
        case .tensor: return true
        case .dict(let items): return items.contains { $0.value.containsTensor }
        case .list(let xs), .tuple(let xs): return xs.contains { $0.containsTensor }
        case .object(_, let args): return args.contains { $0.containsTensor }
        default: return false
        }
    }
}
