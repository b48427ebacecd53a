#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import BLCore
import CHDF5

/// libhdf5 is not hardened against corrupt files: crafted or damaged metadata can crash it or
/// make it loop forever. Reads therefore run in a forked child process that sends the contents
/// back through a pipe; the parent never calls libhdf5 for a read, and turns a crash into a
/// `BLError` and a hang into a timeout.
///
/// The fork happens while holding the libhdf5 lock, so no other thread is inside libhdf5 at that
/// moment and the child's copy of the library is consistent. It runs no atfork handlers
/// (`_Fork`): OpenBLAS's handler joins its worker threads and can deadlock the parent. The child's stderr is /dev/null
/// (libhdf5's error stack travels in the answer instead) and it leaves with `_exit`.
enum HDF5Isolation {
    /// Seconds allowed for a file of `bytes` bytes: 30 s plus 1 s per MB (gzip-compressed reads
    /// run well above 50 MB/s).
    static func defaultTimeout(fileSize bytes: Int) -> Double {
        30 + Double(bytes) / 1_000_000
    }

    static func run(path: String, timeout: Double, body: @escaping () throws -> HDF5Contents) throws -> HDF5Contents {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw BLError(.io, "cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        let pid: pid_t = HDF5Library.withLock { blc_fork_without_handlers() }
        if pid == 0 {
            let answer = blc_child_keep_only(fds[1])
            if answer < 0 { _exit(3) }
            // Whatever libhdf5 might still print goes nowhere; its messages travel in the answer.
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { dup2(null, 2); close(null) }
            var out = WireWriter(fd: answer)
            do {
                let contents = try HDF5Library.withLock { try body() }
                out.u8(0)
                out.contents(contents)
            } catch {
                let e = (error as? BLError) ?? BLError(.format, "\(error)")
                out = WireWriter(fd: answer)
                out.u8(1)
                out.error(e)
            }
            out.flush()
            _exit(out.failed ? 2 : 0)
        }
        close(fds[1])
        defer { close(fds[0]) }
        if pid < 0 {
            throw BLError(.io, "cannot start the reading process: \(String(cString: strerror(errno)))")
        }

        var input = WireReader(fd: fds[0], deadline: monotonicSeconds() + timeout)
        let decoded: Result<HDF5Contents, BLError>
        do {
            switch try input.u8() {
            case 0: decoded = .success(try input.contents())
            case 1: decoded = .failure(try input.error())
            default: throw WireReader.Failure.corrupt
            }
        } catch let failure as WireReader.Failure {
            if case .timedOut = failure { kill(pid, SIGKILL) }
            let status = reap(pid)
            switch failure {
            case .timedOut:
                throw BLError(.format, "libhdf5 did not finish reading within \(Int(timeout)) s (corrupt file?); stopped")
            case .corrupt:
                throw BLError(.format, "the reading process sent a malformed answer \(describe(status))")
            case .ended: break
            }
            throw BLError(.format, "libhdf5 failed on this file \(describe(status)) without reporting an error (corrupt file?)")
        }
        let status = reap(pid)
        if case .failure(let e) = decoded { throw e }
        guard status == 0 || status == nil, case .success(let contents) = decoded else {
            throw BLError(.format, "the reading process ended \(describe(status))")
        }
        return contents
    }

    /// The child's wait status, or nil when it cannot be known (SIGCHLD ignored by the host process).
    private static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return nil }
        }
        return status
    }

    private static func describe(_ status: Int32?) -> String {
        guard let status else { return "with an unknown status" }
        let signal = status & 0x7f
        if signal != 0 { return "with signal \(signal)\(signal == SIGSEGV ? " (segmentation fault)" : signal == SIGABRT ? " (abort)" : "")" }
        return "with exit status \((status >> 8) & 0xff)"
    }

    static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

// MARK: wire format (child -> parent, same binary on both sides)

/// Buffered writes to the pipe; large tensor payloads go straight through.
struct WireWriter {
    let fd: Int32
    var buffer: [UInt8] = []
    var failed = false

    init(fd: Int32) {
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
    }

    mutating func u8(_ v: UInt8) { buffer.append(v); flushIfFull() }
    mutating func u64(_ v: Int) {
        withUnsafeBytes(of: UInt64(truncatingIfNeeded: v).littleEndian) { buffer.append(contentsOf: $0) }
        flushIfFull()
    }
    mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        u64(utf8.count)
        buffer.append(contentsOf: utf8)
        flushIfFull()
    }
    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        flush()
        writeAll(bytes)
    }

    mutating func flushIfFull() { if buffer.count >= 1 << 16 { flush() } }

    mutating func flush() {
        let b = buffer
        buffer.removeAll(keepingCapacity: true)
        b.withUnsafeBytes { writeAll($0) }
    }

    private mutating func writeAll(_ bytes: UnsafeRawBufferPointer) {
        guard !failed, var p = bytes.baseAddress else { return }
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
        for (name, value) in c.attributes { string(name); self.value(value) }
    }

    mutating func value(_ v: Value) {
        switch v {
        case .bool(let b): u8(1); u8(b ? 1 : 0)
        case .int(let i): u8(2); u64(Int(i))
        case .bigInt(let s): u8(3); string(s)
        case .float(let d): u8(4); u64(Int(truncatingIfNeeded: d.bitPattern))
        case .string(let s): u8(5); string(s)
        case .list(let xs): u8(6); u64(xs.count); for x in xs { value(x) }
        default: u8(0)
        }
    }
}

/// Reads the child's answer with a deadline; every count is checked before allocating.
struct WireReader {
    enum Failure: Error { case timedOut, ended, corrupt }

    let fd: Int32
    let deadline: Double
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var start = 0, end = 0

    init(fd: Int32, deadline: Double) {
        self.fd = fd
        self.deadline = deadline
    }

    /// Fills `dst` completely from the buffer and then the pipe.
    mutating func fill(_ dst: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        while done < dst.count {
            if start < end {
                let n = min(end - start, dst.count - done)
                buffer.withUnsafeBytes { src in
                    (dst.baseAddress! + done).copyMemory(from: src.baseAddress! + start, byteCount: n)
                }
                start += n
                done += n
                continue
            }
            try waitReadable()
            let want = dst.count - done
            if want >= buffer.count {
                // Large payloads go straight into their destination.
                let n = read(fd, dst.baseAddress! + done, want)
                if n < 0 { if errno == EINTR { continue }; throw Failure.ended }
                if n == 0 { throw Failure.ended }
                done += n
            } else {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                if n < 0 { if errno == EINTR { continue }; throw Failure.ended }
                if n == 0 { throw Failure.ended }
                start = 0
                end = n
            }
        }
    }

    private func waitReadable() throws {
        while true {
            let left = deadline - HDF5Isolation.monotonicSeconds()
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

    mutating func count(max: Int = 1 << 40) throws -> Int {
        let v = try u64()
        guard v <= UInt64(max) else { throw Failure.corrupt }
        return Int(v)
    }

    mutating func string() throws -> String {
        var bytes = [UInt8](repeating: 0, count: try count(max: 1 << 30))
        try bytes.withUnsafeMutableBytes { try fill($0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func error() throws -> BLError {
        let kind = BLError.Kind(rawValue: try string()) ?? .format
        let message = try string()
        let hasLocation = try u8() == 1
        let location = try string()
        return BLError(kind, message, location: hasLocation ? location : nil)
    }

    mutating func contents() throws -> HDF5Contents {
        var c = HDF5Contents()
        for _ in 0..<(try count()) {
            let name = try string()
            guard let dtype = DType(rawValue: try string()) else { throw Failure.corrupt }
            var shape: [Int] = []
            for _ in 0..<(try count(max: 64)) { shape.append(try count()) }
            let bytes = try count()
            guard let n = try? Tensor.checkedCount(shape), n * dtype.byteSize == bytes else { throw Failure.corrupt }
            let storage = try ByteStorage.allocate(count: bytes) { try fill($0) }
            guard let t = try? Tensor(dtype: dtype, shape: shape, storage: storage) else { throw Failure.corrupt }
            c.tensors.append((name, t))
        }
        for _ in 0..<(try count()) { c.skipped.append((try string(), try string())) }
        for _ in 0..<(try count()) { c.attributes.append((try string(), try value(depth: 0))) }
        return c
    }

    mutating func value(depth: Int) throws -> Value {
        guard depth < 8 else { throw Failure.corrupt }
        switch try u8() {
        case 0: return .none
        case 1: return .bool(try u8() != 0)
        case 2: return .int(Int64(bitPattern: try u64()))
        case 3: return .bigInt(try string())
        case 4: return .float(Double(bitPattern: try u64()))
        case 5: return .string(try string())
        case 6:
            var xs: [Value] = []
            for _ in 0..<(try count(max: 1 << 24)) { xs.append(try value(depth: depth + 1)) }
            return .list(xs)
        default: throw Failure.corrupt
        }
    }
}
