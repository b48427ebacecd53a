import BLCore

/// A pickle value while reading: scalars inline, containers and recognised objects in an arena.
/// Containers refer to each other by index, so the reader's memory is flat (no deep reference
/// chains to recurse through), and shared references (memo GET) keep Python's sharing.
enum Item {
    case none
    case bool(Bool)
    case int(Int64)
    case bigInt(String)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case ref(Int)
}

struct TensorSpec {
    var storage: Int
    var offset: Int
    var shape: [Int]
    var strides: [Int]
    var dtype: DType?
}

enum Node {
    case list(Int)
    case tuple([Item])
    case dict(Int)
    case set(Int, frozen: Bool)
    case global(AllowedGlobal)
    case storage(Int)
    case tensor(TensorSpec)
    case object(String, [Item])
}

/// Hashable identity of a dict key or set element (Python equality for the scalar types).
///
/// Long strings and bytes hash a fixed sample of their bytes (length, 32 bytes at each end and
/// 32 spread between), not every byte: a pickle may insert one memoised megabyte key thousands of
/// times, and equality of the same shared storage is immediate. Keys that differ only between
/// the sampled bytes collide and are then told apart by equality, so the result is exact.
enum ItemKey: Hashable {
    case none, int(Int64), bigInt(String), float(UInt64), string(String), bytes([UInt8]), node(Int)

    func hash(into h: inout Hasher) {
        switch self {
        case .none: h.combine(0)
        case .int(let i): h.combine(1); h.combine(i)
        case .bigInt(let s): h.combine(2); h.combine(s)
        case .float(let f): h.combine(3); h.combine(f)
        case .string(let s): h.combine(4); ItemKey.sample(s.utf8, into: &h)
        case .bytes(let b): h.combine(5); ItemKey.sample(b, into: &h)
        case .node(let n): h.combine(6); h.combine(n)
        }
    }

    private static func sample<C: Collection>(_ c: C, into h: inout Hasher) where C.Element == UInt8 {
        let n = c.count
        h.combine(n)
        if n <= 96 {
            for b in c { h.combine(b) }
            return
        }
        for b in c.prefix(32) { h.combine(b) }
        for b in c.suffix(32) { h.combine(b) }
        let step = n / 33
        var i = c.startIndex
        for _ in 0..<32 {
            i = c.index(i, offsetBy: step)
            h.combine(c[i])
        }
    }

    init(_ item: Item) {
        switch item {
        case .none: self = .none
        case .bool(let b): self = .int(b ? 1 : 0)
        case .int(let i): self = .int(i)
        case .bigInt(let s): self = .bigInt(s)
        case .float(let d):
            if d == d.rounded(), abs(d) < 9e18, let i = Int64(exactly: d) { self = .int(i) }
            else { self = .float(d.bitPattern) }
        case .string(let s): self = .string(s)
        case .bytes(let b): self = .bytes(b)
        case .ref(let r): self = .node(r)
        }
    }
}

struct DictStore {
    var pairs: [(key: Item, value: Item)] = []
    var index: [ItemKey: Int] = [:]

    mutating func set(_ k: Item, _ v: Item) {
        let hk = ItemKey(k)
        if let i = index[hk] { pairs[i].value = v; return }
        index[hk] = pairs.count
        pairs.append((k, v))
    }
}

struct SetStore {
    var items: [Item] = []
    var index: Set<ItemKey> = []

    mutating func insert(_ x: Item) {
        if index.insert(ItemKey(x)).inserted { items.append(x) }
    }
}

/// Reads one pickle (up to and including its STOP opcode) without executing anything: every
/// opcode is recorded into values, every global is checked against the allowlist the moment
/// its opcode is read, and only the allowlisted constructors' meanings are applied.
package enum Unpickler {
    /// Deepest nesting of containers converted into a `Value`.
    package static let maxDepth = 200

    /// - Parameters:
    ///   - bytes: the pickle, possibly followed by other data (reading stops after STOP).
    ///   - name: how errors name the pickle (`archive/data.pkl`, `object pickle`).
    ///   - baseOffset: added to byte offsets in errors (position of `bytes` in its file).
    package static func read(_ bytes: UnsafeRawBufferPointer, name: String, baseOffset: Int = 0) throws -> PickleTree {
        let m = Machine(bytes: bytes, name: name, base: baseOffset)
        try m.run()
        return PickleTree(machine: m)
    }
}

/// What one pickle holds: the root object, the storages its tensors use, and where it ended.
package struct PickleTree {
    let machine: Machine
    let root: Item

    init(machine: Machine) {
        self.machine = machine
        self.root = machine.result
    }

    /// Offset just past the STOP opcode, relative to the start of the pickle.
    package var end: Int { machine.end }
    /// Every storage named by a persistent id, in order of first appearance.
    package var storages: [StorageRef] { machine.storages }

    /// Builds the value tree. `resolve` supplies the bytes of each storage (called once per
    /// storage index); tensors are validated against them.
    ///
    /// `maxElements` bounds the logical size of each tensor view: a stride-0 view of a tiny storage
    /// can claim any size, and nothing downstream should be asked to materialise that.
    package func value(maxElements: Int = 1 << 40, resolve: (StorageRef) throws -> ByteStorage) throws -> Value {
        try withoutActuallyEscaping(resolve) { r in
            var conv = Converter(m: machine, resolve: r)
            conv.maxElements = maxElements
            return try conv.convert(root, depth: 0, path: "")
        }
    }

    /// Builds the value tree of a pickle that must not reference storages.
    package func value() throws -> Value {
        if let ref = storages.first {
            throw BLError(.unsupported, "a bare pickle cannot hold tensor data (persistent id of storage \(ref.key), \(ref.typeName))",
                          location: machine.name)
        }
        return try value { ref in
            throw BLError(.unsupported, "a bare pickle cannot hold tensor data (storage \(ref.key) of type \(ref.typeName))",
                          location: machine.name)
        }
    }
}

struct Converter {
    let m: Machine
    let resolve: (StorageRef) throws -> ByteStorage
    var cache: [Int: ByteStorage] = [:]
    /// Containers already converted, by node, with the number of values each expands to: a node
    /// reached again through the memo is the same `Value` (sharing its storage, so printing can
    /// walk it once), and still counts its full size against the budget.
    var converted: [Int: (value: Value, size: Int, height: Int)] = [:]
    /// The deepest level reached so far, to know the height of each converted container (a cached
    /// container reused deeper must still respect `maxDepth`).
    var deepest = 0
    var budget: Int
    var maxElements = 1 << 40

    init(m: Machine, resolve: @escaping (StorageRef) throws -> ByteStorage) {
        self.m = m
        self.resolve = resolve
        // Shared references (memo GET) may repeat a subtree, but a real checkpoint's tree is a few
        // values per pickle byte; this stops `x = (x, x)` repeated 60 times long before memory is at risk.
        self.budget = min(max(1 << 20, m.bytes.count * 8), 1 << 25)
    }

    mutating func convert(_ item: Item, depth: Int, path: String) throws -> Value {
        budget -= 1
        if budget < 0 {
            throw BLError(.format, "pickle expands to too many values (shared references repeated beyond any plausible checkpoint)", location: m.name)
        }
        if depth > Unpickler.maxDepth {
            throw BLError(.format, "objects nested deeper than \(Unpickler.maxDepth) levels (or a container holding itself)",
                          location: path.isEmpty ? m.name : "\(m.name): '\(path)'")
        }
        deepest = max(deepest, depth)
        switch item {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .bigInt(let s): return .bigInt(s)
        case .float(let d): return .float(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .ref(let r):
            if let (v, size, height) = converted[r] {
                budget -= size
                if budget < 0 {
                    throw BLError(.format, "pickle expands to too many values (shared references repeated beyond any plausible checkpoint)", location: m.name)
                }
                if depth + height > Unpickler.maxDepth {
                    throw BLError(.format, "objects nested deeper than \(Unpickler.maxDepth) levels (or a container holding itself)",
                                  location: path.isEmpty ? m.name : "\(m.name): '\(path)'")
                }
                deepest = max(deepest, depth + height)
                return v
            }
            let before = budget, outer = deepest
            deepest = depth
            let v = try convertNode(r, depth: depth, path: path)
            let height = deepest - depth
            deepest = max(outer, deepest)
            if case .tensor = v {} else { converted[r] = (v, before - budget, height) }
            return v
        }
    }

    mutating func convertNode(_ r: Int, depth: Int, path: String) throws -> Value {
        func join(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }
        switch m.nodes[r] {
        case .list(let li):
            var out: [Value] = []
            out.reserveCapacity(m.lists[li].count)
            for (i, x) in m.lists[li].enumerated() { out.append(try convert(x, depth: depth + 1, path: join(String(i)))) }
            return .list(out)
        case .tuple(let xs):
            var out: [Value] = []
            out.reserveCapacity(xs.count)
            for (i, x) in xs.enumerated() { out.append(try convert(x, depth: depth + 1, path: join(String(i)))) }
            return .tuple(out)
        case .dict(let di):
            var out: [(key: Value, value: Value)] = []
            out.reserveCapacity(m.dicts[di].pairs.count)
            for (k, v) in m.dicts[di].pairs {
                let kv = try convert(k, depth: depth + 1, path: path)
                out.append((kv, try convert(v, depth: depth + 1, path: join(kv.keyText))))
            }
            return .dict(out)
        case .set(let si, let frozen):
            var out: [Value] = []
            for x in m.sets[si].items { out.append(try convert(x, depth: depth + 1, path: path)) }
            return .object(type: frozen ? "builtins.frozenset" : "builtins.set", args: [.list(out)])
        case .global(let g):
            if case .dtype(let d) = g { return .object(type: "torch.dtype", args: [.string(d.torchName)]) }
            return .object(type: g.typeName, args: [])
        case .storage(let si):
            let ref = m.storages[si]
            return .object(type: ref.typeName, args: [.string(ref.key), .int(Int64(ref.numel))])
        case .object(let type, let args):
            var out: [Value] = []
            for x in args { out.append(try convert(x, depth: depth + 1, path: path)) }
            return .object(type: type, args: out)
        case .tensor(let spec):
            let ref = m.storages[spec.storage]
            let storage: ByteStorage
            if let s = cache[spec.storage] {
                storage = s
            } else {
                storage = try resolve(ref)
                cache[spec.storage] = storage
            }
            do {
                let count = try Tensor.checkedCount(spec.shape)
                if count > maxElements {
                    throw BLError(.format, "tensor view of shape \(spec.shape) has \(count) elements, implausible for a file of this size (limit \(maxElements))")
                }
                return .tensor(try Tensor(dtype: spec.dtype ?? ref.dtype, shape: spec.shape, strides: spec.strides,
                                          offset: spec.offset, storage: storage))
            } catch let e as BLError {
                throw e.at("tensor '\(path)' (storage \(ref.key))")
            }
        }
    }
}
