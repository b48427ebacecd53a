import Foundation
@testable import BLCore

/// Writes pickles opcode by opcode, for hostile inputs built in the tests (never copied from
/// anywhere): `PickleWriter(protocol: 2).dict { ... }.stop()`.
struct PickleWriter {
    var bytes: [UInt8] = []
    let proto: Int

    init(protocol proto: Int = 2) {
        self.proto = proto
        if proto >= 2 { bytes = [0x80, UInt8(proto)] }
    }

    mutating func op(_ c: Character) { bytes.append(UInt8(truncatingIfNeeded: c.unicodeScalars.first?.value ?? 0)) }
    mutating func raw(_ b: [UInt8]) { bytes += b }
    mutating func line(_ s: String) { bytes += Array(s.utf8) + [0x0a] }

    mutating func mark() { op("(") }
    mutating func stop() { op(".") }
    mutating func none() { op("N") }

    /// A text string: BINUNICODE (protocol >= 1), UNICODE (0).
    mutating func str(_ s: String) {
        if proto >= 1 {
            op("X")
            let u = Array(s.utf8)
            bytes += le32(UInt32(u.count)) + u
        } else {
            op("V")
            line(s)
        }
    }

    /// An integer: BININT (protocol >= 1), INT (0); LONG1 beyond 32 bits.
    mutating func int(_ v: Int) {
        if proto >= 2, Int64(v) > Int64(Int32.max) || Int64(v) < Int64(Int32.min) {
            op("\u{8a}")
            var b: [UInt8] = []
            var x = Int64(v)
            for _ in 0..<8 { b.append(UInt8(truncatingIfNeeded: x)); x >>= 8 }
            bytes += [UInt8(b.count)] + b
        } else if proto >= 1, Int64(v) <= Int64(Int32.max), Int64(v) >= Int64(Int32.min) {
            op("J")
            bytes += le32(UInt32(bitPattern: Int32(v)))
        } else {
            op("I")
            line(String(v))
        }
    }

    /// GLOBAL `module\nname\n`.
    mutating func global(_ module: String, _ name: String) {
        op("c")
        line(module)
        line(name)
    }

    /// The items pushed by `body` after a MARK, made a tuple.
    mutating func tuple(_ body: (inout PickleWriter) -> Void) {
        mark()
        body(&self)
        op("t")
    }

    mutating func emptyDict() { op("}") }
    mutating func emptyList() { op("]") }
    mutating func reduce() { op("R") }
    mutating func setItems(_ body: (inout PickleWriter) -> Void) {
        mark()
        body(&self)
        op("u")
    }
    mutating func binPut(_ i: UInt8) { bytes += [0x71, i] }
    mutating func binGet(_ i: UInt8) { bytes += [0x68, i] }
    mutating func longBinPut(_ i: UInt32) { bytes += [0x72] + le32(i) }
    mutating func longBinGet(_ i: UInt32) { bytes += [0x6a] + le32(i) }

    /// `torch._utils._rebuild_tensor_v2(('storage', torch.<dtype>Storage, key, 'cpu', numel), offset, size, stride, False, OrderedDict())`.
    mutating func tensor(storage: String = "FloatStorage", key: String, numel: Int, offset: Int = 0, shape: [Int], strides: [Int]) {
        global("torch._utils", "_rebuild_tensor_v2")
        tuple { p in
            p.tuple { q in
                q.str("storage")
                q.global("torch", storage)
                q.str(key)
                q.str("cpu")
                q.int(numel)
            }
            p.op("Q")  // BINPERSID
            p.int(offset)
            p.tuple { q in for d in shape { q.int(d) } }
            p.tuple { q in for s in strides { q.int(s) } }
            p.op("\u{89}")  // NEWFALSE
            p.global("collections", "OrderedDict")
            p.op(")")
            p.reduce()
        }
        reduce()
    }

    /// `{name: tensor, ...}` as a state dict of float tensors.
    static func stateDict(_ entries: [(name: String, key: String, numel: Int, offset: Int, shape: [Int], strides: [Int])]) -> [UInt8] {
        var w = PickleWriter(protocol: 2)
        w.emptyDict()
        w.setItems { p in
            for e in entries {
                p.str(e.name)
                p.tensor(key: e.key, numel: e.numel, offset: e.offset, shape: e.shape, strides: e.strides)
            }
        }
        w.stop()
        return w.bytes
    }
}

/// A torch < 1.6 (legacy) checkpoint: magic number, protocol version, system info, the object
/// pickle, the storage key list, then each storage's element count and bytes.
func legacyCheckpoint(object: [UInt8], storages: [(key: String, count: Int, bytes: [UInt8])]) -> [UInt8] {
    var out: [UInt8] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]
    out += [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]
    var info = PickleWriter(protocol: 2)
    info.emptyDict(); info.str("little_endian"); info.op("\u{88}"); info.op("s"); info.stop()
    out += info.bytes + object
    var keys = PickleWriter(protocol: 2)
    keys.emptyList(); keys.mark(); for s in storages { keys.str(s.key) }; keys.op("e"); keys.stop()
    out += keys.bytes
    for s in storages { out += le64(UInt64(s.count)) + s.bytes }
    return out
}

func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

/// Writes zip archives the way torch.save lays them out (stored or deflated members), with
/// whatever names, duplicates and sizes a test asks for.
struct ZipWriter {
    struct Member { var name: String; var data: [UInt8]; var method: UInt16 = 0; var uncompressed: Int? = nil; var crc: UInt32? = nil }
    var members: [Member] = []

    mutating func add(_ name: String, _ data: [UInt8]) { members.append(Member(name: name, data: data)) }

    /// A deflated member: `compressed` raw deflate data that inflates to `size` bytes with `crc`.
    mutating func addDeflated(_ name: String, compressed: [UInt8], size: Int, crc: UInt32) {
        members.append(Member(name: name, data: compressed, method: 8, uncompressed: size, crc: crc))
    }

    func bytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(members.reduce(0) { $0 + $1.data.count + 2 * $1.name.utf8.count + 100 } + 22)
        var central: [UInt8] = []
        for m in members {
            let name = Array(m.name.utf8)
            let crc = m.crc ?? ZipWriter.crc32(m.data)
            let size = UInt32(m.uncompressed ?? m.data.count)
            let offset = UInt32(out.count)
            out += le32(0x0403_4b50) + le16(20) + le16(0) + le16(m.method) + le16(0) + le16(0)
            out += le32(crc) + le32(UInt32(m.data.count)) + le32(size) + le16(UInt16(name.count)) + le16(0)
            out += name + m.data
            central += le32(0x0201_4b50) + le16(20) + le16(20) + le16(0) + le16(m.method) + le16(0) + le16(0)
            central += le32(crc) + le32(UInt32(m.data.count)) + le32(size) + le16(UInt16(name.count))
            central += le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(offset) + name
        }
        let cdStart = out.count
        out += central
        let n = UInt16(min(members.count, 0xffff))
        out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(n) + le16(n) + le32(UInt32(central.count)) + le32(UInt32(cdStart)) + le16(0)
        return out
    }

    /// A torch zip checkpoint: `archive/data.pkl`, `archive/byteorder`, storages `archive/data/<key>`.
    static func checkpoint(pickle: [UInt8], storages: [(key: String, bytes: [UInt8])]) -> [UInt8] {
        var z = ZipWriter()
        z.add("archive/data.pkl", pickle)
        z.add("archive/byteorder", Array("little".utf8))
        for s in storages { z.add("archive/data/\(s.key)", s.bytes) }
        z.add("archive/version", Array("3\n".utf8))
        return z.bytes()
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var table = [UInt32](repeating: 0, count: 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xedb8_8320 : c >> 1 }
            table[i] = c
        }
        var c: UInt32 = 0xffff_ffff
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        return c ^ 0xffff_ffff
    }
}

/// Floats as little-endian bytes.
func floatBytes(_ xs: [Float]) -> [UInt8] { xs.flatMap { le32($0.bitPattern) } }

/// Writes `bytes` to `dir/name` and returns the path.
@discardableResult
func writeFile(_ dir: String, _ name: String, _ bytes: [UInt8]) throws -> String {
    let path = dir + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// Runs `body` on another thread and waits at most `seconds`: false when it did not return in
/// time (it is then left blocked; the test fails instead of hanging).
func finishes(within seconds: Double, _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        body()
        done.signal()
    }
    return done.wait(timeout: .now() + seconds) == .success
}
