import BLCore

/// The answer of the HDF5 reading process, on its stdout:
///
///     magic "BLH5WIRE2\n"
///     u8 0, contents          (the file was read)
///     u8 1, error             (libhdf5 or the reader refused it)
///
///     contents: u64 n, n x (string name, string dtype, u64 rank, rank x u64 dim, u64 bytes, bytes)
///               u64 n, n x (string name, string reason)              skipped datasets
///               u64 n, n x (string name, value)                      attributes
///     error:    string kind, string message, u8 has-location, string location
///     string:   u64 length, UTF-8 bytes;  u64: little-endian
///     value:    u8 tag, then: 0 None | 1 bool u8 | 2 int u64 | 3 big int string | 4 float u64 bits
///               | 5 str string | 6 list / 8 tuple: u64 n, n values | 7 bytes: u64 n, n bytes
///               | 9 dict: u64 n, n x (key value, value value)
///
/// Every `Value` an HDF5 file can give has a tag; tensors and recorded objects have none, and the
/// writer refuses them rather than send something else in their place.
package enum HDF5Wire {
    package static let magic: [UInt8] = Array("BLH5WIRE2\n".utf8)
    /// Values nest at most this deep.
    static let maxDepth = 8

    package enum Failure: Error, Equatable {
        case timedOut
        /// The pipe ended (or failed) before the answer did.
        case ended
        case corrupt
        /// The answer does not start with `magic`.
        case foreign
        /// The answer wanted this many bytes more than the budget left.
        case overBudget(Int)
    }

    // MARK: writing (the reading process)

    /// Buffered writes to a descriptor; large tensor payloads go straight through.
    package struct Writer {
        let fd: Int32
        var buffer: [UInt8] = []
        /// Set when a write failed; later writes are skipped.
        package private(set) var failed = false

        package init(fd: Int32) {
            self.fd = fd
            buffer.reserveCapacity(1 << 16)
        }

        /// The whole answer for a read's result, flushed.
        package mutating func answer(_ result: Result<HDF5Contents, BLError>) {
            bytes(HDF5Wire.magic)
            var encoded = Writer(fd: -1)
            switch result {
            case .success(let contents):
                // Encoded into memory first (tensor payloads aside) so that a value the wire cannot
                // carry becomes an error answer, not half an answer.
                do {
                    try encoded.checkEncodable(contents)
                    u8(0)
                    self.contents(contents)
                } catch let e as BLError {
                    u8(1)
                    error(e)
                } catch {
                    u8(1)
                    self.error(BLError(.internal, "\(error)"))
                }
            case .failure(let e):
                u8(1)
                error(e)
            }
            flush()
        }

        mutating func u8(_ v: UInt8) { buffer.append(v); flushIfFull() }
        mutating func u64(_ v: Int) { u64(UInt64(truncatingIfNeeded: v)) }
        mutating func u64(_ v: UInt64) {
            withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) }
            flushIfFull()
        }
        mutating func string(_ s: String) {
            let utf8 = Array(s.utf8)
            u64(utf8.count)
            bytes(utf8)
        }
        mutating func bytes(_ b: [UInt8]) { buffer.append(contentsOf: b); flushIfFull() }
        mutating func raw(_ bytes: UnsafeRawBufferPointer) {
            flush()
            writeAll(bytes)
        }

        mutating func flushIfFull() { if buffer.count >= 1 << 16 { flush() } }

        package mutating func flush() {
            guard fd >= 0 else { buffer.removeAll(keepingCapacity: true); return }
            let b = buffer
            buffer.removeAll(keepingCapacity: true)
            b.withUnsafeBytes { writeAll($0) }
        }

        private mutating func writeAll(_ bytes: UnsafeRawBufferPointer) {
            guard fd >= 0, !failed, var p = bytes.baseAddress else { return }
            var left = bytes.count
            while left > 0 {
                let n = write(fd, p, left)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failed = true; return }
                p += n
                left -= n
            }
        }

        mutating func error(_ e: BLError) {
            string(e.kind.rawValue)
            string(e.message)
            u8(e.location == nil ? 0 : 1)
            string(e.location ?? "")
        }

        mutating func contents(_ c: HDF5Contents) {
            u64(c.tensors.count)
            for (name, t) in c.tensors {
                string(name)
                string(t.dtype.rawValue)
                u64(t.shape.count)
                for d in t.shape { u64(d) }
                u64(t.byteCount)
                t.withContiguousBytes { raw($0) }
            }
            u64(c.skipped.count)
            for (name, reason) in c.skipped { string(name); string(reason) }
            u64(c.attributes.count)
            // checkEncodable ran first: every attribute value has a tag.
            for (name, value) in c.attributes { string(name); try? self.value(value, depth: 0) }
        }

        /// Throws for a value the wire cannot carry, without writing anything that matters.
        mutating func checkEncodable(_ c: HDF5Contents) throws {
            for (name, value) in c.attributes {
                do { try self.value(value, depth: 0) } catch let e as BLError { throw e.at("attribute '\(name)'") }
                buffer.removeAll(keepingCapacity: true)
            }
        }

        package mutating func value(_ v: Value, depth: Int) throws {
            guard depth < HDF5Wire.maxDepth else {
                throw BLError(.unsupported, "a value nested more than \(HDF5Wire.maxDepth) deep cannot be sent")
            }
            switch v {
            case .none: u8(0)
            case .bool(let b): u8(1); u8(b ? 1 : 0)
            case .int(let i): u8(2); u64(UInt64(bitPattern: i))
            case .bigInt(let s): u8(3); string(s)
            case .float(let d): u8(4); u64(d.bitPattern)
            case .string(let s): u8(5); string(s)
            case .list(let xs), .tuple(let xs):
                if case .list = v { u8(6) } else { u8(8) }
                u64(xs.count)
                for x in xs { try value(x, depth: depth + 1) }
            case .bytes(let b): u8(7); u64(b.count); bytes(b)
            case .dict(let items):
                u8(9)
                u64(items.count)
                for (k, x) in items {
                    try value(k, depth: depth + 1)
                    try value(x, depth: depth + 1)
                }
            case .tensor, .object:
                throw BLError(.unsupported, "a \(v.typeName) value cannot be sent by the HDF5 reader")
            }
        }
    }

    // MARK: reading (the asking process)

    /// Reads an answer with a deadline and a byte budget; every count is checked against both the
    /// budget and its own limit before anything is allocated.
    package struct Reader {
        let fd: Int32
        let deadline: Double
        /// Bytes the rest of the answer may still take.
        package private(set) var budget: Int
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var start = 0, end = 0

        package init(fd: Int32, deadline: Double, budget: Int) {
            self.fd = fd
            self.deadline = deadline
            self.budget = budget
        }

        /// The whole answer: the contents, or the error the reader reported.
        package mutating func answer() throws -> Result<HDF5Contents, BLError> {
            var magic = [UInt8](repeating: 0, count: HDF5Wire.magic.count)
            try magic.withUnsafeMutableBytes { try fill($0) }
            guard magic == HDF5Wire.magic else { throw Failure.foreign }
            switch try u8() {
            case 0: return .success(try contents())
            case 1: return .failure(try error())
            default: throw Failure.corrupt
            }
        }

        /// Takes `n` bytes from the budget, or fails before they are read or allocated.
        mutating func spend(_ n: Int) throws {
            guard n <= budget else { throw Failure.overBudget(n - budget) }
            budget -= n
        }

        /// Fills `dst` completely from the buffer and then the pipe.
        mutating func fill(_ dst: UnsafeMutableRawBufferPointer) throws {
            try spend(dst.count)
            guard let out = dst.baseAddress else { return }
            var done = 0
            while done < dst.count {
                if start < end {
                    let n = min(end - start, dst.count - done)
                    buffer.withUnsafeBytes { src in
                        if let s = src.baseAddress { (out + done).copyMemory(from: s + start, byteCount: n) }
                    }
                    start += n
                    done += n
                    continue
                }
                try waitReadable()
                let want = dst.count - done
                let n: Int
                if want >= buffer.count {
                    // Large payloads go straight into their destination.
                    n = read(fd, out + done, want)
                    if n > 0 { done += n }
                } else {
                    n = buffer.withUnsafeMutableBytes { b in b.baseAddress.map { read(fd, $0, b.count) } ?? -1 }
                    if n > 0 { start = 0; end = n }
                }
                if n < 0 { if errno == EINTR { continue }; throw Failure.ended }
                if n == 0 { throw Failure.ended }
            }
        }

        private func waitReadable() throws {
            while true {
                let left = deadline - MonotonicClock.seconds()
                if left <= 0 { throw Failure.timedOut }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let r = poll(&p, 1, Int32(min(left * 1000, 60_000).rounded(.up)))
                if r > 0 { return }
                if r < 0 && errno != EINTR { throw Failure.ended }
            }
        }

        mutating func u8() throws -> UInt8 {
            var v: UInt8 = 0
            try withUnsafeMutableBytes(of: &v) { try fill($0) }
            return v
        }

        mutating func u64() throws -> UInt64 {
            var v: UInt64 = 0
            try withUnsafeMutableBytes(of: &v) { try fill($0) }
            return UInt64(littleEndian: v)
        }

        /// A count or size, at most `max` and at most what the budget still allows
        /// (`elementBytes` each).
        mutating func count(max: Int = 1 << 40, elementBytes: Int = 1) throws -> Int {
            let v = try u64()
            guard v <= UInt64(max) else { throw Failure.corrupt }
            let n = Int(v)
            let (bytes, overflow) = n.multipliedReportingOverflow(by: Swift.max(elementBytes, 1))
            guard !overflow, bytes <= budget else { throw Failure.overBudget(overflow ? Int.max : bytes - budget) }
            return n
        }

        mutating func byteArray(max: Int) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: try count(max: max))
            try bytes.withUnsafeMutableBytes { try fill($0) }
            return bytes
        }

        mutating func string() throws -> String {
            let bytes = try byteArray(max: 1 << 30)
            guard let s = String(validating: bytes, as: UTF8.self) else { throw Failure.corrupt }
            return s
        }

        mutating func error() throws -> BLError {
            guard let kind = BLError.Kind(rawValue: try string()) else { throw Failure.corrupt }
            let message = try string()
            let hasLocation = try u8()
            guard hasLocation <= 1 else { throw Failure.corrupt }
            let location = try string()
            return BLError(kind, message, location: hasLocation == 1 ? location : nil)
        }

        mutating func contents() throws -> HDF5Contents {
            var c = HDF5Contents()
            // Each entry takes at least 8 bytes on the wire: counts beyond budget/8 cannot be real.
            for _ in 0..<(try count(elementBytes: 8)) {
                let name = try string()
                guard let dtype = DType(rawValue: try string()) else { throw Failure.corrupt }
                var shape: [Int] = []
                for _ in 0..<(try count(max: 64, elementBytes: 8)) { shape.append(try count()) }
                let bytes = try count()
                guard let n = try? Tensor.checkedCount(shape), n.multipliedReportingOverflow(by: dtype.byteSize) == (bytes, false) else {
                    throw Failure.corrupt
                }
                let storage = try ByteStorage.allocate(count: bytes) { try fill($0) }
                guard let t = try? Tensor(dtype: dtype, shape: shape, storage: storage) else { throw Failure.corrupt }
                c.tensors.append((name, t))
            }
            for _ in 0..<(try count(elementBytes: 16)) { c.skipped.append((try string(), try string())) }
            for _ in 0..<(try count(elementBytes: 9)) { c.attributes.append((try string(), try value(depth: 0))) }
            return c
        }

        mutating func value(depth: Int) throws -> Value {
            guard depth < HDF5Wire.maxDepth else { throw Failure.corrupt }
            switch try u8() {
            case 0: return .none
            case 1:
                let b = try u8()
                guard b <= 1 else { throw Failure.corrupt }
                return .bool(b == 1)
            case 2: return .int(Int64(bitPattern: try u64()))
            case 3: return .bigInt(try string())
            case 4: return .float(Double(bitPattern: try u64()))
            case 5: return .string(try string())
            case let tag where tag == 6 || tag == 8:
                var xs: [Value] = []
                for _ in 0..<(try count(max: 1 << 24)) { xs.append(try value(depth: depth + 1)) }
                return tag == 6 ? .list(xs) : .tuple(xs)
            case 7: return .bytes(try byteArray(max: 1 << 30))
            case 9:
                var items: [(key: Value, value: Value)] = []
                for _ in 0..<(try count(max: 1 << 24, elementBytes: 2)) {
                    items.append((try value(depth: depth + 1), try value(depth: depth + 1)))
                }
                return .dict(items)
            default: throw Failure.corrupt
            }
        }
    }
}
