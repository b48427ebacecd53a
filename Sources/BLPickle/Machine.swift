import BLCore

/// The opcode interpreter behind `Unpickler`. Records; never calls anything.
final class Machine {
    let bytes: UnsafeRawBufferPointer
    let name: String
    let base: Int

    var pos = 0
    var opStart = 0
    var stack: [Item] = []
    var marks: [Int] = []
    var memo: [Int: Item] = [:]
    var nodes: [Node] = []
    var lists: [[Item]] = []
    var dicts: [DictStore] = []
    var sets: [SetStore] = []
    var storages: [StorageRef] = []
    var result: Item = .none
    var end = 0

    init(bytes: UnsafeRawBufferPointer, name: String, base: Int) {
        self.bytes = bytes
        self.name = name
        self.base = base
    }

    // MARK: errors

    func fail(_ message: String, kind: BLError.Kind = .format) -> BLError {
        BLError(kind, message, location: "\(name) at byte \(base + opStart)")
    }

    // MARK: input

    @inline(__always) var remaining: Int { bytes.count - pos }

    func take(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else {
            throw fail("truncated pickle: \(what) needs \(n) bytes, \(remaining) left")
        }
        let s = UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
        pos += n
        return s
    }

    func u8() throws -> UInt8 {
        guard remaining >= 1 else { throw fail("truncated pickle: missing opcode argument") }
        defer { pos += 1 }
        return bytes[pos]
    }

    func le<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let s = try take(MemoryLayout<T>.size, "an integer argument")
        return T(littleEndian: s.loadUnaligned(as: T.self))
    }

    /// A length field, checked against what is left of the input before anything is allocated.
    func length<T: FixedWidthInteger>(_: T.Type) throws -> Int {
        let v = try le(T.self)
        guard v >= 0, let n = Int(exactly: v), n <= remaining else {
            throw fail("length \(v) exceeds the \(remaining) bytes left in the pickle")
        }
        return n
    }

    /// The bytes up to the next newline (consumed), without a trailing carriage return.
    func rawLine() throws -> UnsafeRawBufferPointer {
        guard let nl = bytes[pos...].firstIndex(of: 0x0a) else {
            throw fail("truncated pickle: missing end of line")
        }
        var end = nl
        if end > pos && bytes[end - 1] == 0x0d { end -= 1 }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[pos..<end])
        pos = nl + 1
        return raw
    }

    func line() throws -> String {
        guard let s = String(validating: try rawLine(), as: UTF8.self) else { throw fail("text argument is not valid UTF-8") }
        return s
    }

    func utf8(_ raw: UnsafeRawBufferPointer) throws -> String {
        guard let s = String(validating: raw, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
        return s
    }

    // MARK: stack

    @inline(__always) var floor: Int { marks.last ?? 0 }

    @inline(__always) func push(_ x: Item) { stack.append(x) }

    func pop() throws -> Item {
        guard stack.count > floor else { throw fail("pickle stack underflow") }
        return stack.removeLast()
    }

    func top() throws -> Item {
        guard stack.count > floor, let t = stack.last else { throw fail("pickle stack underflow") }
        return t
    }

    func popMark() throws -> [Item] {
        guard let m = marks.popLast() else { throw fail("no MARK on the stack") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    func newNode(_ n: Node) -> Item {
        nodes.append(n)
        return .ref(nodes.count - 1)
    }

    func node(_ item: Item) -> Node? {
        if case .ref(let r) = item { return nodes[r] }
        return nil
    }

    func describe(_ item: Item) -> String {
        switch item {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .ref(let r):
            switch nodes[r] {
            case .list: return "list"
            case .tuple: return "tuple"
            case .dict: return "dict"
            case .set(_, let f): return f ? "frozenset" : "set"
            case .global(let g): return g.typeName
            case .storage: return "storage"
            case .tensor: return "tensor"
            case .object(let t, _): return t
            }
        }
    }

    // MARK: main loop

    func run() throws {
        guard bytes.count > 0 else { throw fail("empty pickle") }
        while true {
            opStart = pos
            guard pos < bytes.count else { throw fail("truncated pickle: no STOP opcode") }
            let raw = bytes[pos]
            pos += 1
            guard let op = Opcode(rawValue: raw) else {
                throw fail("unknown pickle opcode 0x\(String(raw, radix: 16))")
            }
            if op == .stop {
                result = try pop()
                end = pos
                return
            }
            try step(op)
        }
    }

    func step(_ op: Opcode) throws {
        switch op {
        case .stop: break
        case .mark: marks.append(stack.count)
        case .pop:
            if stack.count > floor { stack.removeLast() } else { _ = try popMark() }
        case .popMark: _ = try popMark()
        case .dup: push(try top())
        case .proto:
            let v = try u8()
            if v > 5 { throw fail("pickle protocol \(v) is newer than 5", kind: .unsupported) }
        case .frame:
            let n = try le(UInt64.self)
            if n > UInt64(remaining) { throw fail("frame of \(n) bytes exceeds the \(remaining) bytes left") }

        // scalars
        case .none: push(.none)
        case .newTrue: push(.bool(true))
        case .newFalse: push(.bool(false))
        case .binInt: push(.int(Int64(try le(Int32.self))))
        case .binInt1: push(.int(Int64(try u8())))
        case .binInt2: push(.int(Int64(try le(UInt16.self))))
        case .long1:
            let n = Int(try u8())
            push(bigInt(try take(n, "LONG1")))
        case .long4:
            let n = try length(Int32.self)
            if n > PickleInteger.maxBytes { throw fail("integer of \(n) bytes is too large", kind: .unsupported) }
            push(bigInt(try take(n, "LONG4")))
        case .int:
            let s = try line()
            if s == "01" { push(.bool(true)) } else if s == "00" { push(.bool(false)) }
            else { push(try decimal(s)) }
        case .long: push(try decimal(try line()))
        case .float:
            let s = try line()
            guard let d = Double(s) else { throw fail("bad float literal '\(s.prefix(40))'") }
            push(.float(d))
        case .binFloat:
            let s = try take(8, "BINFLOAT")
            push(.float(Double(bitPattern: UInt64(bigEndian: s.loadUnaligned(as: UInt64.self)))))

        // strings and bytes
        case .binUnicode: push(.string(try utf8(try take(try length(UInt32.self), "BINUNICODE"))))
        case .shortBinUnicode: push(.string(try utf8(try take(Int(try u8()), "SHORT_BINUNICODE"))))
        case .binUnicode8: push(.string(try utf8(try take(try length(UInt64.self), "BINUNICODE8"))))
        case .unicode: push(.string(try rawUnicodeEscape(try rawLine())))
        case .binString: push(pyString(try take(try length(Int32.self), "BINSTRING")))
        case .shortBinString: push(pyString(try take(Int(try u8()), "SHORT_BINSTRING")))
        case .string:
            let b = try unquote(try rawLine())
            push(b.withUnsafeBytes { pyString($0) })
        case .binBytes: push(.bytes(Array(try take(try length(UInt32.self), "BINBYTES"))))
        case .shortBinBytes: push(.bytes(Array(try take(Int(try u8()), "SHORT_BINBYTES"))))
        case .binBytes8: push(.bytes(Array(try take(try length(UInt64.self), "BINBYTES8"))))
        case .byteArray8: push(.bytes(Array(try take(try length(UInt64.self), "BYTEARRAY8"))))

        // containers
        case .emptyTuple: push(newNode(.tuple([])))
        case .tuple: push(newNode(.tuple(try popMark())))
        case .tuple1:
            let a = try pop()
            push(newNode(.tuple([a])))
        case .tuple2:
            let b = try pop(), a = try pop()
            push(newNode(.tuple([a, b])))
        case .tuple3:
            let c = try pop(), b = try pop(), a = try pop()
            push(newNode(.tuple([a, b, c])))
        case .emptyList: push(newList([]))
        case .list: push(newList(try popMark()))
        case .append:
            let x = try pop()
            try listAppend(try top(), [x])
        case .appends:
            let xs = try popMark()
            try listAppend(try top(), xs)
        case .emptyDict: push(newDict())
        case .dict:
            let xs = try popMark()
            let d = newDict()
            try dictSet(d, xs)
            push(d)
        case .setItem:
            let v = try pop(), k = try pop()
            try dictSet(try top(), [k, v])
        case .setItems:
            let xs = try popMark()
            try dictSet(try top(), xs)
        case .emptySet: push(newSet([], frozen: false))
        case .addItems:
            let xs = try popMark()
            guard case .set(let si, false)? = node(try top()) else {
                throw fail("ADDITEMS on a \(describe(try top())), expected a set")
            }
            for x in xs { sets[si].insert(x) }
        case .frozenSet: push(newSet(try popMark(), frozen: true))

        // memo
        case .put: try memoPut(try index(try line()))
        case .binPut: try memoPut(Int(try u8()))
        case .longBinPut: try memoPut(Int(try le(UInt32.self)))
        case .memoize: try memoPut(memo.count)
        case .get: try memoGet(try index(try line()))
        case .binGet: try memoGet(Int(try u8()))
        case .longBinGet: try memoGet(Int(try le(UInt32.self)))

        // globals and objects
        case .global:
            let module = try line()
            let name = try line()
            push(try global(module, name))
        case .stackGlobal:
            let n = try pop(), m = try pop()
            guard case .string(let name) = n, case .string(let module) = m else {
                throw fail("STACK_GLOBAL needs two strings, found \(describe(m)) and \(describe(n))")
            }
            push(try global(module, name))
        case .inst:
            let module = try line()
            let name = try line()
            let g = try global(module, name)
            let args = try popMark()
            push(try construct(g, args, how: "INST"))
        case .obj:
            let xs = try popMark()
            guard let cls = xs.first else { throw fail("OBJ without a class") }
            push(try construct(cls, Array(xs.dropFirst()), how: "OBJ"))
        case .reduce:
            let args = try pop(), f = try pop()
            push(try call(f, args))
        case .newObj:
            let args = try pop(), cls = try pop()
            push(try construct(cls, try tupleItems(args, "NEWOBJ arguments"), how: "NEWOBJ"))
        case .newObjEx:
            let kwargs = try pop(), args = try pop(), cls = try pop()
            if case .dict(let di)? = node(kwargs), dicts[di].pairs.isEmpty {} else {
                throw fail("NEWOBJ_EX with keyword arguments is not supported", kind: .unsupported)
            }
            push(try construct(cls, try tupleItems(args, "NEWOBJ_EX arguments"), how: "NEWOBJ_EX"))
        case .build:
            let state = try pop()
            try build(try top(), state)
        case .persId:
            push(try persistent(.string(try line())))
        case .binPersId:
            push(try persistent(try pop()))
        case .ext1, .ext2, .ext4:
            throw fail("extension registry codes (EXT1/2/4) name globals indirectly and are refused", kind: .refused)
        case .nextBuffer, .readonlyBuffer:
            throw fail("out-of-band buffers (pickle protocol 5) are not supported", kind: .unsupported)
        }
    }

    // MARK: helpers

    func bigInt(_ raw: UnsafeRawBufferPointer) -> Item {
        let r = PickleInteger.decode(raw)
        if let s = r.small { return .int(s) }
        return .bigInt(r.decimal)
    }

    func decimal(_ s: String) throws -> Item {
        guard let r = PickleInteger.parseDecimal(s) else { throw fail("bad integer literal '\(s.prefix(40))'") }
        if let v = r.small { return .int(v) }
        return .bigInt(r.decimal)
    }

    func index(_ s: String) throws -> Int {
        guard let i = Int(s), i >= 0 else { throw fail("bad memo index '\(s.prefix(40))'") }
        return i
    }

    /// Python 2 `str`: text when it is UTF-8 (as torch.load decodes it), bytes otherwise.
    func pyString(_ raw: UnsafeRawBufferPointer) -> Item {
        if let s = String(validating: raw, as: UTF8.self) { return .string(s) }
        return .bytes(Array(raw))
    }

    /// The body of a protocol-0 STRING literal (`'abc\n'` with Python escapes).
    func unquote(_ raw: UnsafeRawBufferPointer) throws -> [UInt8] {
        let b = Array(raw)
        guard b.count >= 2, let q = b.first, q == 0x27 || q == 0x22, b.last == q else {
            throw fail("STRING argument is not quoted")
        }
        var out: [UInt8] = []
        var i = 1
        let end = b.count - 1
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        while i < end {
            let c = b[i]
            if c != 0x5c { out.append(c); i += 1; continue }
            guard i + 1 < end else { throw fail("STRING ends inside an escape") }
            let e = b[i + 1]
            i += 2
            switch e {
            case 0x5c: out.append(0x5c)
            case 0x27: out.append(0x27)
            case 0x22: out.append(0x22)
            case 0x6e: out.append(0x0a)
            case 0x72: out.append(0x0d)
            case 0x74: out.append(0x09)
            case 0x30...0x37:
                var v = Int(e - 0x30)
                var k = 0
                while k < 2, i < end, (0x30...0x37).contains(b[i]) { v = v * 8 + Int(b[i] - 0x30); i += 1; k += 1 }
                out.append(UInt8(v & 0xff))
            case 0x78:
                guard i + 1 < end, let h = hex(b[i]), let l = hex(b[i + 1]) else { throw fail("bad \\x escape in STRING") }
                out.append(h << 4 | l)
                i += 2
            default: throw fail("unsupported escape in STRING")
            }
        }
        return out
    }

    /// Python's raw-unicode-escape: bytes are code points below 256, others are \uXXXX / \UXXXXXXXX.
    func rawUnicodeEscape(_ raw: UnsafeRawBufferPointer) throws -> String {
        var out = String.UnicodeScalarView()
        var i = 0
        let n = raw.count
        func hexValue(_ from: Int, _ count: Int) -> UInt32? {
            var v: UInt32 = 0
            for k in from..<(from + count) {
                let c = raw[k]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x61...0x66: d = UInt32(c - 0x61 + 10)
                case 0x41...0x46: d = UInt32(c - 0x41 + 10)
                default: return nil
                }
                v = v << 4 | d
            }
            return v
        }
        while i < n {
            let c = raw[i]
            if c == 0x5c, i + 1 < n, raw[i + 1] == 0x75 || raw[i + 1] == 0x55 {
                let k = raw[i + 1] == 0x75 ? 4 : 8
                guard i + 2 + k <= n, let v = hexValue(i + 2, k), let u = Unicode.Scalar(v) else {
                    throw fail("bad \\u escape in UNICODE")
                }
                out.append(u)
                i += 2 + k
            } else {
                out.append(Unicode.Scalar(c))
                i += 1
            }
        }
        return String(out)
    }

    func newList(_ xs: [Item]) -> Item {
        lists.append(xs)
        return newNode(.list(lists.count - 1))
    }

    func newDict() -> Item {
        dicts.append(DictStore())
        return newNode(.dict(dicts.count - 1))
    }

    func newSet(_ xs: [Item], frozen: Bool) -> Item {
        var s = SetStore()
        for x in xs { s.insert(x) }
        sets.append(s)
        return newNode(.set(sets.count - 1, frozen: frozen))
    }

    func listAppend(_ target: Item, _ xs: [Item]) throws {
        guard case .list(let li)? = node(target) else {
            throw fail("APPEND to a \(describe(target)), expected a list")
        }
        lists[li].append(contentsOf: xs)
    }

    func dictSet(_ target: Item, _ xs: [Item]) throws {
        guard case .dict(let di)? = node(target) else {
            throw fail("SETITEM on a \(describe(target)), expected a dict")
        }
        guard xs.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
        var i = 0
        while i < xs.count {
            dicts[di].set(xs[i], xs[i + 1])
            i += 2
        }
    }

    func memoPut(_ i: Int) throws {
        memo[i] = try top()
    }

    func memoGet(_ i: Int) throws {
        guard let x = memo[i] else { throw fail("memo entry \(i) was never stored") }
        push(x)
    }

    func tupleItems(_ item: Item, _ what: String) throws -> [Item] {
        switch node(item) {
        case .tuple(let xs)?: return xs
        case .list(let li)?: return lists[li]
        default: throw fail("\(what) must be a tuple, found \(describe(item))")
        }
    }

    func global(_ module: String, _ name: String) throws -> Item {
        guard let g = AllowedGlobal.lookup(module: module, name: name) else {
            var e = fail("refusing global \(module).\(name)" + AllowedGlobal.refusalHint(module: module, name: name), kind: .refused)
            e.detail = .refusedGlobal(module: module, name: name)
            throw e
        }
        return newNode(.global(g))
    }

    // MARK: allowlisted semantics

    func int(_ item: Item, _ what: String) throws -> Int {
        switch item {
        case .int(let v): if let i = Int(exactly: v) { return i }
        case .bool(let b): return b ? 1 : 0
        default: break
        }
        throw fail("\(what) must be an integer, found \(describe(item))")
    }

    func ints(_ item: Item, _ what: String) throws -> [Int] {
        var x = item
        if case .object("torch.Size", let args)? = node(item), let a = args.first { x = a }
        return try tupleItems(x, what).map { try int($0, "\(what) entry") }
    }

    func string(_ item: Item, _ what: String) throws -> String {
        switch item {
        case .string(let s): return s
        case .bytes(let b): if let s = String(validating: b, as: UTF8.self) { return s }
        case .int(let i): return String(i)
        default: break
        }
        throw fail("\(what) must be a string, found \(describe(item))")
    }

    func persistent(_ pid: Item) throws -> Item {
        guard case .tuple(let xs)? = node(pid), xs.count == 5 || xs.count == 6 else {
            throw fail("unsupported persistent id (a \(describe(pid))); expected ('storage', type, key, location, numel)", kind: .unsupported)
        }
        guard try string(xs[0], "persistent id tag") == "storage" else {
            throw fail("unsupported persistent id tag, expected 'storage'", kind: .unsupported)
        }
        guard case .global(.storageType(let tname, let dtype))? = node(xs[1]) else {
            throw fail("persistent id names a \(describe(xs[1])) where a storage type belongs")
        }
        let key = try string(xs[2], "storage key")
        let location = try string(xs[3], "storage location")
        let numel = try int(xs[4], "storage size")
        guard numel >= 0, numel <= Int(1) << 48 else { throw fail("storage size \(numel) is out of range") }
        var viewKey: String?
        var viewOffset = 0, viewCount = 0
        if xs.count == 6, case .tuple(let v)? = node(xs[5]) {
            guard v.count == 3 else { throw fail("storage view metadata must be (key, offset, size)") }
            viewKey = try string(v[0], "view key")
            viewOffset = try int(v[1], "view offset")
            viewCount = try int(v[2], "view size")
            guard viewOffset >= 0, viewCount >= 0 else { throw fail("negative storage view offset or size") }
        } else if xs.count == 6, case .none = xs[5] {
        } else if xs.count == 6 {
            throw fail("storage view metadata must be None or a tuple")
        }
        storages.append(StorageRef(typeName: tname, dtype: dtype, key: key, location: location, numel: numel,
                                   viewKey: viewKey, viewOffset: viewOffset, viewCount: viewCount))
        return newNode(.storage(storages.count - 1))
    }

    func call(_ f: Item, _ argsItem: Item) throws -> Item {
        guard case .global(let g)? = node(f) else {
            throw fail("REDUCE calls a \(describe(f)); only allowlisted constructors can be applied")
        }
        let args = try tupleItems(argsItem, "\(g.typeName) arguments")
        return try apply(g, args, how: "REDUCE")
    }

    func construct(_ cls: Item, _ args: [Item], how: String) throws -> Item {
        guard case .global(let g)? = node(cls) else {
            throw fail("\(how) instantiates a \(describe(cls)); only allowlisted classes can be")
        }
        switch g {
        case .orderedDict, .set, .frozenSet, .byteArray, .size: return try apply(g, args, how: how)
        default: throw fail("\(how) cannot instantiate \(g.typeName)")
        }
    }

    func apply(_ g: AllowedGlobal, _ args: [Item], how: String) throws -> Item {
        func arity(_ ok: ClosedRange<Int>) throws {
            if !ok.contains(args.count) {
                throw fail("\(g.typeName) takes \(ok.lowerBound)...\(ok.upperBound) arguments, got \(args.count)")
            }
        }
        switch g {
        case .orderedDict:
            try arity(0...1)
            let d = newDict()
            if let src = args.first {
                for pair in try tupleItems(src, "OrderedDict items") {
                    let kv = try tupleItems(pair, "OrderedDict item")
                    guard kv.count == 2 else { throw fail("OrderedDict item must be a (key, value) pair") }
                    try dictSet(d, kv)
                }
            }
            return d
        case .set, .frozenSet:
            try arity(0...1)
            var xs: [Item] = []
            if let src = args.first {
                switch node(src) {
                case .set(let si, _)?: xs = sets[si].items
                default: xs = try tupleItems(src, "set items")
                }
            }
            return newSet(xs, frozen: g == .frozenSet)
        case .byteArray:
            try arity(0...2)
            guard let first = args.first else { return .bytes([]) }
            if case .bytes(let b) = first { return .bytes(b) }
            return try encode(args)
        case .codecsEncode:
            try arity(1...2)
            return try encode(args)
        case .size:
            try arity(0...1)
            let dims = try args.first.map { try ints($0, "torch.Size") } ?? []
            return newNode(.object("torch.Size", [newNode(.tuple(dims.map { .int(Int64($0)) }))]))
        case .device:
            try arity(1...2)
            return newNode(.object("torch.device", args))
        case .rebuildTensor, .rebuildTensorV2, .rebuildTensorV3:
            switch g {
            case .rebuildTensor: try arity(4...4)
            case .rebuildTensorV2: try arity(4...7)
            default: try arity(7...8)
            }
            guard case .storage(let si)? = node(args[0]) else {
                throw fail("\(g.typeName) needs a storage, found \(describe(args[0]))")
            }
            let offset = try int(args[1], "storage offset")
            let shape = try ints(args[2], "tensor size")
            let strides = try ints(args[3], "tensor stride")
            guard offset >= 0 else { throw fail("negative storage offset \(offset)") }
            guard shape.count == strides.count else {
                throw fail("tensor size \(shape) and stride \(strides) differ in length")
            }
            guard shape.count <= 64 else { throw fail("tensor of \(shape.count) dimensions") }
            var dtype: DType?
            if g == .rebuildTensorV3 {
                guard case .global(.dtype(let d))? = node(args[6]) else {
                    throw fail("_rebuild_tensor_v3 needs a dtype, found \(describe(args[6]))")
                }
                dtype = d
            }
            return newNode(.tensor(TensorSpec(storage: si, offset: offset, shape: shape, strides: strides, dtype: dtype)))
        case .rebuildParameter, .rebuildParameterWithState:
            try arity(g == .rebuildParameter ? 2...3 : 4...4)
            guard case .tensor? = node(args[0]) else {
                throw fail("\(g.typeName) needs a tensor, found \(describe(args[0]))")
            }
            return args[0]
        case .rebuildFromTypeV2:
            try arity(3...4)
            guard case .global(let inner)? = node(args[0]) else {
                throw fail("_rebuild_from_type_v2 needs a function, found \(describe(args[0]))")
            }
            switch inner {
            case .rebuildTensor, .rebuildTensorV2, .rebuildTensorV3, .rebuildParameter, .rebuildParameterWithState: break
            default: throw fail("_rebuild_from_type_v2 cannot apply \(inner.typeName)")
            }
            return try apply(inner, try tupleItems(args[2], "_rebuild_from_type_v2 arguments"), how: how)
        case .storageType, .dtype, .tensorClass:
            throw fail("\(g.typeName) is not callable here")
        }
    }

    /// `_codecs.encode(text, encoding)`: how protocol 2 spells `bytes`.
    func encode(_ args: [Item]) throws -> Item {
        let text = try string(args[0], "encoded text")
        let enc = args.count > 1 ? try string(args[1], "encoding").lowercased() : "utf-8"
        switch enc {
        case "latin1", "latin-1", "iso-8859-1", "iso8859-1":
            var out: [UInt8] = []
            out.reserveCapacity(text.unicodeScalars.count)
            for u in text.unicodeScalars {
                guard u.value < 256 else { throw fail("character beyond latin-1 in encoded bytes") }
                out.append(UInt8(u.value))
            }
            return .bytes(out)
        case "utf-8", "utf8", "ascii":
            return .bytes(Array(text.utf8))
        default:
            throw fail("unsupported encoding '\(enc)'", kind: .unsupported)
        }
    }

    func build(_ target: Item, _ state: Item) throws {
        switch node(target) {
        case .dict?, .tensor?, .object?:
            // Instance attributes (an OrderedDict's `_metadata`, a Parameter's state) are not
            // part of the value tree.
            return
        default:
            throw fail("BUILD on a \(describe(target)) is not supported")
        }
    }
}
